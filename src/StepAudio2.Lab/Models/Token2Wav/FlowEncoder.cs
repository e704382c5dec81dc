using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The relative position table of ESPnet's <c>EspnetRelPositionalEncoding</c> (docs/model.md §7.7): 2T−1 rows for
/// r = T−1, …, −(T−1), row(r)[2m] = sin(r·ω_m), row(r)[2m+1] = cos(r·ω_m), ω_m = exp(2m·(−ln 10000/d)), all in float32 as
/// the module builds them.
/// </summary>
public static class EspnetRelPositionalEncoding
{
    /// <summary>[2T−1, d] for a sequence of <paramref name="length"/> frames.</summary>
    public static Tensor Table(int length, int dim)
    {
        if (length < 1 || dim < 2 || dim % 2 != 0) throw new ArgumentException($"relative positions: length {length}, width {dim} (even, ≥ 2)");
        int rows = 2 * length - 1, half = dim / 2;
        var omega = new float[half];
        float k = (float)(-(Math.Log(10000.0) / dim));
        for (int m = 0; m < half; m++) omega[m] = FlowMath.Exp(2 * m * k);
        var pe = new float[(long)rows * dim];
        for (int c = 0; c < rows; c++)
        {
            int r = length - 1 - c;
            float p = Math.Abs(r), sign = r < 0 ? -1f : 1f; // sin(−a) = −sin(a), cos(−a) = cos(a) exactly
            var row = pe.AsSpan(c * dim, dim);
            for (int m = 0; m < half; m++)
            {
                float a = p * omega[m];
                row[2 * m] = sign * FlowMath.Sin(a);
                row[2 * m + 1] = FlowMath.Cos(a);
            }
        }
        return Ops.FromHost(Tensor.FromArray(pe, rows, dim)); // a table of the length alone, built on the host
    }
}

/// <summary>
/// <c>RelPositionMultiHeadedAttention</c> (wenet/CosyVoice, docs/model.md §7.7): weights <c>linear_q/k/v/out</c> [D, D] + bias
/// (the key bias per <c>key_bias</c>), <c>linear_pos</c> [D, D] without bias, <c>pos_bias_u</c>/<c>pos_bias_v</c> [H, d_k].
/// score[i, j] = ((Q_i + u)·K_j + (Q_i + v)·P_{i−j}) / √d_k. The position term is one [T, 2T−1] product per head against
/// the 2T−1 projected rows, then read at column T−1−i+j (the Transformer-XL shift) into the additive score bias.
/// </summary>
public sealed class RelPositionMultiHeadedAttention
{
    private readonly Tensor _posBiasU, _posBiasV;

    public RelPositionMultiHeadedAttention(Weights w, string key, int dim, int heads, bool keyBias)
    {
        Path = FlowWeights.TracePath(key);
        Heads = heads;
        HeadDim = dim / heads;
        LinearQ = FlowWeights.Linear(w, key + ".linear_q", dim, dim);
        LinearK = FlowWeights.Linear(w, key + ".linear_k", dim, dim, keyBias);
        LinearV = FlowWeights.Linear(w, key + ".linear_v", dim, dim);
        LinearOut = FlowWeights.Linear(w, key + ".linear_out", dim, dim);
        LinearPos = FlowWeights.Linear(w, key + ".linear_pos", dim, dim, bias: false);
        _posBiasU = w.Get(key + ".pos_bias_u", heads, HeadDim);
        _posBiasV = w.Get(key + ".pos_bias_v", heads, HeadDim);
    }

    public string Path { get; }
    public int Heads { get; }
    public int HeadDim { get; }
    public Linear LinearQ { get; }
    public Linear LinearK { get; }
    public Linear LinearV { get; }
    public Linear LinearOut { get; }
    public Linear LinearPos { get; }

    /// <summary>Whether <see cref="Forward"/> runs the backend's fused <see cref="IBackend.RelPositionAttention"/> (default;
    /// on the CPU backend one head per worker, no [H, T, T] bias tensor) or the op-by-op composition
    /// <see cref="Composite.RelPositionAttention"/>.</summary>
    public bool UseFusedKernels { get; set; } = true;

    /// <param name="x">[1, T, D] (batch 1: the padding mask is all valid).</param>
    /// <param name="posTable">[2T−1, D] from <see cref="EspnetRelPositionalEncoding.Table"/>.</param>
    public Tensor Forward(Tensor x, Tensor posTable, Trace? trace = null)
    {
        int b = x.Shape[0], t = x.Shape[1], rows = 2 * t - 1;
        if (b != 1) throw new ArgumentException($"{Path}: batch {b}; the flow runs batch 1");
        if (posTable.Shape[0] != rows) throw new ArgumentException($"{Path}: position table has {posTable.Shape[0]} rows, expected {rows}");
        var q = LinearQ.Forward(x);
        var k = LinearK.Forward(x);
        var v = LinearV.Forward(x);
        var p = LinearPos.Forward(posTable); // [2T−1, D]
        var o = UseFusedKernels
            ? Ops.RelPositionAttention(q, k, v, p, _posBiasU, _posBiasV, Heads)
            : Composite.RelPositionAttention(q, k, v, p, _posBiasU, _posBiasV, Heads);
        var y = LinearOut.Forward(o);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// <c>ConformerEncoderLayer</c> as the flow builds it (no macaron FFN, no conv module, pre-norm, docs/model.md §7.7):
/// x ← x + self_attn(norm_mha(x)); x ← x + feed_forward(norm_ff(x)); LayerNorms eps 1e−12;
/// <c>feed_forward</c> = w_1 [U, D] → SiLU → w_2 [D, U].
/// </summary>
public sealed class ConformerEncoderLayer
{
    public ConformerEncoderLayer(Weights w, string key, FlowEncoderConfig c)
    {
        Path = FlowWeights.TracePath(key);
        int d = c.OutputSize;
        SelfAttn = new RelPositionMultiHeadedAttention(w, key + ".self_attn", d, c.AttentionHeads, c.KeyBias);
        FeedForwardW1 = FlowWeights.Linear(w, key + ".feed_forward.w_1", c.LinearUnits, d);
        FeedForwardW2 = FlowWeights.Linear(w, key + ".feed_forward.w_2", d, c.LinearUnits);
        NormMha = FlowWeights.LayerNorm(w, key + ".norm_mha", d, 1e-12f);
        NormFf = FlowWeights.LayerNorm(w, key + ".norm_ff", d, 1e-12f);
    }

    public string Path { get; }
    public RelPositionMultiHeadedAttention SelfAttn { get; }
    public Linear FeedForwardW1 { get; }
    public Linear FeedForwardW2 { get; }
    public LayerNorm NormMha { get; }
    public LayerNorm NormFf { get; }

    /// <summary>[1, T, D] → [1, T, D].</summary>
    public Tensor Forward(Tensor x, Tensor posTable, Trace? trace = null)
    {
        x = Ops.Add(x, SelfAttn.Forward(NormMha.Forward(x), posTable, trace));
        var f = FeedForwardW2.Forward(Ops.Silu(FeedForwardW1.Forward(NormFf.Forward(x))));
        trace?.Record(Path + ".feed_forward", f);
        x = Ops.Add(x, f);
        trace?.Record(Path, x);
        return x;
    }
}

/// <summary>
/// <c>PreLookaheadLayer</c> (docs/model.md §7.7 step 2): right-pad L zeros, conv1 [D, D, L+1] → LeakyReLU(0.01), left-pad 2,
/// conv2 [D, D, 3], plus the input. Output frame t sees inputs t−2 … t+L.
/// </summary>
public sealed class PreLookaheadLayer
{
    public PreLookaheadLayer(Weights w, string key, int channels, int lookahead)
    {
        Path = FlowWeights.TracePath(key);
        Conv1 = FlowWeights.Conv(w, key + ".conv1", channels, channels, lookahead + 1, 0, lookahead);
        Conv2 = FlowWeights.Conv(w, key + ".conv2", channels, channels, 3, 2, 0);
    }

    public string Path { get; }
    public TimeMajorConv1d Conv1 { get; }
    public TimeMajorConv1d Conv2 { get; }

    /// <summary>[1, T, D] → [1, T, D] (time-major in and out, as the module returns it).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Conv2.Forward(Ops.LeakyRelu(Conv1.Forward(x), 0.01f));
        y = Ops.Add(y, x);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// <c>Upsample1D</c> (docs/model.md §7.7 step 4): nearest-neighbour ×s in time, left-pad 2s zeros, <c>conv</c> [D, D, 2s+1].
/// Traced channels-first [1, D, sT] as the module returns it.
/// </summary>
public sealed class Upsample1D
{
    public Upsample1D(Weights w, string key, int channels, int stride)
    {
        Path = FlowWeights.TracePath(key);
        Stride = stride;
        Conv = FlowWeights.Conv(w, key + ".conv", channels, channels, 2 * stride + 1, 2 * stride, 0);
    }

    public string Path { get; }
    public int Stride { get; }
    public TimeMajorConv1d Conv { get; }

    /// <summary>[1, T, D] → [1, sT, D] (time-major; the trace holds the channels-first view).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Conv.Forward(Ops.Repeat(x, 1, Stride)); // nearest-neighbour ×s
        trace?.Record(Path, y.Permute(0, 2, 1));
        return y;
    }
}

/// <summary>
/// <c>UpsampleConformerEncoderV2</c> (module <c>flow.encoder</c>, docs/model.md §7.7, non-streaming): embed (Linear, LayerNorm
/// 1e−5, ×√D), pre_lookahead_layer, <c>encoders.0..</c>, up_layer, up_embed, <c>up_encoders.0..</c>, after_norm (1e−5).
/// Attention is bidirectional over the whole sequence (batch 1, no padding).
/// </summary>
public sealed class FlowEncoder
{
    private readonly float _xscale;

    public FlowEncoder(Weights w, FlowEncoderConfig c, string key = "encoder")
    {
        Config = c;
        Path = FlowWeights.TracePath(key);
        int d = c.OutputSize;
        _xscale = (float)Math.Sqrt(d);
        EmbedLinear = FlowWeights.Linear(w, key + ".embed.out.0", d, c.InputSize);
        EmbedNorm = FlowWeights.LayerNorm(w, key + ".embed.out.1", d, 1e-5f);
        PreLookahead = new PreLookaheadLayer(w, key + ".pre_lookahead_layer", d, c.PreLookaheadLen);
        Encoders = Enumerable.Range(0, c.NumBlocks).Select(i => new ConformerEncoderLayer(w, $"{key}.encoders.{i}", c)).ToArray();
        UpLayer = new Upsample1D(w, key + ".up_layer", d, c.UpStride);
        UpEmbedLinear = FlowWeights.Linear(w, key + ".up_embed.out.0", d, d);
        UpEmbedNorm = FlowWeights.LayerNorm(w, key + ".up_embed.out.1", d, 1e-5f);
        UpEncoders = Enumerable.Range(0, c.NumUpBlocks).Select(i => new ConformerEncoderLayer(w, $"{key}.up_encoders.{i}", c)).ToArray();
        AfterNorm = FlowWeights.LayerNorm(w, key + ".after_norm", d, 1e-5f);
    }

    public FlowEncoderConfig Config { get; }
    public string Path { get; }
    /// <summary><c>embed.out.0</c> [D, D_in] + bias.</summary>
    public Linear EmbedLinear { get; }
    /// <summary><c>embed.out.1</c> [D] weight and bias.</summary>
    public LayerNorm EmbedNorm { get; }
    public PreLookaheadLayer PreLookahead { get; }
    public ConformerEncoderLayer[] Encoders { get; }
    public Upsample1D UpLayer { get; }
    public Linear UpEmbedLinear { get; }
    public LayerNorm UpEmbedNorm { get; }
    public ConformerEncoderLayer[] UpEncoders { get; }
    public LayerNorm AfterNorm { get; }

    /// <summary>Whether the layers' attention runs the head-parallel fused kernel (default) or the op-by-op composition.</summary>
    public bool UseFusedKernels
    {
        get => Encoders.Concat(UpEncoders).All(l => l.SelfAttn.UseFusedKernels);
        set { foreach (var l in Encoders.Concat(UpEncoders)) l.SelfAttn.UseFusedKernels = value; }
    }

    /// <summary>Token embeddings [1, T, D_in] → [1, s·T, D].</summary>
    public Tensor Forward(Tensor tokens, Trace? trace = null)
    {
        if (tokens.Rank != 3 || tokens.Shape[0] != 1 || tokens.Shape[2] != Config.InputSize)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(tokens.Shape)} must be [1, T, {Config.InputSize}]");
        var x = Embed(tokens, EmbedLinear, EmbedNorm, Path + ".embed", trace);
        x = PreLookahead.Forward(x, trace);
        var pos = EspnetRelPositionalEncoding.Table(x.Shape[1], Config.OutputSize);
        foreach (var layer in Encoders) x = layer.Forward(x, pos, trace);
        x = UpLayer.Forward(x, trace);
        x = Embed(x, UpEmbedLinear, UpEmbedNorm, Path + ".up_embed", trace);
        pos = EspnetRelPositionalEncoding.Table(x.Shape[1], Config.OutputSize);
        foreach (var layer in UpEncoders) x = layer.Forward(x, pos, trace);
        x = AfterNorm.Forward(x, trace);
        trace?.Record(Path, x);
        return x;
    }

    /// <summary><c>LinearNoSubsampling</c>: Linear → LayerNorm → ×√D (the positional module's xscale).</summary>
    private Tensor Embed(Tensor x, Linear linear, LayerNorm norm, string path, Trace? trace)
    {
        var y = Ops.Multiply(norm.Forward(linear.Forward(x, trace), trace), _xscale);
        trace?.Record(path, y);
        return y;
    }
}
