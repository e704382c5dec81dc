using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Generation;

/// <summary>
/// A causal language model as <see cref="Generator"/> drives it: one prefill of the prompt, then one token per step.
/// Stateful (it holds the KV cache of the current sequence); a new <see cref="Prefill"/> starts a new sequence.
/// </summary>
public interface ILogitsSource
{
    /// <summary>Number of logits per position.</summary>
    int VocabSize { get; }

    /// <summary>Runs the whole prompt (with its audio, if any) and returns the float32 logits of its last position.</summary>
    float[] Prefill(IReadOnlyList<int> promptIds, PromptAudio? audio);

    /// <summary>Feeds <paramref name="id"/> at the next position and returns the logits that follow it.</summary>
    float[] Step(int id);

    /// <summary>
    /// Most positions the model can attend over (<c>max_position_embeddings</c>), or null when unbounded (test sources).
    /// The generator refuses a longer prompt and stops generating when the sequence reaches it.
    /// </summary>
    int? ContextLength => null;
}

/// <summary>
/// Adaptor output for the audio chunks of a prompt: features [chunks, T, D] and the valid rows per chunk, written over
/// the <c>&lt;audio_patch&gt;</c> rows after each <c>&lt;audio_start&gt;</c>. Encoding happens before generation, so
/// <see cref="GenerationResult.Prefill"/> times the LLM only.
/// </summary>
public sealed record PromptAudio(Tensor Features, int[] Lengths)
{
    /// <summary>Encoder + adaptor over a batch of chunk mels [chunks, 128, T] with their valid frame counts.</summary>
    public static PromptAudio Encode(StepAudio2Model model, Tensor mels, ReadOnlySpan<int> melLengths)
    {
        ArgumentNullException.ThrowIfNull(model);
        var (features, lengths) = model.EncodeAudio(mels, melLengths);
        return new PromptAudio(features, lengths);
    }
}

/// <summary>The Step-Audio 2 model as an <see cref="ILogitsSource"/>: prefill with audio injection, KV-cached steps.</summary>
public sealed class StepAudio2LogitsSource(StepAudio2Model model) : ILogitsSource
{
    private readonly StepAudio2Model _model = model ?? throw new ArgumentNullException(nameof(model));
    private KvCache? _cache;
    private int _position;

    public int VocabSize => _model.Config.Text.VocabSize;
    public int? ContextLength => _model.Config.Text.MaxPositionEmbeddings;

    /// <summary>When set, the prefill records <c>model.*</c> and <c>lm_head.last</c> activations into this trace.</summary>
    public Tracing.Trace? PrefillTrace { get; set; }

    public float[] Prefill(IReadOnlyList<int> promptIds, PromptAudio? audio)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        if (promptIds.Count == 0) throw new ArgumentException("the prompt is empty");
        var ids = promptIds.ToArray();
        _cache = new KvCache(_model.Config.Text);
        var hidden = _model.EmbedPrompt(ids, audio?.Features, audio?.Lengths ?? [], PrefillTrace);
        var logits = _model.LastLogits(hidden, 0, _cache, PrefillTrace).ToFloatArray();
        _position = ids.Length;
        return logits;
    }

    public float[] Step(int id)
    {
        if (_cache is null) throw new InvalidOperationException("Step before Prefill");
        var logits = _model.LastLogits(_model.EmbedPrompt([id], null, []), _position, _cache).ToFloatArray();
        _position++;
        return logits;
    }
}
