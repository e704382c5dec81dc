using System.Diagnostics;
using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Generation;

/// <summary>
/// One request's side of autoregressive generation (docs/model.md §6.4): given the logits of each step it chooses the next id
/// (<see cref="LogitsProcessor"/>: penalty, temperature, top-k, top-p, draw), classifies it, tracks stop tokens, stop
/// strings and the token budget, and finally assembles the <see cref="GenerationResult"/>. The model side (prefill,
/// KV-cached steps) belongs to the caller: <see cref="Generator"/> drives one state, <see cref="BatchGenerator"/> several
/// in one batched forward per step.
/// </summary>
public sealed class GenerationState
{
    private readonly SamplingOptions _options;
    private readonly LogitsProcessor _processor;
    private readonly Random? _rng;
    private readonly HashSet<int> _stopIds;
    private readonly IncrementalText? _text;
    private readonly List<int> _sequence;
    private readonly List<int> _generated = [];
    private readonly List<StepAlternatives>? _alternatives;
    private readonly float[] _scratch;
    private TimeSpan _prefill, _decode;
    private StopReason? _reason;
    private string? _matched;

    public GenerationState(int[] prompt, SamplingOptions options, ITokenDecoder? decoder, int vocabSize)
    {
        Prompt = prompt;
        _options = options;
        _processor = new LogitsProcessor(options);
        _rng = options.DoSample ? (options.Seed is int seed ? new Random(seed) : new Random()) : null;
        _stopIds = options.StopTokenIds.ToHashSet();
        _text = decoder is null ? null : new IncrementalText(decoder, options.StopStrings);
        _sequence = new List<int>(prompt.Length + Math.Min(options.MaxNewTokens, 4096));
        _sequence.AddRange(prompt);
        _alternatives = options.RecordAlternatives ? [] : null;
        _scratch = new float[vocabSize];
    }

    public int[] Prompt { get; }

    /// <summary>True once a stop token, a stop string or the budget ended this request.</summary>
    public bool Done => _reason is not null;

    /// <summary>Ids generated so far.</summary>
    public int Count => _generated.Count;

    /// <summary>
    /// Takes the logits that follow the sequence so far, chooses and records the next id; <paramref name="clock"/> has
    /// timed the forward pass that made them (the first call's is the prefill).
    /// </summary>
    public TokenGenerated Accept(float[] logits, Stopwatch clock)
    {
        if (Done) throw new InvalidOperationException("this generation has ended");
        if (logits.Length != _scratch.Length)
            throw new InvalidOperationException($"the logits source returned {logits.Length} logits, its vocabulary has {_scratch.Length}");
        int step = _generated.Count;
        int id = _processor.Next(logits, CollectionsMarshal.AsSpan(_sequence), _rng, _scratch);
        var alt = _alternatives is null ? null : Alternatives(_scratch, id, _options);
        if (step == 0) _prefill = clock.Elapsed; else _decode += clock.Elapsed;

        _generated.Add(id);
        _sequence.Add(id);
        _alternatives?.Add(alt!);
        TokenKind kind = _stopIds.Contains(id) ? TokenKind.Stop
            : StepAudio2Tokens.IsText(id) ? TokenKind.Text
            : StepAudio2Tokens.IsAudioCode(id) ? TokenKind.AudioCode : TokenKind.Marker;
        if (kind == TokenKind.Stop) _reason = StopReason.StopToken;
        else if (kind == TokenKind.Text && _text is not null && (_matched = _text.Append(id)) is not null) _reason = StopReason.StopString;
        else if (_generated.Count >= _options.MaxNewTokens) _reason = StopReason.MaxNewTokens;

        string delta = _text?.TakeDelta(final: _reason is not null) ?? "";
        int? code = kind == TokenKind.AudioCode ? id - StepAudio2Tokens.FirstAudioCode : null;
        return new TokenGenerated(step, id, kind, delta, code, alt);
    }

    /// <summary>The result once <see cref="Done"/>.</summary>
    public GenerationResult Result()
    {
        if (!Done) throw new InvalidOperationException("generation has not ended");
        var ids = _generated.ToArray();
        var (textIds, audioCodes) = OutputSplitter.Split(ids, _stopIds); // a final stop id only when one ended it
        return new GenerationResult
        {
            PromptIds = Prompt,
            GeneratedIds = ids,
            StopReason = _reason!.Value,
            MatchedStopString = _matched,
            TextIds = textIds,
            AudioCodes = audioCodes,
            Text = _text?.Text,
            Prefill = _prefill,
            Decode = _decode,
            Alternatives = _alternatives,
        };
    }

    /// <summary>Top ids of this step's distribution; <paramref name="scratch"/> holds probabilities (sampling) or scores (greedy).</summary>
    private static StepAlternatives Alternatives(float[] scratch, int chosen, SamplingOptions options)
    {
        float[] probs = scratch;
        if (!options.DoSample)
        {
            probs = (float[])scratch.Clone();
            LogitsProcessor.Softmax(probs);
        }
        int k = Math.Min(options.AlternativesCount, probs.Length);
        var ids = new int[k];
        var values = new float[k];
        int n = 0;
        for (int i = 0; i < probs.Length; i++)
        {
            float p = probs[i];
            if (n == k && !(p > values[k - 1])) continue; // ties keep the lower id already held
            int j = n < k ? n++ : k - 1;
            while (j > 0 && p > values[j - 1]) { values[j] = values[j - 1]; ids[j] = ids[j - 1]; j--; }
            values[j] = p; ids[j] = i;
        }
        return new StepAlternatives(chosen, probs[chosen], ids, values);
    }
}
