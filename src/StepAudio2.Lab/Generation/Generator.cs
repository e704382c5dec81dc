using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Models;

namespace StepAudio2.Lab.Generation;

/// <summary>
/// Autoregressive generation (docs/model.md §6.4): one prefill of the prompt (with audio features), then one KV-cached step per
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
        options = FitContext(promptIds.Count, options, Source.ContextLength);
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

    /// <summary>
    /// The model's positions end at max_position_embeddings: a longer prompt is refused with the numbers, and generation
    /// stops there (StopReason MaxNewTokens) instead of running past what RoPE was trained for.
    /// </summary>
    internal static SamplingOptions FitContext(int promptTokens, SamplingOptions options, int? contextLength)
    {
        if (contextLength is not int context) return options;
        if (promptTokens >= context) throw new ContextLengthException(promptTokens, context);
        return options.MaxNewTokens > context - promptTokens ? options with { MaxNewTokens = context - promptTokens } : options;
    }

    private IEnumerable<GenerationEvent> Loop(int[] prompt, SamplingOptions options, PromptAudio? audio, ITokenDecoder? decoder, CancellationToken ct)
    {
        var state = new GenerationState(prompt, options, decoder, Source.VocabSize);
        ct.ThrowIfCancellationRequested();
        var clock = Stopwatch.StartNew();
        var logits = Source.Prefill(prompt, audio);
        while (true)
        {
            var e = state.Accept(logits, clock);
            yield return e;
            if (state.Done) break;
            ct.ThrowIfCancellationRequested();
            clock.Restart();
            logits = Source.Step(e.Id);
        }
        yield return new GenerationCompleted(state.Result());
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
