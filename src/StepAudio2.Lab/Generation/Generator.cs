using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Models;

namespace StepAudio2.Lab.Generation;

/// <summary>
/// Autoregressive generation (spec §6.4): one prefill of the prompt (with audio features), then one KV-cached step per
/// token, each token chosen by <see cref="LogitsProcessor"/>, until a stop token, a stop string or
/// <see cref="SamplingOptions.MaxNewTokens"/>. Blocking, streaming (async events) and callback forms share one loop.
/// </summary>
/// <remarks>The source is stateful, so one generator runs one generation at a time; a concurrent call throws.</remarks>
public sealed class Generator
{
    private int _busy;

    public Generator(ILogitsSource source) => Source = source ?? throw new ArgumentNullException(nameof(source));

    /// <summary>Generates with the Step-Audio 2 model (KV-cached decoding).</summary>
    public Generator(StepAudio2Model model) : this(new StepAudio2LogitsSource(model)) { }

    public ILogitsSource Source { get; }

    /// <summary>Runs to the end and returns the result; <paramref name="onToken"/> (if given) sees each token as it comes.</summary>
    /// <exception cref="OperationCanceledException">when <paramref name="cancellationToken"/> fires (checked between steps).</exception>
    public GenerationResult Generate(
        IReadOnlyList<int> promptIds, SamplingOptions? options = null, PromptAudio? audio = null, ITokenDecoder? decoder = null,
        Action<TokenGenerated>? onToken = null, CancellationToken cancellationToken = default)
    {
        foreach (var e in Run(promptIds, options ?? SamplingOptions.Greedy, audio, decoder, cancellationToken))
        {
            if (e is GenerationCompleted done) return done.Result;
            onToken?.Invoke((TokenGenerated)e);
        }
        throw new UnreachableException("generation ended without a result");
    }

    /// <summary>
    /// Streams a <see cref="TokenGenerated"/> per id and finally one <see cref="GenerationCompleted"/>. Each step runs on
    /// the thread pool, so an awaiting caller (notebook, UI) is not blocked; cancellation is honoured between steps.
    /// </summary>
    public async IAsyncEnumerable<GenerationEvent> GenerateStreamingAsync(
        IReadOnlyList<int> promptIds, SamplingOptions? options = null, PromptAudio? audio = null, ITokenDecoder? decoder = null,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var steps = Run(promptIds, options ?? SamplingOptions.Greedy, audio, decoder, cancellationToken).GetEnumerator();
        while (await Task.Run(steps.MoveNext, cancellationToken).ConfigureAwait(false))
            yield return steps.Current;
    }

    private IEnumerable<GenerationEvent> Run(IReadOnlyList<int> promptIds, SamplingOptions options, PromptAudio? audio, ITokenDecoder? decoder, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(promptIds);
        options.Validate();
        if (options.StopStrings.Count > 0 && decoder is null)
            throw new ArgumentException("StopStrings need a token decoder to match decoded text", nameof(decoder));
        if (Source.ContextLength is int context)
        {
            // The model's positions end at max_position_embeddings: a longer prompt is refused with the numbers, and
            // generation stops there (StopReason MaxTokens) instead of running past what RoPE was trained for.
            if (promptIds.Count >= context)
                throw new ContextLengthException(promptIds.Count, context);
            if (options.MaxNewTokens > context - promptIds.Count) options = options with { MaxNewTokens = context - promptIds.Count };
        }
        if (Interlocked.Exchange(ref _busy, 1) != 0)
            throw new InvalidOperationException("this generator is already running a generation");
        try
        {
            foreach (var e in Loop(promptIds.ToArray(), options, audio, decoder, ct)) yield return e;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private IEnumerable<GenerationEvent> Loop(int[] prompt, SamplingOptions options, PromptAudio? audio, ITokenDecoder? decoder, CancellationToken ct)
    {
        var processor = new LogitsProcessor(options);
        var rng = options.DoSample ? (options.Seed is int seed ? new Random(seed) : new Random()) : null;
        var stopIds = options.StopTokenIds.ToHashSet();
        var text = decoder is null ? null : new IncrementalText(decoder, options.StopStrings);
        var sequence = new List<int>(prompt.Length + Math.Min(options.MaxNewTokens, 4096));
        sequence.AddRange(prompt);
        var generated = new List<int>();
        var alternatives = options.RecordAlternatives ? new List<StepAlternatives>() : null;
        var scratch = new float[Source.VocabSize];
        TimeSpan prefill = default, decode = default;
        StopReason? reason = null;
        string? matched = null;

        ct.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var logits = Source.Prefill(prompt, audio);
        for (int step = 0; ; step++)
        {
            if (step > 0)
            {
                ct.ThrowIfCancellationRequested();
                clock.Restart();
                logits = Source.Step(generated[^1]);
            }
            if (logits.Length != scratch.Length)
                throw new InvalidOperationException($"the logits source returned {logits.Length} logits, its vocabulary has {scratch.Length}");
            int id = processor.Next(logits, CollectionsMarshal.AsSpan(sequence), rng, scratch);
            var alt = alternatives is null ? null : Alternatives(scratch, id, options);
            if (step == 0) prefill = clock.Elapsed; else decode += clock.Elapsed;

            generated.Add(id);
            sequence.Add(id);
            alternatives?.Add(alt!);
            TokenKind kind = stopIds.Contains(id) ? TokenKind.Stop
                : StepAudio2Tokens.IsText(id) ? TokenKind.Text
                : StepAudio2Tokens.IsAudioCode(id) ? TokenKind.AudioCode : TokenKind.Marker;
            if (kind == TokenKind.Stop) reason = StopReason.StopToken;
            else if (kind == TokenKind.Text && text is not null && (matched = text.Append(id)) is not null) reason = StopReason.StopString;
            else if (generated.Count >= options.MaxNewTokens) reason = StopReason.MaxNewTokens;

            string delta = text?.TakeDelta(final: reason is not null) ?? "";
            int? code = kind == TokenKind.AudioCode ? id - StepAudio2Tokens.FirstAudioCode : null;
            yield return new TokenGenerated(step, id, kind, delta, code, alt);
            if (reason is not null) break;
        }

        var ids = generated.ToArray();
        var (textIds, audioCodes) = OutputSplitter.Split(ids, stopIds); // a final stop id only when one ended it
        yield return new GenerationCompleted(new GenerationResult
        {
            PromptIds = prompt,
            GeneratedIds = ids,
            StopReason = reason!.Value,
            MatchedStopString = matched,
            TextIds = textIds,
            AudioCodes = audioCodes,
            Text = text?.Text,
            Prefill = prefill,
            Decode = decode,
            Alternatives = alternatives,
        });
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

/// <summary>A prompt that does not fit the model's context (<c>max_position_embeddings</c>).</summary>
public sealed class ContextLengthException(int promptTokens, int contextLength)
    : ArgumentException($"the prompt is {promptTokens} tokens, but the model's context holds {contextLength} (max_position_embeddings) " +
        "including at least one generated token; shorten the input (in chat: /reset the history)")
{
    public int PromptTokens { get; } = promptTokens;
    public int ContextLength { get; } = contextLength;
}
