using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Nn;

/// <summary>
/// torch.nn.Linear: <c>{Path}.weight</c> [out, in] (f32 or bf16, used in place), optional <c>{Path}.bias</c> [out];
/// or, in a quantized checkpoint, mlx.nn.QuantizedLinear: <c>.weight</c> packed u32, <c>.scales</c>, <c>.biases</c>.
/// </summary>
public sealed class Linear
{
    public Linear(string path, Tensor weight, Tensor? bias)
    {
        Path = path;
        Weight = weight;
        Bias = bias;
    }

    public Linear(string path, QuantizedWeight quantized, Tensor? bias)
    {
        Path = path;
        Weight = quantized.Weight;
        Quantized = quantized;
        Bias = bias;
    }

    public string Path { get; }
    /// <summary>The float weight, or the packed u32 codes of a quantized layer.</summary>
    public Tensor Weight { get; }
    /// <summary>The quantized matrix when the layer is quantized.</summary>
    public QuantizedWeight? Quantized { get; }
    public Tensor? Bias { get; }
    public int InFeatures => Quantized?.InFeatures ?? Weight.Shape[1];
    public int OutFeatures => Weight.Shape[0];

    /// <summary>Loads a float or (when the checkpoint's quantization says so) a quantized layer; every key and shape asserted.</summary>
    public static Linear Load(Weights w, string path, int outFeatures, int inFeatures, bool bias = true)
    {
        var q = w.GetQuantized(path, outFeatures, inFeatures);
        var b = bias ? w.Get(path + ".bias", outFeatures) : null;
        return q is null ? new(path, w.Get(path + ".weight", outFeatures, inFeatures), b) : new(path, q, b);
    }

    /// <summary>y = x·Wᵀ + b without tracing (quantized or float).</summary>
    public Tensor Apply(Tensor x) => Quantized is null ? Ops.Linear(x, Weight, Bias) : Ops.QuantizedLinear(x, Quantized, Bias);

    /// <summary>Loads with the output width read from the checkpoint (e.g. the adaptor's hidden 2048).</summary>
    public static Linear LoadInferOut(Weights w, string path, int inFeatures, bool bias = true)
    {
        var weight = w.GetAnyShape(path + ".weight", 2);
        int outFeatures = weight.Shape[0];
        if (weight.Shape[1] != inFeatures)
            throw new IO.WeightException(w.Source.Path, $"shape {Tensor.ShapeString(weight.Shape)} does not take {inFeatures} inputs", path + ".weight");
        return new(path, weight, bias ? w.Get(path + ".bias", outFeatures) : null);
    }

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Apply(x);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// torch.nn.Conv1d: <c>{Path}.weight</c> [Cout, Cin/groups, K], <c>{Path}.bias</c> [Cout]. An f32 weight with groups = 1
/// is packed once here for the CPU backend's implicit-im2col GEMM (<see cref="ConvGemm"/>); other weights (bf16 kept in
/// place, grouped convs, other backends) go through <see cref="Ops.Conv1d"/>. Both give the same sums in the same order.
/// </summary>
public sealed class Conv1d
{
    private readonly float[]? _packed;
    private readonly float[]? _bias;

    public Conv1d(string path, Tensor weight, Tensor? bias, int stride, int padding, int dilation = 1, int groups = 1)
    {
        Path = path;
        Weight = weight;
        Bias = bias;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
        if (groups == 1 && weight.DType == DType.F32 && weight.Rank == 3 && ConvGemm.IsSupported
            && (bias is null || (bias.Rank == 1 && bias.Shape[0] == weight.Shape[0])))
        {
            _packed = ConvGemm.PackWeight(weight.Contiguous().AsSpan<float>(), weight.Shape[0], weight.Shape[1] * weight.Shape[2]);
            _bias = bias?.ToFloatArray();
        }
    }

    public string Path { get; }
    public Tensor Weight { get; }
    public Tensor? Bias { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    public int Groups { get; }
    public int OutChannels => Weight.Shape[0];
    public int Kernel => Weight.Shape[2];

    /// <summary>Output length for an input of <paramref name="t"/> steps (PyTorch's formula; ≤ 0 when the input is too short).</summary>
    public int OutputLength(int t) => (t + 2 * Padding - Dilation * (Kernel - 1) - 1) / Stride + 1;

    public static Conv1d Load(Weights w, string path, int cout, int cin, int kernel, int stride, int padding, bool bias = true) =>
        new(path, w.Get(path + ".weight", cout, cin, kernel), bias ? w.Get(path + ".bias", cout) : null, stride, padding);

    /// <summary>[B, Cin, T] → [B, Cout, T'] as the module returns it (no activation).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = _packed is not null && x.Rank == 3 && Ops.Backend is CpuBackend && ConvGemm.IsSupported
            ? Packed(x)
            : Ops.Conv1d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
        trace?.Record(Path, y);
        return y;
    }

    /// <summary>
    /// Forward into a caller-owned contiguous f32 <paramref name="y"/> of the output shape (no allocation on the packed
    /// path; otherwise the result is copied in). Used by blocks that reuse scratch buffers across layers.
    /// </summary>
    internal Tensor ForwardInto(Tensor x, Tensor y)
    {
        if (_packed is null || x.Rank != 3 || Ops.Backend is not CpuBackend || !ConvGemm.IsSupported)
        {
            var r = Ops.Conv1d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
            if (!r.Shape.SequenceEqual(y.Shape)) throw new ArgumentException($"conv1d: output {Tensor.ShapeString(r.Shape)} does not fit {Tensor.ShapeString(y.Shape)}");
            r.AsSpan<float>().CopyTo(y.AsWritableSpan<float>());
            return y;
        }
        return Packed(x, y);
    }

    private Tensor Packed(Tensor x) => Packed(x, null);

    private unsafe Tensor Packed(Tensor x, Tensor? into)
    {
        int bsz = x.Shape[0], cin = x.Shape[1], t = x.Shape[2], cout = Weight.Shape[0], kw = Weight.Shape[2];
        if (cin != Weight.Shape[1])
            throw new ArgumentException($"conv1d: input channels {cin} / weight {Tensor.ShapeString(Weight.Shape)} / groups 1 disagree");
        int tout = (t + 2 * Padding - Dilation * (kw - 1) - 1) / Stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        if (x.DType != DType.F32 || !x.IsContiguous) x = x.To(DType.F32);
        var y = into ?? Tensor.Zeros(DType.F32, bsz, cout, tout);
        if (y.DType != DType.F32 || !y.IsContiguous || y.Rank != 3 || y.Shape[0] != bsz || y.Shape[1] != cout || y.Shape[2] != tout)
            throw new ArgumentException($"conv1d: output {Tensor.ShapeString(y.Shape)} must be f32 [{bsz}, {cout}, {tout}]");
        var xs = x.AsSpan<float>();
        var ys = y.AsWritableSpan<float>();
        fixed (float* px = xs, py = ys, pb = _bias)
            for (int b = 0; b < bsz; b++)
                ConvGemm.Conv(_packed!, cout, cin, kw, px + (long)b * cin * t, t, Stride, Padding, Dilation, pb, py + (long)b * cout * tout, tout, Gemm.MaxThreads);
        return y;
    }
}

/// <summary>torch.nn.LayerNorm over the last axis: <c>{Path}.weight</c>, <c>{Path}.bias</c> [D].</summary>
public sealed class LayerNorm(string path, Tensor? weight, Tensor? bias, float eps)
{
    public string Path { get; } = path;

    public static LayerNorm Load(Weights w, string path, int dim, float eps) =>
        new(path, w.Get(path + ".weight", dim), w.Get(path + ".bias", dim), eps);

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.LayerNorm(x, weight, bias, eps);
        trace?.Record(Path, y);
        return y;
    }
}
