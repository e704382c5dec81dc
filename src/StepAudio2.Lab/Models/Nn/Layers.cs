using StepAudio2.Lab.Engine;
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
    /// <summary>The layer as the engine's fused capabilities take it (one instance for the layer's life).</summary>
    public LinearWeights Weights => _weights ??= new(Weight, Quantized, Bias);
    private LinearWeights? _weights;
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
    public Tensor Apply(Tensor x) => Weights.Apply(x);

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
/// torch.nn.Conv1d: <c>{Path}.weight</c> [Cout, Cin/groups, K], <c>{Path}.bias</c> [Cout], run by <see cref="Ops.Conv1d"/>
/// (a backend may prepare the weight once, e.g. the CPU backend packs f32 weights for its implicit-im2col GEMM).
/// </summary>
public sealed class Conv1d
{
    public Conv1d(string path, Tensor weight, Tensor? bias, int stride, int padding, int dilation = 1, int groups = 1)
    {
        Path = path;
        Weight = weight;
        Bias = bias;
        Stride = stride;
        Padding = padding;
        Dilation = dilation;
        Groups = groups;
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
        var y = Ops.Conv1d(x, Weight, Bias, Stride, Padding, Dilation, Groups);
        trace?.Record(Path, y);
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

/// <summary>
/// torch.nn.ConvTranspose1d with a folded weight [Cin, Cout, K] and bias [Cout], run by <see cref="Ops.ConvTranspose1d"/>
/// (the CPU backend packs the weight once as Wᵀ [Cout·K, Cin] for one GEMM plus an overlap-add).
/// </summary>
public sealed class ConvTranspose1d(string path, Tensor weight, Tensor? bias, int stride, int padding)
{
    public string Path { get; } = path;
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int Stride { get; } = stride;
    public int Padding { get; } = padding;
    public int InChannels => Weight.Shape[0];
    public int OutChannels => Weight.Shape[1];
    public int Kernel => Weight.Shape[2];

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.ConvTranspose1d(x, Weight, Bias, Stride, Padding);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// torch.nn.Conv1d (stride 1, no dilation) applied to time-major activations [B, T, Cin] with explicit zero padding
/// (padLeft, padRight) — the causal and look-ahead convolutions of the flow (pre-lookahead, up_layer, DiT conv block),
/// whose modules transpose around a channels-first conv (<see cref="Composite.ConvTimeMajor"/>).
/// </summary>
public sealed class TimeMajorConv1d
{
    public TimeMajorConv1d(string path, Tensor weight, Tensor bias, int padLeft, int padRight)
    {
        if (weight.Rank != 3) throw new ArgumentException($"{path}: conv weight {Tensor.ShapeString(weight.Shape)} must be [Cout, Cin, K]");
        Path = path;
        Weight = weight;
        Bias = bias;
        PadLeft = padLeft;
        PadRight = padRight;
    }

    public string Path { get; }
    /// <summary><c>{key}.weight</c> [Cout, Cin, K] as the checkpoint holds it.</summary>
    public Tensor Weight { get; }
    /// <summary><c>{key}.bias</c> [Cout].</summary>
    public Tensor Bias { get; }
    public int InChannels => Weight.Shape[1];
    public int OutChannels => Weight.Shape[0];
    public int Kernel => Weight.Shape[2];
    public int PadLeft { get; }
    public int PadRight { get; }

    /// <summary>[B, T, Cin] → [B, T + padLeft + padRight − K + 1, Cout], time-major.</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 3 || x.Shape[2] != InChannels)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(x.Shape)} must be [B, T, {InChannels}]");
        if (x.Shape[1] + PadLeft + PadRight - Kernel + 1 < 1) throw new ArgumentException($"{Path}: {x.Shape[1]} frames are too few for kernel {Kernel}");
        return Composite.ConvTimeMajor(x, Weight, Bias, PadLeft, PadRight);
    }
}
