using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine;

/// <summary>
/// The weights of one DiT block (CosyVoice 2 / Step-Audio 2 <c>DiTBlock</c>, the flow's estimator) as the fused
/// <see cref="IBackend.DitBlock"/> capability takes them: PyTorch layouts, f32 or bf16, used in place. One instance per
/// block, held by the model for its life, so a backend may key prepared forms (packed, re-laid) on it or on its tensors.
/// </summary>
public sealed record DitBlockWeights
{
    public required int Heads { get; init; }
    public required int HeadDim { get; init; }
    /// <summary><c>attn.to_q/to_k/to_v</c> [H·d, D] and biases [H·d].</summary>
    public required Tensor ToQ { get; init; }
    public required Tensor ToQBias { get; init; }
    public required Tensor ToK { get; init; }
    public required Tensor ToKBias { get; init; }
    public required Tensor ToV { get; init; }
    public required Tensor ToVBias { get; init; }
    /// <summary><c>attn.q_norm</c>/<c>k_norm</c> affine [d] (LayerNorm eps 1e−5 per head).</summary>
    public required Tensor QNormWeight { get; init; }
    public required Tensor QNormBias { get; init; }
    public required Tensor KNormWeight { get; init; }
    public required Tensor KNormBias { get; init; }
    /// <summary><c>attn.proj</c> [D, H·d] (+ bias).</summary>
    public required Tensor Proj { get; init; }
    public Tensor? ProjBias { get; init; }
    /// <summary><c>conv.block.1</c> / <c>conv.block.6</c>: causal Conv1d [D, D, K] (left pad K−1) + bias [D].</summary>
    public required Tensor Conv1 { get; init; }
    public required Tensor Conv1Bias { get; init; }
    /// <summary><c>conv.block.3</c>: LayerNorm(D) affine, eps 1e−5, between the convs (then Mish).</summary>
    public required Tensor ConvNormWeight { get; init; }
    public required Tensor ConvNormBias { get; init; }
    public required Tensor Conv2 { get; init; }
    public required Tensor Conv2Bias { get; init; }
    /// <summary><c>mlp.fc1</c> [U, D] → tanh-GELU → <c>mlp.fc2</c> [D, U].</summary>
    public required Tensor Fc1 { get; init; }
    public Tensor? Fc1Bias { get; init; }
    public required Tensor Fc2 { get; init; }
    public Tensor? Fc2Bias { get; init; }

    public int Hidden => Proj.Shape[0];
    public int Inner => Heads * HeadDim;
    public int MlpHidden => Fc1.Shape[0];
}

/// <summary>
/// One linear layer (<c>torch.nn.Linear</c> or MLX's <c>QuantizedLinear</c>) as the decoder's fused capabilities take it:
/// the float weight [out, in] or, when <see cref="Quantized"/> is set, its packed codes; bias [out] or none. One
/// instance per layer, held by the model for its life.
/// </summary>
public sealed record LinearWeights(Tensor Weight, QuantizedWeight? Quantized, Tensor? Bias)
{
    public int OutFeatures => Weight.Shape[0];
    public int InFeatures => Quantized?.InFeatures ?? Weight.Shape[1];

    /// <summary>x·Wᵀ + b as one engine op (quantized or float).</summary>
    public Tensor Apply(Tensor x) => Quantized is null ? Ops.Linear(x, Weight, Bias) : Ops.QuantizedLinear(x, Quantized, Bias);
}

/// <summary>
/// The weights of one Snake residual block of HiFT (CosyVoice hifigan <c>ResBlock</c>) as
/// <see cref="IBackend.SnakeResBlock"/> takes them: per round j a dilated conv <c>convs1.j</c> [C, C, K] (dilation
/// d_j, padding (K·d_j − d_j)/2) and a plain one <c>convs2.j</c> [C, C, K] (padding (K − 1)/2), each with bias [C] and a
/// Snake α [C] before it. One instance per block, held by the model (a backend may key prepared forms on its tensors).
/// </summary>
public sealed record SnakeResBlockWeights
{
    public required IReadOnlyList<Tensor> Convs1 { get; init; }
    public required IReadOnlyList<Tensor> Convs1Bias { get; init; }
    public required IReadOnlyList<int> Dilations { get; init; }
    public required IReadOnlyList<Tensor> Convs2 { get; init; }
    public required IReadOnlyList<Tensor> Convs2Bias { get; init; }
    public required IReadOnlyList<Tensor> Alpha1 { get; init; }
    public required IReadOnlyList<Tensor> Alpha2 { get; init; }

    public int Channels => Convs1[0].Shape[0];
    public int Kernel => Convs1[0].Shape[2];
}

/// <summary>
/// The op-by-op bodies of the fused capabilities of <see cref="IBackend"/> (<see cref="IBackend.DitBlock"/>,
/// <see cref="IBackend.RelPositionAttention"/>): each module step as one engine op on the current backend, mirroring the
/// upstream module line by line. Every backend gets them for free; a backend with a fused kernel overrides the capability
/// and these stay the readable reference its kernel is tested against (call them directly to run the plain version on
/// any backend).
/// </summary>
public static class Composite
{
    /// <summary>
    /// One <c>DiTBlock</c>: h [B, T, D] and the block's modulation m = adaLN_modulation(SiLU(c)) [B, 9D] (shift/scale/gate
    /// for attention, MLP, conv in that chunk order) → the new h. Residual order attention, conv, MLP; norm1/2/3 are
    /// LayerNorm without affine, eps 1e−6; modulate is x·(1 + scale) + shift, the gated residual h + gate·y.
    /// </summary>
    public static Tensor DitBlock(Tensor h, Tensor modulation, DitBlockWeights w)
    {
        int b = h.Shape[0], d = h.Shape[2];
        if (h.Rank != 3 || modulation.Rank != 2 || modulation.Shape[0] != b || modulation.Shape[1] != 9 * d || d != w.Hidden)
            throw new ArgumentException($"dit block: h {Tensor.ShapeString(h.Shape)} / modulation {Tensor.ShapeString(modulation.Shape)} must be [B, T, {w.Hidden}] / [B, {9 * w.Hidden}]");
        Tensor Chunk(int i) => Ops.Contiguous(modulation.Slice(1, i * d, d)).Reshape(b, 1, d);
        Tensor Modulated(int shift, int scale) =>
            Ops.Add(Ops.Multiply(Ops.LayerNorm(h, null, null, 1e-6f), Ops.Multiply(Chunk(scale), 1f, 1f)), Chunk(shift));

        h = Ops.Add(h, Ops.Multiply(Ops.Contiguous(DitAttention(Modulated(0, 1), w)), Chunk(2)));
        h = Ops.Add(h, Ops.Multiply(CausalConvBlock(Modulated(6, 7), w), Chunk(8)));
        var f = Ops.Linear(Ops.GeluApprox(Ops.Linear(Modulated(3, 4), w.Fc1, w.Fc1Bias)), w.Fc2, w.Fc2Bias);
        return Ops.Add(h, Ops.Multiply(f, Chunk(5)));
    }

    /// <summary>The block's <c>Attention</c>: q/k projections with per-head LayerNorm, softmax(q·kᵀ/√d)·v, <c>proj</c>.</summary>
    private static Tensor DitAttention(Tensor x, DitBlockWeights w)
    {
        int b = x.Shape[0], t = x.Shape[1], h = w.Heads, hd = w.HeadDim;
        var q = Ops.LayerNorm(Ops.Linear(x, w.ToQ, w.ToQBias).Reshape(b, t, h, hd), w.QNormWeight, w.QNormBias, 1e-5f).Permute(0, 2, 1, 3);
        var k = Ops.LayerNorm(Ops.Linear(x, w.ToK, w.ToKBias).Reshape(b, t, h, hd), w.KNormWeight, w.KNormBias, 1e-5f).Permute(0, 2, 1, 3);
        var v = Ops.Linear(x, w.ToV, w.ToVBias).Reshape(b, t, h, hd).Permute(0, 2, 1, 3);
        var o = Ops.ScaledDotProductAttention(q, k, v, 1f / MathF.Sqrt(hd));
        return Ops.Linear(Ops.Contiguous(o.Permute(0, 2, 1, 3)).Reshape(b, t, h * hd), w.Proj, w.ProjBias);
    }

    /// <summary><c>CausalConvBlock</c>: causal conv → LayerNorm(affine, 1e−5) → Mish → causal conv, time-major [B, T, D].</summary>
    private static Tensor CausalConvBlock(Tensor x, DitBlockWeights w)
    {
        var y = ConvTimeMajor(x, w.Conv1, w.Conv1Bias, w.Conv1.Shape[2] - 1, 0);
        y = Ops.Mish(Ops.LayerNorm(y, w.ConvNormWeight, w.ConvNormBias, 1e-5f));
        return ConvTimeMajor(y, w.Conv2, w.Conv2Bias, w.Conv2.Shape[2] - 1, 0);
    }

    /// <summary>
    /// torch.nn.Conv1d (stride 1) on time-major x [B, T, Cin] with zero padding (left, right) on time → [B, T', Cout]
    /// time-major: the flow's causal and look-ahead convs, whose modules transpose around a channels-first conv.
    /// </summary>
    public static Tensor ConvTimeMajor(Tensor x, Tensor weight, Tensor? bias, int padLeft, int padRight)
    {
        var xc = x.Permute(0, 2, 1);
        if (padLeft != 0 || padRight != 0) xc = Ops.Pad(xc, [(0, 0), (0, 0), (padLeft, padRight)]);
        return Ops.Contiguous(Ops.Conv1d(xc, weight, bias).Permute(0, 2, 1));
    }

    /// <summary>
    /// One HiFT <c>ResBlock</c>: x [B, C, T] → x after the rounds x ← convs2_j(Snake(convs1_j(Snake(x, α1_j)), α2_j)) + x
    /// (the official <c>x = xt + x</c>).
    /// </summary>
    public static Tensor SnakeResBlock(Tensor x, SnakeResBlockWeights w)
    {
        int k = w.Kernel;
        for (int j = 0; j < w.Convs1.Count; j++)
        {
            int d = w.Dilations[j];
            var xt = Ops.Conv1d(Ops.Snake(x, w.Alpha1[j]), w.Convs1[j], w.Convs1Bias[j], padding: (k * d - d) / 2, dilation: d);
            xt = Ops.Conv1d(Ops.Snake(xt, w.Alpha2[j]), w.Convs2[j], w.Convs2Bias[j], padding: (k - 1) / 2);
            x = Ops.Add(xt, x);
        }
        return x;
    }

    /// <summary>
    /// The core of <c>RelPositionMultiHeadedAttention</c> (wenet / CosyVoice, batch 1) before <c>linear_out</c>: projected
    /// q, k, v [1, T, D], projected positions p [2T−1, D] (rows for r = T−1 … −(T−1)), <c>pos_bias_u</c>/<c>pos_bias_v</c>
    /// [H, d_k] → [1, T, D]. score[i, j] = ((q_i + u)·k_j + (q_i + v)·p_{i−j}) / √d_k, softmax over j, ·v. The position term
    /// is one [T, 2T−1] product per head read at column T−1−i+j (the Transformer-XL shift), here a strided view.
    /// </summary>
    public static Tensor RelPositionAttention(Tensor q, Tensor k, Tensor v, Tensor pos, Tensor posBiasU, Tensor posBiasV, int heads)
    {
        int t = q.Shape[1], d = q.Shape[2], dk = d / heads, rows = 2 * t - 1;
        if (q.Rank != 3 || q.Shape[0] != 1 || d % heads != 0 || pos.Rank != 2 || pos.Shape[0] != rows || pos.Shape[1] != d)
            throw new ArgumentException($"rel-position attention: q {Tensor.ShapeString(q.Shape)} must be [1, T, D] with D divisible by {heads}, positions {Tensor.ShapeString(pos.Shape)} [2T−1, D]");
        Tensor Heads(Tensor x) => x.Reshape(1, t, heads, dk).Permute(0, 2, 1, 3); // [1, H, T, d_k]
        var qh = q.Reshape(1, t, heads, dk);
        var qu = Ops.Add(qh, posBiasU).Permute(0, 2, 1, 3);
        var qv = Ops.Contiguous(Ops.Add(qh, posBiasV).Permute(0, 2, 1, 3)).Reshape(heads, t, dk);
        var p = pos.Reshape(rows, heads, dk).Permute(1, 2, 0); // [H, d_k, 2T−1]
        var bd = Ops.Matmul(qv, p); // [H, T, 2T−1], contiguous
        // bias[h, i, j] = bd[h, i, T−1−i+j]: flat index i·(2T−2) + (T−1) + j of each head's block
        var shifted = new Tensor(bd.Storage, bd.DType, [1, heads, t, t], [(long)t * rows * heads, (long)t * rows, rows - 1, 1], bd.Offset + (t - 1));
        float scale = 1f / MathF.Sqrt(dk);
        // softmax((q+u)·kᵀ/√d_k + bd/√d_k)·v; √d_k is a power of two in practice, so the split scaling is exact
        var o = Ops.ScaledDotProductAttention(qu, Heads(k), Heads(v), scale, Ops.Multiply(shifted, scale));
        return Ops.Contiguous(o.Permute(0, 2, 1, 3)).Reshape(1, t, d);
    }
    /// <summary>
    /// The first half of a SwiGLU MLP (Qwen2MLP before down_proj): silu(gate(x)) · up(x), op by op — the body the fused
    /// <see cref="IBackend.SwiGlu"/> kernels are held to.
    /// </summary>
    public static Tensor SwiGlu(Tensor x, LinearWeights gate, LinearWeights up) => Ops.Multiply(Ops.Silu(gate.Apply(x)), up.Apply(x));

    /// <summary>The residual add and the RMSNorm after it (Qwen2RMSNorm of x + r), op by op: (x + r, rmsnorm(x + r)·w).</summary>
    public static (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor r, Tensor weight, float eps)
    {
        // same shapes only (a residual add), as every backend's fused form: no broadcasting here
        if (!x.Shape.SequenceEqual(r.Shape))
            throw new ArgumentException($"add_rms_norm: x {Tensor.ShapeString(x.Shape)} and r {Tensor.ShapeString(r.Shape)} differ");
        var sum = Ops.Add(x, r);
        return (sum, Ops.RmsNorm(sum, weight, eps));
    }

    /// <summary>Several linear layers of the same input (q/k/v projections), one op each.</summary>
    public static Tensor[] LinearGroup(Tensor x, IReadOnlyList<LinearWeights> layers)
    {
        var ys = new Tensor[layers.Count];
        for (int i = 0; i < ys.Length; i++) ys[i] = layers[i].Apply(x);
        return ys;
    }
    /// <summary>
    /// Rotate-half RoPE of q and k at positions start..start+n−1 and the KV-cache append, op by op: q [1, n, H·hd] and
    /// k, v [1, n, Hkv·hd] (projection outputs); kCache, vCache [1, Hkv, capacity, hd] receive the rotated k and v at rows
    /// start..start+n−1. Returns the rotated q [H, n, hd].
    /// </summary>
    public static Tensor RopeAppend(Tensor q, Tensor k, Tensor v, int heads, int start, float theta, Tensor kCache, Tensor vCache)
    {
        int n = q.Shape[1], hkv = kCache.Shape[1], hd = kCache.Shape[3];
        var qr = Ops.Rope(q.Reshape(n, heads, hd).Permute(1, 0, 2), start, theta);
        var kr = Ops.Rope(k.Reshape(n, hkv, hd).Permute(1, 0, 2), start, theta);
        var vr = v.Reshape(n, hkv, hd).Permute(1, 0, 2).Contiguous();
        Ops.SliceUpdate(kCache, kr.Reshape(1, hkv, n, hd), axis: 2, start: start);
        Ops.SliceUpdate(vCache, vr.Reshape(1, hkv, n, hd), axis: 2, start: start);
        return qr;
    }
}
