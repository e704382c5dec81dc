using System.Diagnostics;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;

namespace StepAudio2.Lab.Generation;

/// <summary>One request of a batch: its prompt, its audio features and how to sample it.</summary>
public sealed record BatchRequest(IReadOnlyList<int> PromptIds, PromptAudio? Audio, SamplingOptions Options);

/// <summary>
/// Generates several requests together: each is prefilled on its own (own KV cache), then every step runs one batched
/// forward of the requests still going (<see cref="StepAudio2Model.StepLogitsBatch"/>): the decoder's weights stream
/// from memory once per step for all of them, which is what decode time is made of. Each request stops on its own
/// (stop token, stop string, budget) and gets the same result as <see cref="Generator"/> would give it alone.
/// </summary>
public sealed class BatchGenerator(StepAudio2Model model)
{
    private readonly StepAudio2Model _model = model ?? throw new ArgumentNullException(nameof(model));

    /// <summary>
    /// Runs every request to its end. <see cref="GenerationResult.Decode"/> of a request is the wall time of the batched
    /// steps it took part in (shared with the others), so aggregate tokens per second = Σ tokens / the longest decode.
    /// </summary>
    public IReadOnlyList<GenerationResult> Generate(IReadOnlyList<BatchRequest> requests, ITokenDecoder? decoder = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(requests);
        if (requests.Count == 0) throw new ArgumentException("no requests");
        var text = _model.Config.Text;
        int n = requests.Count;
        var states = new GenerationState[n];
        var caches = new KvCache[n];
        var positions = new int[n];
        var next = new int[n];
        for (int r = 0; r < n; r++)
        {
            var q = requests[r];
            ArgumentNullException.ThrowIfNull(q.PromptIds);
            if (q.PromptIds.Count == 0) throw new ArgumentException($"request {r}: the prompt is empty");
            q.Options.Validate();
            if (q.Options.StopStrings.Count > 0 && decoder is null)
                throw new ArgumentException("StopStrings need a token decoder to match decoded text", nameof(decoder));
            var options = Generator.FitContext(q.PromptIds.Count, q.Options, text.MaxPositionEmbeddings);
            var ids = q.PromptIds.ToArray();
            states[r] = new GenerationState(ids, options, decoder, text.VocabSize);
            cancellationToken.ThrowIfCancellationRequested();
            caches[r] = new KvCache(text);
            var clock = Stopwatch.StartNew();
            var hidden = _model.EmbedPrompt(ids, q.Audio?.Features, q.Audio?.Lengths ?? []);
            var logits = _model.LastLogits(hidden, 0, caches[r]).ToFloatArray();
            next[r] = states[r].Accept(logits, clock).Id;
            positions[r] = ids.Length;
        }

        var active = new List<int>(n);
        while (true)
        {
            active.Clear();
            for (int r = 0; r < n; r++) if (!states[r].Done) active.Add(r);
            if (active.Count == 0) break;
            cancellationToken.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            var logits = _model.StepLogitsBatch(active.Select(r => next[r]).ToArray(), active.Select(r => positions[r]).ToArray(),
                active.Select(r => caches[r]).ToArray()).ToFloatArray();
            for (int j = 0; j < active.Count; j++)
            {
                int r = active[j];
                var row = logits.AsSpan(j * text.VocabSize, text.VocabSize).ToArray();
                next[r] = states[r].Accept(row, clock).Id;
                positions[r]++;
            }
        }
        return states.Select(s => s.Result()).ToArray();
    }
}
