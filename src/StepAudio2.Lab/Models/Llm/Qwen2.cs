using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Llm;

/// <summary>Qwen2RMSNorm: w ⊙ x / √(mean(x²) + eps), in float32 (HF convention), <c>{Path}.weight</c> [D].</summary>
public sealed class RmsNorm(string path, Tensor weight, float eps)
{
    public string Path { get; } = path;
    public static RmsNorm Load(Weights w, string path, int dim, float eps) => new(path, w.Get(path + ".weight", dim), eps);

    /// <summary>x ← x + r, and the norm of the new x (untraced; <see cref="Ops.AddRmsNorm"/>: one kernel on a GPU).</summary>
    public Tensor AddForward(ref Tensor x, Tensor r)
    {
        var (sum, normed) = Ops.AddRmsNorm(x, r, weight, eps);
        x = sum;
        return normed;
    }

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.RmsNorm(x, weight, eps);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// Keys and values of one layer for the positions seen so far, in tensors of the model's backend: [1, Hkv, capacity,
/// head_dim] each, grown by doubling, so an append writes only the new positions (a slice update; amortised O(1) per
/// token) and attention reads views of the buffers in place.
/// </summary>
public sealed class LayerKvCache(int kvHeads, int headDim)
{
    // [1, Hkv, capacity, head_dim] each, on the backend current at the first append; rows 0..Length−1 of every head are valid
    private Tensor? _k, _v;
    private int _capacity;

    public int Length { get; private set; }

    /// <summary>
    /// Appends new keys/values [Hkv, n, hd] and returns views of all of them [1, Hkv, Length, hd] (not contiguous: each
    /// head's rows sit at its capacity-sized slot; valid until the next append).
    /// </summary>
    public (Tensor K, Tensor V) Append(Tensor k, Tensor v)
    {
        int n = k.Shape[1];
        if (k.Rank != 3 || k.Shape[0] != kvHeads || k.Shape[2] != headDim || !k.Shape.SequenceEqual(v.Shape))
            throw new ArgumentException($"KV append: k {Tensor.ShapeString(k.Shape)} and v {Tensor.ShapeString(v.Shape)} must both be [{kvHeads}, n, {headDim}]");
        var (kb, vb) = Reserve(n);
        Ops.SliceUpdate(kb, k.Reshape(1, kvHeads, n, headDim), axis: 2, start: Length);
        Ops.SliceUpdate(vb, v.Reshape(1, kvHeads, n, headDim), axis: 2, start: Length);
        return Commit(n);
    }

    /// <summary>The buffers [1, Hkv, capacity, hd] with room for <paramref name="n"/> more positions (grown by doubling),
    /// for a caller that writes rows Length..Length+n−1 itself (<see cref="Ops.RopeAppend"/>), then calls <see cref="Commit"/>.</summary>
    public (Tensor K, Tensor V) Reserve(int n)
    {
        if (n < 0 || n > int.MaxValue / 2 - Length) throw new ArgumentOutOfRangeException(nameof(n), n, $"KV reserve of {n} positions after {Length}");
        if (_k is null || Length + n > _capacity)
        {
            int cap = Math.Max(Length + n, Math.Max(64, _capacity * 2));
            _k = Grow(_k, cap); _v = Grow(_v, cap);
            _capacity = cap;
        }
        return (_k!, _v!);
    }

    /// <summary>Counts <paramref name="n"/> written positions and returns views of all of them [1, Hkv, Length, hd].</summary>
    public (Tensor K, Tensor V) Commit(int n)
    {
        if (n < 0) throw new ArgumentOutOfRangeException(nameof(n), n, "KV commit of a negative number of positions");
        if (Length + n > _capacity) throw new InvalidOperationException($"KV commit of {n} positions past the capacity {_capacity} (reserve first)");
        Length += n;
        return (_k!.Slice(2, 0, Length), _v!.Slice(2, 0, Length));
    }

    /// <summary>Forgets positions from <paramref name="length"/> on (to reuse a shared prefix).</summary>
    public void Truncate(int length) => Length = Math.Min(Length, length);

    private Tensor Grow(Tensor? old, int cap)
    {
        var fresh = Ops.Zeros(DType.F32, 1, kvHeads, cap, headDim);
        if (old is not null && Length > 0) Ops.SliceUpdate(fresh, old.Slice(2, 0, Length), axis: 2, start: 0);
        return fresh;
    }
}

/// <summary>The KV cache of the whole decoder.</summary>
public sealed class KvCache(TextConfig c)
{
    public LayerKvCache[] Layers { get; } = Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new LayerKvCache(c.NumKeyValueHeads, c.HeadDim)).ToArray();
    public int Length => Layers[0].Length;
    public void Truncate(int length) { foreach (var l in Layers) l.Truncate(length); }
}

/// <summary>
/// Qwen2Attention (docs/model.md §5.2): q_proj [H·hd, D] + bias, k_proj/v_proj [Hkv·hd, D] + bias, o_proj [D, H·hd] no bias;
/// rotate-half RoPE (θ from config) on q and k; causal softmax(q·kᵀ/√hd); query head h reads KV head h / (H/Hkv).
/// </summary>
public sealed class Qwen2Attention
{
    private readonly TextConfig _c;

    public Qwen2Attention(Weights w, string path, TextConfig c)
    {
        _c = c;
        Path = path;
        int d = c.HiddenSize, hd = c.HeadDim;
        QProj = Linear.Load(w, path + ".q_proj", c.NumAttentionHeads * hd, d);
        KProj = Linear.Load(w, path + ".k_proj", c.NumKeyValueHeads * hd, d);
        VProj = Linear.Load(w, path + ".v_proj", c.NumKeyValueHeads * hd, d);
        OProj = Linear.Load(w, path + ".o_proj", d, c.NumAttentionHeads * hd, bias: false);
    }

    public string Path { get; }
    public Linear QProj { get; }
    public Linear KProj { get; }
    public Linear VProj { get; }
    public Linear OProj { get; }
    /// <summary>q_proj, k_proj, v_proj in that order (for <see cref="Ops.LinearGroup"/>).</summary>
    public IReadOnlyList<LinearWeights> QkvWeights => _qkv ??= [QProj.Weights, KProj.Weights, VProj.Weights];
    private LinearWeights[]? _qkv;

    /// <param name="x">[1, n, D] hidden states of positions start..start+n−1 (batch-first, as the official module sees them).</param>
    /// <returns>[1, n, D], recorded as <c>{Path}</c> (the first element of the official module's tuple).</returns>
    public Tensor Forward(Tensor x, int start, LayerKvCache? cache, Trace? trace)
    {
        var q = QProj.Forward(x, trace);
        var k = KProj.Forward(x, trace);
        var v = VProj.Forward(x, trace);
        var o = Attend(q, k, v, start, cache);
        var y = OProj.Forward(o, trace);
        trace?.Record(Path, y);
        return y;
    }

    /// <summary>
    /// The attention between the projections: RoPE on q and k, the new keys/values appended to <paramref name="cache"/>
    /// (or used alone from position 0), causal SDPA over everything cached.
    /// </summary>
    /// <param name="q">[1, n, H·hd] projected queries of positions start..start+n−1; <paramref name="k"/>, <paramref name="v"/> [1, n, Hkv·hd].</param>
    /// <returns>[1, n, H·hd], the input of o_proj.</returns>
    internal Tensor Attend(Tensor q, Tensor k, Tensor v, int start, LayerKvCache? cache)
    {
        int n = q.Shape[1], h = _c.NumAttentionHeads, hkv = _c.NumKeyValueHeads, hd = _c.HeadDim;
        float theta = (float)_c.RopeTheta;
        Tensor kAll, vAll;
        if (cache is not null)
        {
            if (cache.Length != start) throw new InvalidOperationException($"KV cache holds {cache.Length} positions, decoding from {start}");
            // RoPE on q and k and the cache append in one capability (one kernel on a GPU), then views of the whole cache
            var (kBuf, vBuf) = cache.Reserve(n);
            q = Ops.RopeAppend(q, k, v, h, start, theta, kBuf, vBuf);
            (kAll, vAll) = cache.Commit(n);
        }
        else
        {
            if (start != 0) throw new InvalidOperationException("decoding from a non-zero position needs a KV cache");
            q = Ops.Rope(q.Reshape(n, h, hd).Permute(1, 0, 2), start, theta);
            k = Ops.Rope(k.Reshape(n, hkv, hd).Permute(1, 0, 2), start, theta);
            v = v.Reshape(n, hkv, hd).Permute(1, 0, 2).Contiguous();
            (kAll, vAll) = (k.Reshape(1, hkv, n, hd), v.Reshape(1, hkv, n, hd));
        }
        var o = Ops.ScaledDotProductAttention(q.Reshape(1, h, n, hd), kAll, vAll, 1f / MathF.Sqrt(hd), causal: true);
        return o.Reshape(h, n, hd).Permute(1, 0, 2).Reshape(1, n, h * hd);
    }
}

/// <summary>Batched decoding steps (one new position per request, each with its own cache), used by <see cref="Qwen2Model.StepBatch"/>.</summary>
public static class Qwen2BatchStep
{
    /// <param name="x">[1, m, D]: request r's new position is positions[r].</param>
    public static Tensor Attention(Qwen2Attention a, Tensor x, ReadOnlySpan<int> positions, IReadOnlyList<LayerKvCache> caches)
    {
        int m = x.Shape[1];
        var qkv = Ops.LinearGroup(x, a.QkvWeights); // one launch for the three projections on a GPU
        Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        var outs = new Tensor[m];
        for (int r = 0; r < m; r++)
        {
            if (caches[r].Length != positions[r]) throw new InvalidOperationException($"request {r}: KV cache holds {caches[r].Length} positions, decoding at {positions[r]}");
            outs[r] = a.Attend(q.Slice(1, r, 1), k.Slice(1, r, 1), v.Slice(1, r, 1), positions[r], caches[r]);
        }
        return a.OProj.Forward(m == 1 ? outs[0] : Ops.Concatenate(outs, axis: 1));
    }
}

/// <summary>What the official <c>model.rotary_emb</c> (Qwen2RotaryEmbedding) returns, for traces; the rotation itself is
/// <see cref="Ops.Rope"/>.</summary>
public static class Rope
{
    /// <summary>
    /// The first element of the official module's (cos, sin): cos of cat(freqs, freqs), [1, n, hd], with inv_freq and the
    /// angles in float32 as HF computes them (the hook sees the tuple; a dump keeps cos). Host-side: it is a trace value.
    /// </summary>
    public static Tensor CosTable(int start, int n, int hd, float theta)
    {
        var (cos, _) = RotaryTables.Compute(start, n, hd, theta);
        int half = hd / 2;
        var table = new float[n * hd];
        for (int p = 0; p < n; p++)
        {
            cos.AsSpan(p * half, half).CopyTo(table.AsSpan(p * hd));
            cos.AsSpan(p * half, half).CopyTo(table.AsSpan(p * hd + half));
        }
        return Tensor.FromArray(table, 1, n, hd);
    }
}

/// <summary>Qwen2MLP: down_proj(act_fn(gate_proj(x)) ⊙ up_proj(x)), SiLU, no biases; gate/up [I, D], down [D, I].</summary>
public sealed class Qwen2Mlp(Weights w, string path, TextConfig c)
{
    public string Path { get; } = path;
    public Linear GateProj { get; } = Linear.Load(w, path + ".gate_proj", c.IntermediateSize, c.HiddenSize, bias: false);
    public Linear UpProj { get; } = Linear.Load(w, path + ".up_proj", c.IntermediateSize, c.HiddenSize, bias: false);
    public Linear DownProj { get; } = Linear.Load(w, path + ".down_proj", c.HiddenSize, c.IntermediateSize, bias: false);

    public Tensor Forward(Tensor x, Trace? trace)
    {
        var gate = Ops.Silu(GateProj.Forward(x, trace));
        trace?.Record(Path + ".act_fn", gate);
        var up = UpProj.Forward(x, trace);
        var y = DownProj.Forward(Ops.Multiply(gate, up), trace);
        trace?.Record(Path, y);
        return y;
    }

    /// <summary>The same output untraced, with gate, SiLU, up and their product as one <see cref="Ops.SwiGlu"/> (decoding).</summary>
    public Tensor Step(Tensor x) => DownProj.Apply(Ops.SwiGlu(x, GateProj.Weights, UpProj.Weights));
}

/// <summary>Qwen2DecoderLayer: x + self_attn(input_layernorm(x)); x + mlp(post_attention_layernorm(x)).</summary>
public sealed class Qwen2DecoderLayer(Weights w, string path, TextConfig c)
{
    public string Path { get; } = path;
    public RmsNorm InputLayernorm { get; } = RmsNorm.Load(w, path + ".input_layernorm", c.HiddenSize, (float)c.RmsNormEps);
    public Qwen2Attention SelfAttn { get; } = new(w, path + ".self_attn", c);
    public RmsNorm PostAttentionLayernorm { get; } = RmsNorm.Load(w, path + ".post_attention_layernorm", c.HiddenSize, (float)c.RmsNormEps);
    public Qwen2Mlp Mlp { get; } = new(w, path + ".mlp", c);

    /// <summary>
    /// One decoding step for m requests, each at its own position with its own cache. Takes the residual stream x [1, m, D]
    /// and the previous layer's MLP output not yet added to it (null before the first layer), and returns the same pair
    /// for the next layer: each residual add is done together with the norm after it (<see cref="Ops.AddRmsNorm"/>), so a
    /// layer is x + attn(norm1(x)), then + mlp(norm2(·)), exactly as <see cref="Forward"/>, in fewer ops.
    /// </summary>
    public (Tensor X, Tensor MlpOut) StepBatch(Tensor x, Tensor? pending, ReadOnlySpan<int> positions, IReadOnlyList<LayerKvCache> caches)
    {
        var normed = pending is null ? InputLayernorm.Forward(x) : InputLayernorm.AddForward(ref x, pending);
        var attn = Qwen2BatchStep.Attention(SelfAttn, normed, positions, caches);
        var normed2 = PostAttentionLayernorm.AddForward(ref x, attn);
        return (x, Mlp.Step(normed2));
    }

    public Tensor Forward(Tensor x, int start, LayerKvCache? cache, Trace? trace)
    {
        x = Ops.Add(x, SelfAttn.Forward(InputLayernorm.Forward(x, trace), start, cache, trace));
        x = Ops.Add(x, Mlp.Forward(PostAttentionLayernorm.Forward(x, trace), trace));
        trace?.Record(Path, x);
        return x;
    }
}

/// <summary>
/// Qwen2Model (module path <c>model</c>): embed_tokens [vocab, D], num_hidden_layers decoder layers, norm [D].
/// Positions are 0..L−1 with no offset (docs/model.md §5.2).
/// </summary>
public sealed class Qwen2Model
{
    public Qwen2Model(Weights w, TextConfig c, string path = "model")
    {
        Config = c;
        Path = path;
        EmbedTokensQuantized = w.GetQuantized(path + ".embed_tokens", c.VocabSize, c.HiddenSize);
        EmbedTokens = EmbedTokensQuantized?.Weight ?? w.Get(path + ".embed_tokens.weight", c.VocabSize, c.HiddenSize);
        Layers = Enumerable.Range(0, c.NumHiddenLayers).Select(i => new Qwen2DecoderLayer(w, $"{path}.layers.{i}", c)).ToArray();
        Norm = RmsNorm.Load(w, path + ".norm", c.HiddenSize, (float)c.RmsNormEps);
    }

    public TextConfig Config { get; }
    public string Path { get; }
    /// <summary>[vocab_size, hidden] (bf16 in the published checkpoint, read in place).</summary>
    public Tensor EmbedTokens { get; }
    /// <summary>The table in MLX's quantized layout (mlx.nn.QuantizedEmbedding) when the checkpoint quantizes it; then
    /// <see cref="EmbedTokens"/> holds its packed codes.</summary>
    public QuantizedWeight? EmbedTokensQuantized { get; }
    public Qwen2DecoderLayer[] Layers { get; }
    public RmsNorm Norm { get; }

    /// <summary>
    /// Token embeddings [n, D] (<c>model.embed_tokens</c>, before audio features are written in; recorded batch-first
    /// [1, n, D] as the official module returns it).
    /// </summary>
    public Tensor Embed(ReadOnlySpan<int> ids, Trace? trace = null)
    {
        var e = EmbedTokensQuantized is { } q ? Ops.Take(q, ids) : Ops.Take(EmbedTokens, ids);
        trace?.Record(Path + ".embed_tokens", e.Reshape(1, ids.Length, Config.HiddenSize));
        return e;
    }

    /// <summary>
    /// Runs the decoder over hidden states [n, D] at positions start.. and returns the normed output [n, D]. Inside, the
    /// activations are batch-first [1, n, D] like the official Qwen2Model's, so every traced path has the official shape;
    /// <c>model.rotary_emb</c> (cos, [1, n, head_dim]) is recorded first, where the official model computes it.
    /// </summary>
    public Tensor Forward(Tensor hidden, int start = 0, KvCache? cache = null, Trace? trace = null)
    {
        int n = hidden.Shape[0];
        // one untraced token with a cache is a decoding step: the same arithmetic in the step's fused ops
        if (n == 1 && trace is null && cache is not null) return StepBatch(hidden, [start], [cache]);
        if (trace is not null && trace.Wants(Path + ".rotary_emb"))
            trace.Record(Path + ".rotary_emb", Rope.CosTable(start, n, Config.HeadDim, (float)Config.RopeTheta));
        var x = hidden.Reshape(1, n, Config.HiddenSize);
        for (int i = 0; i < Layers.Length; i++) x = Layers[i].Forward(x, start, cache?.Layers[i], trace);
        return Norm.Forward(x, trace).Reshape(n, Config.HiddenSize);
    }

    /// <summary>
    /// One decoding step for m requests: hidden [m, D] (request r's new token at positions[r], its cache caches[r]) →
    /// normed output [m, D]. Untraced: a dump records the prefill, as the official forward.
    /// </summary>
    public Tensor StepBatch(Tensor hidden, ReadOnlySpan<int> positions, IReadOnlyList<KvCache> caches)
    {
        int m = hidden.Shape[0];
        var x = hidden.Reshape(1, m, Config.HiddenSize);
        var layerCaches = new LayerKvCache[m];
        Tensor? pending = null;
        for (int i = 0; i < Layers.Length; i++)
        {
            for (int r = 0; r < m; r++) layerCaches[r] = caches[r].Layers[i];
            (x, pending) = Layers[i].StepBatch(x, pending, positions, layerCaches);
        }
        var normed = pending is null ? Norm.Forward(x) : Norm.AddForward(ref x, pending);
        return normed.Reshape(m, Config.HiddenSize);
    }
}
