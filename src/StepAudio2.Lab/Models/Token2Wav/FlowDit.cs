using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// <c>TimestepEmbedder</c> of the DiT (docs/model.md §7.9 step 1): e = [cos((1000·t)·f_i), sin((1000·t)·f_i)], f_i =
/// exp(−ln(10000)·i/128), all float32 as the module forms them (the argument reaches ~1000 rad, so its rounding matters);
/// then <c>mlp.0</c> [D, 256] → SiLU → <c>mlp.2</c> [D, D].
/// </summary>
public sealed class TimestepEmbedder
{
    private readonly float[] _freqs;

    public TimestepEmbedder(Weights w, string key, int hidden, int frequencySize)
    {
        FrequencySize = frequencySize;
        Mlp0 = FlowWeights.Linear(w, key + ".mlp.0", hidden, frequencySize);
        Mlp2 = FlowWeights.Linear(w, key + ".mlp.2", hidden, hidden);
        int half = frequencySize / 2;
        _freqs = new float[half];
        float k = (float)-Math.Log(10000.0);
        for (int i = 0; i < half; i++) _freqs[i] = FlowMath.Exp(k * i / half);
    }

    public int FrequencySize { get; }
    public Linear Mlp0 { get; }
    public Linear Mlp2 { get; }

    /// <summary>The sinusoidal embedding [B, 256] of times t (B values).</summary>
    public Tensor Sinusoid(ReadOnlySpan<float> t)
    {
        int half = _freqs.Length;
        var e = new float[t.Length * 2 * half];
        for (int b = 0; b < t.Length; b++)
        {
            float scaled = 1000f * t[b];
            for (int i = 0; i < half; i++)
            {
                float a = scaled * _freqs[i];
                e[b * 2 * half + i] = FlowMath.Cos(a);
                e[b * 2 * half + half + i] = FlowMath.Sin(a);
            }
        }
        return Tensor.FromArray(e, t.Length, 2 * half);
    }

    /// <summary>Times [B] → conditioning c [B, D].</summary>
    public Tensor Forward(ReadOnlySpan<float> t) => Mlp2.Forward(Ops.Silu(Mlp0.Forward(Sinusoid(t))));
}

/// <summary>
/// The DiT block's <c>Attention</c>: <c>to_q/to_k/to_v</c> [H·d, D] with bias, per-head LayerNorm <c>q_norm</c>/<c>k_norm</c>
/// (affine [d], eps 1e−5), softmax(q·kᵀ/√d)·v with no positional term, <c>proj</c> [D, H·d] + bias.
/// </summary>
public sealed class DitAttention
{
    public DitAttention(Weights w, string key, int hidden, int heads, int headDim)
    {
        Heads = heads;
        HeadDim = headDim;
        int inner = heads * headDim;
        ToQ = FlowWeights.Linear(w, key + ".to_q", inner, hidden);
        ToK = FlowWeights.Linear(w, key + ".to_k", inner, hidden);
        ToV = FlowWeights.Linear(w, key + ".to_v", inner, hidden);
        QNorm = FlowWeights.LayerNorm(w, key + ".q_norm", headDim, 1e-5f);
        KNorm = FlowWeights.LayerNorm(w, key + ".k_norm", headDim, 1e-5f);
        Proj = FlowWeights.Linear(w, key + ".proj", hidden, inner);
    }

    public int Heads { get; }
    public int HeadDim { get; }
    public Linear ToQ { get; }
    public Linear ToK { get; }
    public Linear ToV { get; }
    public LayerNorm QNorm { get; }
    public LayerNorm KNorm { get; }
    public Linear Proj { get; }

    /// <summary>[B, T, D] → [B, T, D]; attention is bidirectional over all T frames (the padding mask is all true).</summary>
    public Tensor Forward(Tensor x)
    {
        int b = x.Shape[0], t = x.Shape[1], h = Heads, d = HeadDim;
        var q = QNorm.Forward(ToQ.Forward(x).Reshape(b, t, h, d)).Permute(0, 2, 1, 3);
        var k = KNorm.Forward(ToK.Forward(x).Reshape(b, t, h, d)).Permute(0, 2, 1, 3);
        var v = ToV.Forward(x).Reshape(b, t, h, d).Permute(0, 2, 1, 3);
        var o = Ops.ScaledDotProductAttention(q, k, v, 1f / MathF.Sqrt(d));
        return Proj.Forward(o.Permute(0, 2, 1, 3).Reshape(b, t, h * d));
    }
}

/// <summary>
/// <c>CausalConvBlock</c> (module <c>conv</c>, Sequential indices 1, 3, 6 hold weights): causal Conv1d [D, D, 3] (left pad 2)
/// → LayerNorm(D, affine, 1e−5) → Mish → causal Conv1d [D, D, 3]; the Transpose entries are layout only.
/// </summary>
public sealed class CausalConvBlock
{
    public CausalConvBlock(Weights w, string key, int channels, int kernel = 3)
    {
        Conv1 = FlowWeights.Conv(w, key + ".block.1", channels, channels, kernel, kernel - 1, 0);
        Norm = FlowWeights.LayerNorm(w, key + ".block.3", channels, 1e-5f);
        Conv2 = FlowWeights.Conv(w, key + ".block.6", channels, channels, kernel, kernel - 1, 0);
    }

    public FlowConv1d Conv1 { get; }
    public LayerNorm Norm { get; }
    public FlowConv1d Conv2 { get; }

    /// <summary>[B, T, D] → [B, T, D] (time-major).</summary>
    public Tensor Forward(Tensor x) => Conv2.Forward(Ops.Mish(Norm.Forward(Conv1.Forward(x))));
}

/// <summary>
/// <c>DiTBlock</c> (docs/model.md §7.9 step 3): <c>adaLN_modulation.1</c> [9D, D] on SiLU(c) gives shift/scale/gate for attention,
/// MLP and conv (in that chunk order); the residual order is attention, conv, MLP; norm1/2/3 are LayerNorm without affine,
/// eps 1e−6. <c>mlp.fc1</c> [U, D] → tanh-GELU → <c>mlp.fc2</c> [D, U].
/// </summary>
public sealed class DitBlock
{
    private readonly int _d;

    public DitBlock(Weights w, string key, DitConfig c)
    {
        _d = c.HiddenSize;
        Attn = new DitAttention(w, key + ".attn", c.HiddenSize, c.NumHeads, c.HeadDim);
        Conv = new CausalConvBlock(w, key + ".conv", c.HiddenSize);
        MlpFc1 = FlowWeights.Linear(w, key + ".mlp.fc1", c.MlpHidden, c.HiddenSize);
        MlpFc2 = FlowWeights.Linear(w, key + ".mlp.fc2", c.HiddenSize, c.MlpHidden);
        AdaLnModulation = FlowWeights.Linear(w, key + ".adaLN_modulation.1", 9 * c.HiddenSize, c.HiddenSize);
        Fused = new FusedDitBlock(w, key, c, this);
    }

    /// <summary>The same block on reused buffers (q/k/v concatenated at load); see <see cref="Dit.UseFusedKernels"/>.</summary>
    internal FusedDitBlock Fused { get; }

    public DitAttention Attn { get; }
    public CausalConvBlock Conv { get; }
    public Linear MlpFc1 { get; }
    public Linear MlpFc2 { get; }
    public Linear AdaLnModulation { get; }

    /// <summary>Updates h [B, T, D] in place (the caller owns it) given SiLU(c) [B, D]; returns h.</summary>
    public Tensor Forward(Tensor h, Tensor siluC)
    {
        int d = _d;
        var m = AdaLnModulation.Forward(siluC); // [B, 9D]: shift/scale/gate × (attn, mlp, conv)
        var a = Norm(h);
        AdaLn.Modulate(a, m, 0 * d, 1 * d);
        AdaLn.GatedAdd(h, Attn.Forward(a), m, 2 * d);
        var c = Norm(h);
        AdaLn.Modulate(c, m, 6 * d, 7 * d);
        AdaLn.GatedAdd(h, Conv.Forward(c), m, 8 * d);
        var f = Norm(h);
        AdaLn.Modulate(f, m, 3 * d, 4 * d);
        AdaLn.GatedAdd(h, MlpFc2.Forward(Ops.GeluApprox(MlpFc1.Forward(f))), m, 5 * d);
        return h;
    }

    internal static Tensor Norm(Tensor x) => Ops.LayerNorm(x, null, null, 1e-6f);
}

/// <summary>
/// The <c>DiT</c> estimator (module <c>flow.decoder.estimator</c>, docs/model.md §7.9): time embedding, channel concat
/// [x, μ, s, cond] → <c>in_proj</c> [D, 320], <c>blocks.0..</c>, <c>final_layer</c> (<c>adaLN_modulation.1</c> [2D, D] shift then
/// scale, LayerNorm without affine 1e−6, <c>linear</c> [80, D]).
/// </summary>
public sealed class Dit
{
    private readonly PinnedFloats? _inProjBias, _finalBias;

    public Dit(Weights w, DitConfig c, string key = "decoder.estimator")
    {
        Config = c;
        Path = FlowWeights.TracePath(key);
        TEmbedder = new TimestepEmbedder(w, key + ".t_embedder", c.HiddenSize, c.FrequencyEmbeddingSize);
        InProj = FlowWeights.Linear(w, key + ".in_proj", c.HiddenSize, c.InChannels);
        Blocks = Enumerable.Range(0, c.Depth).Select(i => new DitBlock(w, $"{key}.blocks.{i}", c)).ToArray();
        FinalAdaLn = FlowWeights.Linear(w, key + ".final_layer.adaLN_modulation.1", 2 * c.HiddenSize, c.HiddenSize);
        FinalLinear = FlowWeights.Linear(w, key + ".final_layer.linear", c.OutChannels, c.HiddenSize);
        _inProjBias = FlowGemm.Bias(InProj.Bias);
        _finalBias = FlowGemm.Bias(FinalLinear.Bias);
    }

    /// <summary>
    /// Whether the velocity is computed by the fused kernels (default: activation buffers reused across blocks and
    /// steps, q/k/v as one GEMM, SIMD row passes, attention heads split across cores) or by the op-by-op composition of
    /// engine ops that mirrors the module line by line (kept as the readable reference and the benchmark's baseline).
    /// Both agree to the f32 tier.
    /// </summary>
    public bool UseFusedKernels { get; set; } = true;

    public DitConfig Config { get; }
    public string Path { get; }
    public TimestepEmbedder TEmbedder { get; }
    public Linear InProj { get; }
    public DitBlock[] Blocks { get; }
    public Linear FinalAdaLn { get; }
    public Linear FinalLinear { get; }

    /// <summary>
    /// The upstream signature: x, μ, cond [B, 80, T], speaker s [B, 80], times t [B] → velocity [B, 80, T]
    /// (the all-true mask is implied).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor mu, ReadOnlySpan<float> t, Tensor spks, Tensor cond)
    {
        int b = x.Shape[0], c = Config.OutChannels;
        if (x.Rank != 3 || x.Shape[1] != c || !mu.Shape.SequenceEqual(x.Shape) || !cond.Shape.SequenceEqual(x.Shape) || t.Length != b
            || spks.ElementCount != (long)b * c)
            throw new ArgumentException($"{Path}: x {Tensor.ShapeString(x.Shape)}, mu {Tensor.ShapeString(mu.Shape)}, cond {Tensor.ShapeString(cond.Shape)}, " +
                $"spks {Tensor.ShapeString(spks.Shape)}, {t.Length} times do not agree with [B, {c}, T], [B, {c}], [B]");
        int frames = x.Shape[2];
        var packed = new float[(long)b * frames * 4 * c];
        Pack(packed, b, frames, c, x.ToFloatArray(), mu.ToFloatArray(), spks.ToFloatArray(), cond.ToFloatArray());
        return ForwardPacked(Tensor.FromArray(packed, b, frames, 4 * c), t, null);
    }

    /// <summary>
    /// Writes the channel concat [x | μ | s | cond] time-major into <paramref name="dst"/> [B, T, 4C] from channels-first
    /// [B, C, T] inputs (s [B, C] broadcast over T); a null input is zeros for every row.
    /// </summary>
    internal static void Pack(Span<float> dst, int b, int frames, int c, float[]? x, float[]? mu, float[]? spks, float[]? cond)
    {
        int w = 4 * c;
        for (int bi = 0; bi < b; bi++)
            for (int ch = 0; ch < c; ch++)
            {
                long src = ((long)bi * c + ch) * frames;
                float s = spks is null ? 0f : spks[bi * c + ch];
                for (int t = 0; t < frames; t++)
                {
                    long o = ((long)bi * frames + t) * w + ch;
                    dst[(int)o] = x is null ? 0f : x[src + t];
                    dst[(int)(o + c)] = mu is null ? 0f : mu[src + t];
                    dst[(int)(o + 2 * c)] = s;
                    dst[(int)(o + 3 * c)] = cond is null ? 0f : cond[src + t];
                }
            }
    }

    /// <summary>Buffers for <see cref="ForwardPacked"/> on B rows of T frames (null when the op-by-op path is selected).</summary>
    internal DitScratch? NewScratch(int batch, int frames) =>
        UseFusedKernels ? new DitScratch(Config, batch, frames, Gemm.MaxThreads) : null;

    /// <summary>Packed input [B, T, 320] and times [B] → velocity [B, 80, T]; <paramref name="scratch"/> (from
    /// <see cref="NewScratch"/>) is reused across calls, null allocates one when fused.</summary>
    internal Tensor ForwardPacked(Tensor packed, ReadOnlySpan<float> t, DitScratch? scratch)
    {
        if (!UseFusedKernels) return ForwardOpByOp(packed, t);
        scratch ??= NewScratch(packed.Shape[0], packed.Shape[1])!;
        return ForwardFused(packed, t, scratch);
    }

    private unsafe Tensor ForwardFused(Tensor packed, ReadOnlySpan<float> t, DitScratch s)
    {
        int b = packed.Shape[0], frames = packed.Shape[1], d = Config.HiddenSize, c = Config.OutChannels, n = b * frames;
        if (s.Batch != b || s.Frames != frames) throw new ArgumentException($"{Path}: scratch for [{s.Batch}, {s.Frames}] used on [{b}, {frames}]");
        packed = packed.DType == DType.F32 && packed.IsContiguous ? packed : packed.To(DType.F32);
        var siluC = Ops.Silu(TEmbedder.Forward(t)); // every adaLN takes SiLU(c)
        FlowGemm.Linear((float*)(packed.Storage.Pointer + packed.Offset * 4), n, Config.InChannels, InProj.Weight,
            _inProjBias is null ? null : _inProjBias.Pointer, s.H.Pointer, d);
        GC.KeepAlive(packed);
        foreach (var block in Blocks) block.Fused.Forward(s, block.AdaLnModulation.Forward(siluC).ToFloatArray());

        var m = FinalAdaLn.Forward(siluC).ToFloatArray(); // [B, 2D]: shift, scale
        var onePlus = new float[m.Length];
        for (int i = 0; i < m.Length; i++) onePlus[i] = m[i] + 1f;
        RowKernels.For(n, s.Threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int bi = r / frames;
                RowKernels.LayerNorm(s.H.Row(r, d), s.A.Row(r, d), 1e-6f, default, default, onePlus.AsSpan(bi * 2 * d + d, d), m.AsSpan(bi * 2 * d, d));
            }
        });
        FlowGemm.Linear(s.A.Pointer, n, d, FinalLinear.Weight, _finalBias is null ? null : _finalBias.Pointer, s.Out.Pointer, c);
        var v = new float[(long)b * c * frames]; // [B, T, 80] → [B, 80, T]
        var o = s.Out.Array;
        for (int bi = 0; bi < b; bi++)
            for (int ti = 0; ti < frames; ti++)
                for (int ch = 0; ch < c; ch++)
                    v[((long)bi * c + ch) * frames + ti] = o[((long)bi * frames + ti) * c + ch];
        return Tensor.FromArray(v, b, c, frames);
    }

    /// <summary>The op-by-op velocity: each module step as engine ops on fresh tensors.</summary>
    private Tensor ForwardOpByOp(Tensor packed, ReadOnlySpan<float> t)
    {
        int b = packed.Shape[0], d = Config.HiddenSize;
        var siluC = Ops.Silu(TEmbedder.Forward(t)); // every adaLN takes SiLU(c)
        var h = InProj.Forward(packed);
        foreach (var block in Blocks) h = block.Forward(h, siluC);
        var m = FinalAdaLn.Forward(siluC); // [B, 2D]: shift, scale
        var y = DitBlock.Norm(h);
        AdaLn.Modulate(y, m, 0, d);
        var o = FinalLinear.Forward(y); // [B, T, 80]
        return o.Permute(0, 2, 1).Contiguous();
    }
}
