using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// torch.nn.ConvTranspose1d with a folded weight [Cin, Cout, K] and bias [Cout]. On the CPU backend the weight is packed
/// once at load as Wᵀ [Cout·K, Cin] and the layer runs as one GEMM on the channel-major input plus an overlap-add
/// (<see cref="ConvGemm.ConvTranspose"/>); otherwise <see cref="Ops.ConvTranspose1d"/>, with the same sums in the same order.
/// </summary>
public sealed class ConvTranspose1d
{
    private readonly Tensor? _bias;
    private readonly float[]? _packed, _biasValues;
    private readonly int _stride, _padding;

    private readonly HiftScratch? _scratch;

    public ConvTranspose1d(string path, Tensor weight, Tensor? bias, int stride, int padding) : this(path, weight, bias, stride, padding, null) { }

    /// <summary>As the public constructor; with <paramref name="scratch"/>, the output and the GEMM's column buffer come from that pool.</summary>
    internal ConvTranspose1d(string path, Tensor weight, Tensor? bias, int stride, int padding, HiftScratch? scratch)
    {
        _scratch = scratch;
        Path = path;
        Weight = weight;
        _bias = bias;
        _stride = stride;
        _padding = padding;
        if (weight.Rank == 3 && ConvGemm.IsSupported)
        {
            _packed = ConvGemm.PackTransposeWeight(weight.ToFloatArray(), weight.Shape[0], weight.Shape[1], weight.Shape[2]);
            _biasValues = bias?.ToFloatArray();
        }
    }

    public string Path { get; }
    public Tensor Weight { get; }
    public Tensor? Bias => _bias;
    public int Stride => _stride;
    public int Padding => _padding;
    public int InChannels => Weight.Shape[0];
    public int OutChannels => Weight.Shape[1];
    public int Kernel => Weight.Shape[2];

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = _packed is not null && x.Rank == 3 && x.Shape[1] == InChannels && Ops.Backend is CpuBackend && ConvGemm.IsSupported
            ? Packed(x)
            : Ops.ConvTranspose1d(x, Weight, _bias, _stride, _padding);
        trace?.Record(Path, y);
        return y;
    }

    private unsafe Tensor Packed(Tensor x)
    {
        int bsz = x.Shape[0], cin = InChannels, t = x.Shape[2], cout = OutChannels, kw = Kernel;
        int tout = (t - 1) * _stride - 2 * _padding + (kw - 1) + 1;
        if (tout <= 0) throw new ArgumentException($"conv_transpose1d: output length {tout} ≤ 0 for input length {t}");
        if (x.DType != DType.F32 || !x.IsContiguous) x = x.To(DType.F32);
        var y = _scratch?.Rent(bsz, cout, tout) ?? Tensor.Zeros(DType.F32, bsz, cout, tout);
        var cols = _scratch?.Rent(cout * kw * t) ?? Tensor.Zeros(DType.F32, cout * kw * t);
        var xs = x.AsSpan<float>();
        var ys = y.AsWritableSpan<float>();
        fixed (float* px = xs, py = ys, pb = _biasValues, pc = cols.AsWritableSpan<float>())
            for (int b = 0; b < bsz; b++)
                ConvGemm.ConvTranspose(_packed!, cin, cout, kw, px + (long)b * cin * t, t, _stride, _padding, pb, py + (long)b * cout * tout, tout, pc, Gemm.MaxThreads);
        _scratch?.Return(cols);
        return y;
    }
}

/// <summary>Snake activation x + sin²(αx)/(α + 1e−9) with a per-channel α on a linear scale (HiFT's ResBlocks).</summary>
public static class Snake
{
    /// <summary>[B, C, T] → [B, C, T]; the float operation order follows the official module.</summary>
    public static Tensor Forward(Tensor x, float[] alpha)
    {
        if (x.Rank != 3 || x.Shape[1] != alpha.Length)
            throw new ArgumentException($"snake: input {Tensor.ShapeString(x.Shape)} must be [B, {alpha.Length}, T]");
        var y = Tensor.Zeros(DType.F32, x.Shape);
        Apply(x.DType == DType.F32 && x.IsContiguous ? x : x.To(DType.F32), alpha, y);
        return y;
    }

    /// <summary>Snake of a contiguous f32 [B, C, T] <paramref name="x"/> into <paramref name="y"/> (may be x itself), channels in parallel.</summary>
    internal static void Apply(Tensor x, float[] alpha, Tensor y)
    {
        int bsz = x.Shape[0], c = x.Shape[1], t = x.Shape[2];
        int rows = bsz * c;
        int parts = rows * (long)t < 1 << 16 ? 1 : Math.Min(Gemm.MaxThreads, rows);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            var (r0, r1) = Gemm.Part(rows, parts, part, 1);
            var src = x.AsSpan<float>();
            var dst = y.AsWritableSpan<float>();
            for (int r = r0; r < r1; r++)
                VectorTrig.Snake(src.Slice(r * t, t), alpha[r % c], dst.Slice(r * t, t));
        });
    }
}

/// <summary>
/// HiFT ResBlock (docs/model.md §7.10 step 6): three rounds of Snake → dilated conv → Snake → conv, each added back to x.
/// Keys <c>{key}.convs1/convs2.{j}</c> (weight-normed) and <c>{key}.activations1/2.{j}.alpha</c>.
/// </summary>
public sealed class HiftResBlock
{
    private readonly Conv1d[] _convs1, _convs2;
    private readonly float[][] _alpha1, _alpha2;

    public string Path { get; }
    public int Channels { get; }
    public int Kernel { get; }
    /// <summary>The dilated convs (convs1.j) and the plain ones (convs2.j), j = 0…2.</summary>
    public IReadOnlyList<Conv1d> Convs1 => _convs1;
    public IReadOnlyList<Conv1d> Convs2 => _convs2;
    /// <summary>Snake α of activations1.j / activations2.j.</summary>
    public IReadOnlyList<float[]> Alpha1 => _alpha1;
    public IReadOnlyList<float[]> Alpha2 => _alpha2;

    private readonly HiftScratch? _scratch;

    public HiftResBlock(Weights w, string key, string path, int channels, int kernel, IReadOnlyList<int> dilations)
        : this(w, key, path, channels, kernel, dilations, null) { }

    /// <summary>As the public constructor; with <paramref name="scratch"/>, its working buffers and its output come from that pool.</summary>
    internal HiftResBlock(Weights w, string key, string path, int channels, int kernel, IReadOnlyList<int> dilations, HiftScratch? scratch)
    {
        _scratch = scratch;
        Path = path;
        Channels = channels;
        Kernel = kernel;
        int n = dilations.Count;
        _convs1 = new Conv1d[n];
        _convs2 = new Conv1d[n];
        _alpha1 = new float[n][];
        _alpha2 = new float[n][];
        for (int j = 0; j < n; j++)
        {
            int d = dilations[j];
            _convs1[j] = new Conv1d($"{path}.convs1.{j}", WeightNorm.Load(w, $"{key}.convs1.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs1.{j}.bias", channels), 1, (kernel * d - d) / 2, d);
            _convs2[j] = new Conv1d($"{path}.convs2.{j}", WeightNorm.Load(w, $"{key}.convs2.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs2.{j}.bias", channels), 1, (kernel - 1) / 2);
            _alpha1[j] = WeightNorm.Plain(w, $"{key}.activations1.{j}.alpha", channels).ToFloatArray();
            _alpha2[j] = WeightNorm.Plain(w, $"{key}.activations2.{j}.alpha", channels).ToFloatArray();
        }
    }

    /// <summary>x [B, C, T] → x after the three rounds; two scratch tensors are reused across the rounds (the input is not modified).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        if (x.Rank != 3 || x.Shape[1] != Channels)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(x.Shape)} must be [B, {Channels}, T]");
        if (x.DType != DType.F32 || !x.IsContiguous) x = x.To(DType.F32);
        var a = _scratch?.Rent(x.Shape) ?? Tensor.Zeros(DType.F32, x.Shape);
        var b = _scratch?.Rent(x.Shape) ?? Tensor.Zeros(DType.F32, x.Shape);
        Tensor? acc = null;
        for (int j = 0; j < _convs1.Length; j++)
        {
            var cur = acc ?? x;
            Snake.Apply(cur, _alpha1[j], a);
            _convs1[j].ForwardInto(a, b);
            Snake.Apply(b, _alpha2[j], b);
            _convs2[j].ForwardInto(b, a);
            // x = convs2(…) + x, as the official `x = xt + x`
            acc ??= _scratch?.Rent(x.Shape) ?? Tensor.Zeros(DType.F32, x.Shape);
            System.Numerics.Tensors.TensorPrimitives.Add(a.AsSpan<float>(), cur.AsSpan<float>(), acc.AsWritableSpan<float>());
        }
        _scratch?.Return(a);
        _scratch?.Return(b);
        var result = acc ?? x;
        trace?.Record(Path, result);
        return result;
    }
}

/// <summary>
/// <c>ConvRNNF0Predictor</c> (docs/model.md §7.10 step 1): five weight-normed Conv1d(k3, p1) + ELU, then Linear → 1 and |·|.
/// The hidden width (cond_channels) is read from the checkpoint.
/// </summary>
public sealed class F0Predictor
{
    private readonly Conv1d[] _condnet;
    private readonly Linear _classifier;

    public string Path { get; }
    public int InChannels { get; }
    public int CondChannels { get; }
    /// <summary>condnet.0/2/4/6/8 (each followed by ELU) and the classifier Linear(cond → 1).</summary>
    public IReadOnlyList<Conv1d> Condnet => _condnet;
    public Linear Classifier => _classifier;

    public F0Predictor(Weights w, string key, string path, int inChannels)
    {
        Path = path;
        InChannels = inChannels;
        var first = WeightNorm.Load(w, $"{key}.condnet.0", -1, inChannels, 3);
        CondChannels = first.Shape[0];
        _condnet = new Conv1d[5];
        for (int i = 0; i < 5; i++)
        {
            var weight = i == 0 ? first : WeightNorm.Load(w, $"{key}.condnet.{2 * i}", CondChannels, CondChannels, 3);
            _condnet[i] = new Conv1d($"{path}.condnet.{2 * i}", weight, WeightNorm.Plain(w, $"{key}.condnet.{2 * i}.bias", CondChannels), 1, 1);
        }
        _classifier = new Linear($"{path}.classifier", WeightNorm.Plain(w, $"{key}.classifier.weight", 1, CondChannels), WeightNorm.Plain(w, $"{key}.classifier.bias", 1));
    }

    /// <summary>mel [B, C, T] → f0 [B, T] in Hz.</summary>
    public Tensor Forward(Tensor mel, Trace? trace = null)
    {
        var x = mel;
        foreach (var conv in _condnet) x = Ops.Elu(conv.Forward(x), 1f);
        x = Ops.Abs(_classifier.Forward(x.Transpose().Contiguous())); // [B, T, 1]
        var f0 = x.Reshape(x.Shape[0], x.Shape[1]);
        trace?.Record(Path, f0);
        return f0;
    }
}
