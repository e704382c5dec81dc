using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
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
        return Ops.FromHost(Tensor.FromArray(e, t.Length, 2 * half)); // built from the times (inputs), then uploaded
    }

    /// <summary>Times [B] → conditioning c [B, D].</summary>
    public Tensor Forward(ReadOnlySpan<float> t) => Mlp2.Forward(Ops.Silu(Mlp0.Forward(Sinusoid(t))));
}

/// <summary>
/// The DiT block's <c>Attention</c>: <c>to_q/to_k/to_v</c> [H·d, D] with bias, per-head LayerNorm <c>q_norm</c>/<c>k_norm</c>
/// (affine [d], eps 1e−5), softmax(q·kᵀ/√d)·v with no positional term, <c>proj</c> [D, H·d] + bias. Its forward is part of
/// <see cref="IBackend.DitBlock"/> (op by op: <see cref="Composite.DitBlock"/>).
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
}

/// <summary>
/// <c>CausalConvBlock</c> (module <c>conv</c>, Sequential indices 1, 3, 6 hold weights): causal Conv1d [D, D, 3] (left pad 2)
/// → LayerNorm(D, affine, 1e−5) → Mish → causal Conv1d [D, D, 3]; the Transpose entries are layout only. Its forward is
/// part of <see cref="IBackend.DitBlock"/>.
/// </summary>
public sealed class CausalConvBlock
{
    public CausalConvBlock(Weights w, string key, int channels, int kernel = 3)
    {
        Conv1 = FlowWeights.Conv(w, key + ".block.1", channels, channels, kernel, kernel - 1, 0);
        Norm = FlowWeights.LayerNorm(w, key + ".block.3", channels, 1e-5f);
        Conv2 = FlowWeights.Conv(w, key + ".block.6", channels, channels, kernel, kernel - 1, 0);
    }

    public TimeMajorConv1d Conv1 { get; }
    public LayerNorm Norm { get; }
    public TimeMajorConv1d Conv2 { get; }
}

/// <summary>
/// <c>DiTBlock</c> (docs/model.md §7.9 step 3): <c>adaLN_modulation.1</c> [9D, D] on SiLU(c) gives shift/scale/gate for attention,
/// MLP and conv (in that chunk order); the residual order is attention, conv, MLP; norm1/2/3 are LayerNorm without affine,
/// eps 1e−6. <c>mlp.fc1</c> [U, D] → tanh-GELU → <c>mlp.fc2</c> [D, U].
/// </summary>
public sealed class DitBlock
{
    public DitBlock(Weights w, string key, DitConfig c)
    {
        Attn = new DitAttention(w, key + ".attn", c.HiddenSize, c.NumHeads, c.HeadDim);
        Conv = new CausalConvBlock(w, key + ".conv", c.HiddenSize);
        MlpFc1 = FlowWeights.Linear(w, key + ".mlp.fc1", c.MlpHidden, c.HiddenSize);
        MlpFc2 = FlowWeights.Linear(w, key + ".mlp.fc2", c.HiddenSize, c.MlpHidden);
        AdaLnModulation = FlowWeights.Linear(w, key + ".adaLN_modulation.1", 9 * c.HiddenSize, c.HiddenSize);
        Weights = new DitBlockWeights
        {
            Heads = c.NumHeads, HeadDim = c.HeadDim,
            ToQ = Attn.ToQ.Weight, ToQBias = Attn.ToQ.Bias!, ToK = Attn.ToK.Weight, ToKBias = Attn.ToK.Bias!, ToV = Attn.ToV.Weight, ToVBias = Attn.ToV.Bias!,
            QNormWeight = w.Get(key + ".attn.q_norm.weight", c.HeadDim), QNormBias = w.Get(key + ".attn.q_norm.bias", c.HeadDim),
            KNormWeight = w.Get(key + ".attn.k_norm.weight", c.HeadDim), KNormBias = w.Get(key + ".attn.k_norm.bias", c.HeadDim),
            Proj = Attn.Proj.Weight, ProjBias = Attn.Proj.Bias,
            Conv1 = Conv.Conv1.Weight, Conv1Bias = Conv.Conv1.Bias,
            ConvNormWeight = w.Get(key + ".conv.block.3.weight", c.HiddenSize), ConvNormBias = w.Get(key + ".conv.block.3.bias", c.HiddenSize),
            Conv2 = Conv.Conv2.Weight, Conv2Bias = Conv.Conv2.Bias,
            Fc1 = MlpFc1.Weight, Fc1Bias = MlpFc1.Bias, Fc2 = MlpFc2.Weight, Fc2Bias = MlpFc2.Bias,
        };
    }

    public DitAttention Attn { get; }
    public CausalConvBlock Conv { get; }
    public Linear MlpFc1 { get; }
    public Linear MlpFc2 { get; }
    public Linear AdaLnModulation { get; }
    /// <summary>The block's weights as <see cref="IBackend.DitBlock"/> takes them (the same tensors, in place).</summary>
    public DitBlockWeights Weights { get; }

    /// <summary>
    /// h [B, T, D] and SiLU(c) [B, D] → new h: the backend's fused block (<paramref name="fused"/>) or the op-by-op
    /// composition <see cref="Composite.DitBlock"/> on the current backend.
    /// </summary>
    public Tensor Forward(Tensor h, Tensor siluC, bool fused = true)
    {
        var m = AdaLnModulation.Forward(siluC); // [B, 9D]: shift/scale/gate × (attn, mlp, conv)
        return fused ? Ops.DitBlock(h, m, Weights) : Composite.DitBlock(h, m, Weights);
    }
}

/// <summary>
/// The <c>DiT</c> estimator (module <c>flow.decoder.estimator</c>, docs/model.md §7.9): time embedding, channel concat
/// [x, μ, s, cond] → <c>in_proj</c> [D, 320], <c>blocks.0..</c>, <c>final_layer</c> (<c>adaLN_modulation.1</c> [2D, D] shift then
/// scale, LayerNorm without affine 1e−6, <c>linear</c> [80, D]).
/// </summary>
public sealed class Dit
{
    public Dit(Weights w, DitConfig c, string key = "decoder.estimator")
    {
        Config = c;
        Path = FlowWeights.TracePath(key);
        TEmbedder = new TimestepEmbedder(w, key + ".t_embedder", c.HiddenSize, c.FrequencyEmbeddingSize);
        InProj = FlowWeights.Linear(w, key + ".in_proj", c.HiddenSize, c.InChannels);
        Blocks = Enumerable.Range(0, c.Depth).Select(i => new DitBlock(w, $"{key}.blocks.{i}", c)).ToArray();
        FinalAdaLn = FlowWeights.Linear(w, key + ".final_layer.adaLN_modulation.1", 2 * c.HiddenSize, c.HiddenSize);
        FinalLinear = FlowWeights.Linear(w, key + ".final_layer.linear", c.OutChannels, c.HiddenSize);
    }

    /// <summary>
    /// Whether each block runs as the backend's fused <see cref="IBackend.DitBlock"/> (default; on the CPU backend:
    /// buffers reused across blocks and steps, q/k/v GEMMs into one row buffer, SIMD row passes, attention heads split
    /// across cores) or as the op-by-op composition <see cref="Composite.DitBlock"/> that mirrors the module line by line
    /// (the readable reference and the benchmark's baseline). Both agree to the f32 tier.
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
        return Velocity(Ops.Concatenate([x, Conditioning(mu, spks, cond)], 1), t);
    }

    /// <summary>The conditioning channels [μ | s | cond] [B, 3C, T] of the estimator's input, s [B, C] repeated over T.</summary>
    internal static Tensor Conditioning(Tensor mu, Tensor spks, Tensor cond)
    {
        int b = mu.Shape[0], c = mu.Shape[1], frames = mu.Shape[2];
        return Ops.Concatenate([mu, Ops.Repeat(Ops.Contiguous(spks).Reshape(b, c, 1), 2, frames), cond], 1);
    }

    /// <summary>The channel concat [x | μ | s | cond] [B, 4C, T] and times [B] → velocity [B, C, T].</summary>
    internal Tensor Velocity(Tensor input, ReadOnlySpan<float> t)
    {
        int d = Config.HiddenSize;
        var siluC = Ops.Silu(TEmbedder.Forward(t)); // every adaLN takes SiLU(c)
        var h = InProj.Forward(input.Permute(0, 2, 1)); // time-major [B, T, D]
        foreach (var block in Blocks) h = block.Forward(h, siluC, UseFusedKernels);
        var m = FinalAdaLn.Forward(siluC); // [B, 2D]: shift, scale
        int b = m.Shape[0];
        var shift = Ops.Contiguous(m.Slice(1, 0, d)).Reshape(b, 1, d);
        var onePlusScale = Ops.Multiply(Ops.Contiguous(m.Slice(1, d, d)).Reshape(b, 1, d), 1f, 1f);
        var y = Ops.Add(Ops.Multiply(Ops.LayerNorm(h, null, null, 1e-6f), onePlusScale), shift); // modulate(norm_final(h))
        return Ops.Contiguous(FinalLinear.Forward(y).Permute(0, 2, 1)); // [B, T, 80] → [B, 80, T]
    }
}
