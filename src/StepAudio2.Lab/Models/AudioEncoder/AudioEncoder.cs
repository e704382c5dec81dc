using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.AudioEncoder;

/// <summary>
/// Whisper attention of the audio encoder (official <c>MultiHeadAttention</c>, docs/model.md §3.5). Weights:
/// <c>query</c> [D, D] + bias, <c>key</c> [D, D] (no bias), <c>value</c> [D, D] + bias, <c>out</c> [D, D] + bias.
/// q and k are each scaled by head_dim^-1/4 (net 1/√head_dim), as the official code splits it.
/// </summary>
public sealed class MultiHeadAttention
{
    public MultiHeadAttention(Weights w, string path, int dim, int heads)
    {
        Path = path;
        Heads = heads;
        Query = Linear.Load(w, path + ".query", dim, dim);
        Key = Linear.Load(w, path + ".key", dim, dim, bias: false);
        Value = Linear.Load(w, path + ".value", dim, dim);
        Out = Linear.Load(w, path + ".out", dim, dim);
    }

    public string Path { get; }
    public int Heads { get; }
    public Linear Query { get; }
    public Linear Key { get; }
    public Linear Value { get; }
    public Linear Out { get; }

    /// <param name="x">[B, T, D]</param>
    /// <param name="maskBias">[B, 1, 1, T] additive key mask (0 or −1e10)</param>
    public Tensor Forward(Tensor x, Tensor maskBias, Trace? trace)
    {
        int b = x.Shape[0], t = x.Shape[1], d = x.Shape[2], hd = d / Heads;
        float scale = MathF.Pow(hd, -0.25f);
        var q = Query.Forward(x, trace);
        var k = Key.Forward(x, trace);
        var v = Value.Forward(x, trace);
        // [B, T, H, hd] → [B, H, T, hd] as views (scaled before the permute: the same values, and no copy per layout
        // change; the backends take head views with contiguous rows as they are)
        q = Ops.Multiply(q, scale).Reshape(b, t, Heads, hd).Permute(0, 2, 1, 3);
        k = Ops.Multiply(k, scale).Reshape(b, t, Heads, hd).Permute(0, 2, 1, 3);
        v = v.Reshape(b, t, Heads, hd).Permute(0, 2, 1, 3);
        Tensor? scores = trace is not null && trace.Wants(Path + ".qk") ? Ops.Zeros(DType.F32, b, Heads, t, t) : null;
        var o = Ops.ScaledDotProductAttention(q, k, v, 1f, maskBias, causal: false, scoresOut: scores);
        if (scores is not null) trace!.Record(Path + ".qk", scores);
        o = o.Permute(0, 2, 1, 3).Reshape(b, t, d);
        var y = Out.Forward(o, trace);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>Pre-LN block (official <c>ResidualAttentionBlock</c>): x + attn(attn_ln(x)); x + mlp(mlp_ln(x)), mlp = Linear·GELU·Linear.</summary>
public sealed class ResidualAttentionBlock
{
    public ResidualAttentionBlock(Weights w, string path, int dim, int heads)
    {
        Path = path;
        Attn = new MultiHeadAttention(w, path + ".attn", dim, heads);
        AttnLn = LayerNorm.Load(w, path + ".attn_ln", dim, 1e-5f);
        Mlp0 = Linear.Load(w, path + ".mlp.0", 4 * dim, dim);
        Mlp2 = Linear.Load(w, path + ".mlp.2", dim, 4 * dim);
        MlpLn = LayerNorm.Load(w, path + ".mlp_ln", dim, 1e-5f);
    }

    public string Path { get; }
    public MultiHeadAttention Attn { get; }
    public LayerNorm AttnLn { get; }
    /// <summary><c>mlp.0</c>: [4D, D]; <c>mlp.1</c> is the exact GELU; <c>mlp.2</c>: [D, 4D].</summary>
    public Linear Mlp0 { get; }
    public Linear Mlp2 { get; }
    public LayerNorm MlpLn { get; }

    public Tensor Forward(Tensor x, Tensor maskBias, Trace? trace)
    {
        x = Ops.Add(x, Attn.Forward(AttnLn.Forward(x, trace), maskBias, trace));
        var h = Mlp0.Forward(MlpLn.Forward(x, trace), trace);
        h = Ops.Gelu(h);
        trace?.Record(Path + ".mlp.1", h);
        h = Mlp2.Forward(h, trace);
        trace?.Record(Path + ".mlp", h);
        x = Ops.Add(x, h);
        trace?.Record(Path, x);
        return x;
    }
}

/// <summary>
/// The Whisper-style audio encoder (official <c>AudioEncoder</c>, module path <c>encoder</c>, docs/model.md §3):
/// conv1 [D, n_mels, 3] (pad 1) → GELU → conv2 [D, D, 3] (stride 2, pad 1) → GELU → + positional_embedding [n_ctx, D]
/// → n_layer pre-LN blocks → avg_pooler (k 2, s 2) → after_norm.
/// </summary>
public sealed class AudioEncoder
{
    public AudioEncoder(Weights w, AudioEncoderConfig c, string path = "encoder")
    {
        Path = path;
        Config = c;
        Conv1 = Conv1d.Load(w, path + ".conv1", c.NAudioState, c.NMels, 3, stride: 1, padding: 1);
        Conv2 = Conv1d.Load(w, path + ".conv2", c.NAudioState, c.NAudioState, 3, stride: 2, padding: 1);
        PositionalEmbedding = w.Get(path + ".positional_embedding.weight", c.NAudioCtx, c.NAudioState);
        Blocks = Enumerable.Range(0, c.NAudioLayer).Select(i => new ResidualAttentionBlock(w, $"{path}.blocks.{i}", c.NAudioState, c.NAudioHead)).ToArray();
        AfterNorm = LayerNorm.Load(w, path + ".after_norm", c.NAudioState, 1e-5f);
    }

    public string Path { get; }
    public AudioEncoderConfig Config { get; }
    public Conv1d Conv1 { get; }
    public Conv1d Conv2 { get; }
    /// <summary>Learned table [n_audio_ctx, D]; rows 0..T₂−1 are added after conv2.</summary>
    public Tensor PositionalEmbedding { get; }
    public ResidualAttentionBlock[] Blocks { get; }
    public LayerNorm AfterNorm { get; }

    /// <summary>
    /// Key mask after conv2 (docs/model.md §3.3): valid[t] = t &lt; len over the padded mel length T, subsampled from (T+1) mod 2
    /// with step 2; −1e10 where padded. Shape [B, 1, 1, T₂].
    /// </summary>
    public static Tensor PaddingMaskBias(ReadOnlySpan<int> lengths, int paddedLength)
    {
        int t2 = (paddedLength - 1) / 2 + 1, start = (paddedLength + 1) % 2;
        var bias = new float[lengths.Length * t2];
        for (int b = 0; b < lengths.Length; b++)
            for (int j = 0; j < t2; j++)
                bias[b * t2 + j] = start + 2 * j < lengths[b] ? 0f : -1e10f;
        return Tensor.FromArray(bias, lengths.Length, 1, 1, t2);
    }

    /// <summary>Valid output frames per chunk: ⌊(⌊(len + 1)/2⌋)/2⌋ (docs/model.md §3.6).</summary>
    public static int OutputLength(int melLength) => (melLength + 1) / 2 / 2;

    /// <param name="mels">[B, n_mels, T] zero-padded batch of chunk mels.</param>
    /// <param name="lengths">valid mel frames per chunk (L − 2, docs/model.md §2.7).</param>
    /// <returns>[B, ⌊T₂/2⌋, D] and the valid lengths after pooling.</returns>
    public (Tensor Output, int[] Lengths) Forward(Tensor mels, ReadOnlySpan<int> lengths, Trace? trace = null)
    {
        if (mels.Rank != 3 || mels.Shape[1] != Config.NMels || mels.Shape[0] != lengths.Length)
            throw new ArgumentException($"encoder input {Tensor.ShapeString(mels.Shape)} must be [B={lengths.Length}, {Config.NMels}, T]");
        int t = mels.Shape[2];
        var mask = PaddingMaskBias(lengths, t);
        var x = Ops.Gelu(Conv1.Forward(mels, trace));
        x = Ops.Gelu(Conv2.Forward(x, trace));
        x = x.Permute(0, 2, 1).Contiguous();
        int t2 = x.Shape[1];
        if (t2 > Config.NAudioCtx) throw new ArgumentException($"{t2} encoder frames exceed the positional table of {Config.NAudioCtx} (chunks are ≤ 25 s)");
        x = Ops.Add(x, PositionalEmbedding.Slice(0, 0, t2));
        foreach (var block in Blocks) x = block.Forward(x, mask, trace);
        var pooled = Ops.AvgPool1d(x.Permute(0, 2, 1), 2, 2);
        trace?.Record(Path + ".avg_pooler", pooled);
        x = AfterNorm.Forward(pooled.Permute(0, 2, 1), trace);
        trace?.Record(Path, x);
        var outLengths = new int[lengths.Length];
        for (int i = 0; i < outLengths.Length; i++) outLengths[i] = OutputLength(lengths[i]);
        return (x, outLengths);
    }
}

/// <summary>
/// The adaptor (official <c>Adaptor</c>, module path <c>adapter</c>, docs/model.md §4): conv [D, D, 3] stride 2 pad 1 → GELU →
/// linear1 [H, D] → ReLU (module <c>relu</c>) → linear2 [llm_dim, H]. H is 2048 in the published model and is read from
/// <c>adapter.linear1.weight</c>.
/// </summary>
public sealed class Adaptor
{
    public Adaptor(Weights w, AudioEncoderConfig c, string path = "adapter")
    {
        Path = path;
        Conv = Conv1d.Load(w, path + ".conv", c.NAudioState, c.NAudioState, c.KernelSize, stride: c.AdapterStride, padding: (c.KernelSize - 1) / 2);
        Linear1 = Linear.LoadInferOut(w, path + ".linear1", c.NAudioState);
        Linear2 = Linear.Load(w, path + ".linear2", c.LlmDim, Linear1.OutFeatures);
    }

    public string Path { get; }
    public Conv1d Conv { get; }
    public Linear Linear1 { get; }
    public Linear Linear2 { get; }

    /// <summary>
    /// Valid adaptor frames for an encoder length: ⌊(len − 1)/2⌋ + 1 with Python's floor division (= the chunk's audio-token
    /// count), so an empty encoder output (a chunk of ≤ 20 ms) gives 0 rows, not the 1 that C#'s truncating division would.
    /// </summary>
    public static int OutputLength(int encoderLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(encoderLength);
        return encoderLength == 0 ? 0 : (encoderLength - 1) / 2 + 1;
    }

    /// <param name="x">[B, T₃, D] encoder output.</param>
    /// <returns>[B, T₄, llm_dim].</returns>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var h = Ops.Gelu(Conv.Forward(x.Permute(0, 2, 1), trace)).Permute(0, 2, 1);
        h = Linear1.Forward(h, trace);
        h = Ops.Relu(h);
        trace?.Record(Path + ".relu", h);
        h = Linear2.Forward(h, trace);
        trace?.Record(Path, h);
        return h;
    }
}
