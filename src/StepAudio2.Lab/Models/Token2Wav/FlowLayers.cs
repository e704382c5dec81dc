using System.Numerics.Tensors;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// Weight access for the flow: flow.pt keys carry no prefix (<c>encoder.embed.out.0.weight</c>) while activations are
/// traced under <c>flow.</c> (<c>flow.encoder.embed.out.0</c>), so each module gets the key and the trace path apart.
/// </summary>
internal static class FlowWeights
{
    public const string Root = "flow";

    public static string TracePath(string key) => $"{Root}.{key}";

    /// <summary>torch.nn.Linear <c>{key}.weight</c> [out, in] (+ <c>{key}.bias</c> [out]).</summary>
    public static Linear Linear(Weights w, string key, int outFeatures, int inFeatures, bool bias = true) =>
        new(TracePath(key), w.Get(key + ".weight", outFeatures, inFeatures), bias ? w.Get(key + ".bias", outFeatures) : null);

    /// <summary>torch.nn.LayerNorm with affine <c>{key}.weight</c>/<c>.bias</c> [dim].</summary>
    public static LayerNorm LayerNorm(Weights w, string key, int dim, float eps) =>
        new(TracePath(key), w.Get(key + ".weight", dim), w.Get(key + ".bias", dim), eps);

    /// <summary>torch.nn.Conv1d <c>{key}.weight</c> [Cout, Cin, K] + bias, run time-major with the given zero padding.</summary>
    public static FlowConv1d Conv(Weights w, string key, int cout, int cin, int kernel, int padLeft, int padRight) =>
        new(TracePath(key), w.Get(key + ".weight", cout, cin, kernel), w.Get(key + ".bias", cout), padLeft, padRight);
}

/// <summary>
/// torch.nn.Conv1d (stride 1, no dilation) applied to time-major activations [B, T, Cin] with explicit zero padding
/// (padLeft, padRight) — the causal and look-ahead convolutions of the flow (pre-lookahead, up_layer, DiT conv block).
/// The checkpoint weight [Cout, Cin, K] is re-laid once to [Cout, K·Cin] so that an output frame is one GEMM row over
/// the K input frames of its window, copied contiguously (no transposes around the conv).
/// </summary>
public sealed class FlowConv1d
{
    private readonly Tensor _weight; // [Cout, K·Cin], column k·Cin + i = W[:, i, k]
    private readonly Tensor _bias;

    public FlowConv1d(string path, Tensor weight, Tensor bias, int padLeft, int padRight)
    {
        if (weight.Rank != 3) throw new ArgumentException($"{path}: conv weight {Tensor.ShapeString(weight.Shape)} must be [Cout, Cin, K]");
        Path = path;
        OutChannels = weight.Shape[0];
        InChannels = weight.Shape[1];
        Kernel = weight.Shape[2];
        PadLeft = padLeft;
        PadRight = padRight;
        var src = weight.ToFloatArray();
        var dst = new float[src.Length];
        int cin = InChannels, k = Kernel;
        for (int o = 0; o < OutChannels; o++)
            for (int i = 0; i < cin; i++)
                for (int j = 0; j < k; j++)
                    dst[((long)o * k + j) * cin + i] = src[((long)o * cin + i) * k + j];
        _weight = Tensor.FromArray(dst, OutChannels, k * cin);
        _bias = bias;
    }

    public string Path { get; }
    public int InChannels { get; }
    public int OutChannels { get; }
    public int Kernel { get; }
    public int PadLeft { get; }
    public int PadRight { get; }
    /// <summary>The re-laid weight [Cout, K·Cin] (column k·Cin + i = W[:, i, k]), for fused paths that run their own im2col.</summary>
    internal Tensor PackedWeight => _weight;
    /// <summary><c>{key}.bias</c> [Cout].</summary>
    internal Tensor Bias => _bias;

    /// <summary>[B, T, Cin] → [B, T + padLeft + padRight − K + 1, Cout], time-major.</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 3 || x.Shape[2] != InChannels)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(x.Shape)} must be [B, T, {InChannels}]");
        x = x.DType == DType.F32 && x.IsContiguous ? x : x.To(DType.F32);
        int bsz = x.Shape[0], t = x.Shape[1], cin = InChannels, k = Kernel;
        int tout = t + PadLeft + PadRight - k + 1;
        if (tout < 1) throw new ArgumentException($"{Path}: {t} frames are too few for kernel {k}");
        var cols = new float[(long)bsz * tout * k * cin];
        var src = x.AsSpan<float>();
        for (int b = 0; b < bsz; b++)
            for (int to = 0; to < tout; to++)
            {
                long row = ((long)b * tout + to) * k * cin;
                for (int j = 0; j < k; j++)
                {
                    int ti = to + j - PadLeft;
                    if ((uint)ti < (uint)t)
                        src.Slice((b * t + ti) * cin, cin).CopyTo(cols.AsSpan((int)(row + (long)j * cin), cin));
                }
            }
        var y = Ops.Linear(Tensor.FromArray(cols, bsz * tout, k * cin), _weight, _bias);
        return y.Reshape(bsz, tout, OutChannels);
    }
}

/// <summary>Row-wise helpers of the DiT's adaptive LayerNorm, with PyTorch's rounding order (no fused multiply-add).</summary>
internal static class AdaLn
{
    /// <summary>In place: x[b, t, :] ← x[b, t, :]·(1 + scale[b]) + shift[b] (<c>modulate</c>); x [B, T, D], chunks read from m [B, M] at the given offsets.</summary>
    public static void Modulate(Tensor x, Tensor m, int shiftOffset, int scaleOffset)
    {
        int bsz = x.Shape[0], t = x.Shape[1], d = x.Shape[2], mw = m.Shape[^1];
        var xs = x.AsWritableSpan<float>();
        var ms = m.AsSpan<float>();
        var onePlus = new float[d];
        for (int b = 0; b < bsz; b++)
        {
            var shift = ms.Slice(b * mw + shiftOffset, d);
            TensorPrimitives.Add(ms.Slice(b * mw + scaleOffset, d), 1f, onePlus);
            for (int i = 0; i < t; i++)
            {
                var row = xs.Slice((b * t + i) * d, d);
                TensorPrimitives.Multiply(row, onePlus, row);
                TensorPrimitives.Add(row, shift, row);
            }
        }
    }

    /// <summary>In place: h[b, t, :] ← h[b, t, :] + gate[b]·y[b, t, :] (the gated residual); y is overwritten.</summary>
    public static void GatedAdd(Tensor h, Tensor y, Tensor m, int gateOffset)
    {
        int bsz = h.Shape[0], t = h.Shape[1], d = h.Shape[2], mw = m.Shape[^1];
        if (!y.Shape.SequenceEqual(h.Shape)) throw new ArgumentException($"gated residual: {Tensor.ShapeString(y.Shape)} vs {Tensor.ShapeString(h.Shape)}");
        var hs = h.AsWritableSpan<float>();
        var ys = y.AsWritableSpan<float>();
        var ms = m.AsSpan<float>();
        for (int b = 0; b < bsz; b++)
        {
            var gate = ms.Slice(b * mw + gateOffset, d);
            for (int i = 0; i < t; i++)
            {
                var yr = ys.Slice((b * t + i) * d, d);
                var hr = hs.Slice((b * t + i) * d, d);
                TensorPrimitives.Multiply(yr, gate, yr);
                TensorPrimitives.Add(hr, yr, hr);
            }
        }
    }
}

/// <summary>Float32 sinusoid helpers shared by the flow's position table and time embedding.</summary>
internal static class FlowMath
{
    // float32 sin/cos/exp of a float32 argument, correctly rounded via double (what PyTorch's f32 kernels return to ≤ 1 ulp)
    public static float Sin(float x) => (float)Math.Sin(x);
    public static float Cos(float x) => (float)Math.Cos(x);
    public static float Exp(float x) => (float)Math.Exp(x);
}
