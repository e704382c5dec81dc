using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models;

/// <summary>
/// Step-Audio 2 mini (official <c>StepAudio2ForCausalLM</c>): <c>encoder</c> → <c>adapter</c> → audio features written
/// over the <c>&lt;audio_patch&gt;</c> slots after each <c>&lt;audio_start&gt;</c> → <c>model</c> (Qwen2) → <c>lm_head</c>.
/// Every weight of the checkpoint is taken by exact key with its shape asserted; none may be left over.
/// <para>
/// The model runs on the backend it was made with (<see cref="Backend"/>): each public entry point enters it, so two
/// models on two backends live side by side. Features and hidden states stay on the backend; logits come back to the
/// host (the one download per decoding step) because sampling runs there.
/// </para>
/// </summary>
public sealed class StepAudio2Model
{
    public const int AudioStartId = 151688;

    public StepAudio2Model(ITensorSource checkpoint, StepAudio2Config config, IBackend? backend = null)
    {
        Config = config;
        Backend = backend ?? Ops.Backend; // made inside a backend scope (a CLI --backend, a notebook), it belongs to that backend
        var w = new Weights(checkpoint) { Quantization = config.Quantization };
        Encoder = new AudioEncoder.AudioEncoder(w, config.Audio);
        Adapter = new Adaptor(w, config.Audio);
        Model = new Qwen2Model(w, config.Text);
        LmHead = Linear.Load(w, "lm_head", config.Text.VocabSize, config.Text.HiddenSize, bias: false);
        w.AssertAllUsed("");
    }

    public StepAudio2Config Config { get; }
    /// <summary>Where this model's ops run: the backend given, else the one current when the model was made.</summary>
    public IBackend Backend { get; }
    public AudioEncoder.AudioEncoder Encoder { get; }
    public Adaptor Adapter { get; }
    public Qwen2Model Model { get; }
    /// <summary><c>lm_head.weight</c> [vocab, D], untied from the embeddings.</summary>
    public Linear LmHead { get; }

    /// <summary>Encoder + adaptor over a batch of chunk mels; returns features [B, T₄, D] and the valid rows per chunk.</summary>
    public (Tensor Features, int[] Lengths) EncodeAudio(Tensor mels, ReadOnlySpan<int> melLengths, Trace? trace = null)
    {
        using var scope = Ops.Use(Backend);
        var (encoded, encLengths) = Encoder.Forward(mels, melLengths, trace);
        var features = Adapter.Forward(encoded, trace);
        return (features, encLengths.Select(Adaptor.OutputLength).ToArray());
    }

    /// <summary>
    /// Prompt embeddings [L, D]: token embeddings with the k-th chunk's first feat_len rows written over the rows after
    /// the k-th <c>&lt;audio_start&gt;</c> (docs/model.md §5.3), on the model's backend (slice updates, no host copy).
    /// </summary>
    public Tensor EmbedPrompt(ReadOnlySpan<int> ids, Tensor? audioFeatures, ReadOnlySpan<int> featureLengths, Trace? trace = null)
    {
        using var scope = Ops.Use(Backend);
        var h = Model.Embed(ids, trace);
        if (audioFeatures is null) return h;
        if (audioFeatures.Rank != 3 || audioFeatures.Shape[2] != h.Shape[1])
            throw new ArgumentException($"audio features {Tensor.ShapeString(audioFeatures.Shape)} must be [chunks, T, {h.Shape[1]}]");
        int chunk = 0;
        for (int s = 0; s < ids.Length; s++)
        {
            if (ids[s] != AudioStartId) continue;
            if (chunk >= featureLengths.Length)
                throw new ArgumentException($"prompt has more <audio_start> tokens than the {featureLengths.Length} audio chunks given");
            int n = featureLengths[chunk];
            if (s + n >= ids.Length) throw new ArgumentException($"audio chunk {chunk} needs {n} rows after position {s}, the prompt has {ids.Length}");
            if (n > audioFeatures.Shape[1] || chunk >= audioFeatures.Shape[0])
                throw new ArgumentException($"audio chunk {chunk}: {n} rows asked of features {Tensor.ShapeString(audioFeatures.Shape)}");
            if (n > 0) Ops.SliceUpdate(h, audioFeatures.Select(0, chunk).Slice(0, 0, n), axis: 0, start: s + 1);
            chunk++;
        }
        if (chunk != featureLengths.Length)
            throw new ArgumentException($"prompt has {chunk} <audio_start> tokens for {featureLengths.Length} audio chunks");
        return h;
    }

    /// <summary>
    /// Runs hidden states through the decoder and returns the float32 logits of the last position [vocab], on the host
    /// (the transfer point: sampling reads them there).
    /// </summary>
    public Tensor LastLogits(Tensor hidden, int start, KvCache? cache, Trace? trace = null)
    {
        using var scope = Ops.Use(Backend);
        var h = Model.Forward(hidden, start, cache, trace);
        if (trace is not null && trace.WantsExplicitly("lm_head")) // [1, L, vocab] as the official module returns it: large
            trace.Record("lm_head", LmHead.Apply(h).Reshape(1, h.Shape[0], Config.Text.VocabSize));
        var last = h.Slice(0, h.Shape[0] - 1, 1).Contiguous();
        var logits = Ops.ToHost(LmHead.Apply(last)).Reshape(Config.Text.VocabSize);
        trace?.Record("lm_head.last", logits);
        return logits;
    }

    /// <summary>
    /// One decoding step for several requests at once: request r feeds <paramref name="ids"/>[r] at position
    /// <paramref name="positions"/>[r] with its own KV cache. The linear layers and lm_head see all requests as one
    /// [m, D] batch, so every weight streams once per step; attention runs per request over its own cache.
    /// </summary>
    /// <returns>float32 logits [m, vocab], on the host.</returns>
    public Tensor StepLogitsBatch(ReadOnlySpan<int> ids, ReadOnlySpan<int> positions, IReadOnlyList<KvCache> caches)
    {
        if (ids.Length != positions.Length || ids.Length != caches.Count)
            throw new ArgumentException($"{ids.Length} ids, {positions.Length} positions and {caches.Count} caches: one each per request");
        using var scope = Ops.Use(Backend);
        var h = Model.StepBatch(Model.Embed(ids), positions, caches);
        return Ops.ToHost(LmHead.Apply(h));
    }
}
