namespace StepAudio2.Lab.Generation;

/// <summary>Why generation ended.</summary>
public enum StopReason
{
    /// <summary>A stop token (<c>&lt;|EOT|&gt;</c> by default) was generated; it is the last generated id.</summary>
    StopToken,
    /// <summary>The decoded text came to contain one of the stop strings.</summary>
    StopString,
    /// <summary><see cref="SamplingOptions.MaxNewTokens"/> ids were generated.</summary>
    MaxNewTokens,
}

/// <summary>What a generated id is, by range (docs/model.md §6.4).</summary>
public enum TokenKind
{
    /// <summary>Text or turn-control id (&lt; 151688): part of <see cref="GenerationResult.TextIds"/>.</summary>
    Text,
    /// <summary>Speech code id (&gt; 151695): part of <see cref="GenerationResult.AudioCodes"/>.</summary>
    AudioCode,
    /// <summary>Audio/TTS marker 151688..151695 (<c>&lt;tts_start&gt;</c>, <c>&lt;tts_pad&gt;</c>, …): neither text nor speech.</summary>
    Marker,
    /// <summary>The final stop token: excluded from text and speech.</summary>
    Stop,
}

/// <summary>The most probable ids of one step's distribution (processed and softmaxed; for greedy, the softmax of the penalised logits).</summary>
/// <param name="ChosenId">the id generated at this step.</param>
/// <param name="ChosenProbability">its probability in that distribution.</param>
/// <param name="Ids">the top ids, most probable first (lower id first among equals).</param>
/// <param name="Probabilities">their probabilities.</param>
public sealed record StepAlternatives(int ChosenId, float ChosenProbability, int[] Ids, float[] Probabilities);

/// <summary>The outcome of one generation call.</summary>
/// <remarks>
/// <see cref="TextIds"/> and <see cref="AudioCodes"/> follow the official runner's partition by id range, except that
/// only a <b>final stop token</b> is left out. The official runner takes <c>generated[prompt_len : −1]</c>, always dropping
/// the last generated id, which loses a real token whenever generation stopped on the length limit (and, in think mode,
/// the <c>&gt;</c> of <c>&lt;/think&gt;</c>, which it then appends back by hand).
/// </remarks>
public sealed record GenerationResult
{
    /// <summary>The prompt as given.</summary>
    public required int[] PromptIds { get; init; }
    /// <summary>Every generated id in order, including the stop token when one ended generation.</summary>
    public required int[] GeneratedIds { get; init; }
    public required StopReason StopReason { get; init; }
    /// <summary>True when a stop token ended generation.</summary>
    public bool StoppedOnEos => StopReason == StopReason.StopToken;
    /// <summary>The stop string that ended generation, when <see cref="StopReason"/> is <see cref="StopReason.StopString"/>.</summary>
    public string? MatchedStopString { get; init; }
    /// <summary>Generated ids &lt; 151688 (text and turn control), without a final stop token.</summary>
    public required int[] TextIds { get; init; }
    /// <summary>Speech codes: generated ids &gt; 151695 minus 151696 (all of them; see <see cref="OutputSplitter.SpeechCodesForToken2Wav"/>).</summary>
    public required int[] AudioCodes { get; init; }
    /// <summary>The decoded <see cref="TextIds"/> when a decoder was given, else null.</summary>
    public string? Text { get; init; }
    /// <summary>Prompt forward pass plus the choice of the first token (time to first token).</summary>
    public required TimeSpan Prefill { get; init; }
    /// <summary>All later steps: one forward pass of one token plus its choice each (consumer time excluded).</summary>
    public required TimeSpan Decode { get; init; }
    /// <summary>Per-step alternatives when <see cref="SamplingOptions.RecordAlternatives"/> was set, else null.</summary>
    public IReadOnlyList<StepAlternatives>? Alternatives { get; init; }

    /// <summary>Prompt tokens per second of <see cref="Prefill"/>.</summary>
    public double PrefillTokensPerSecond => PromptIds.Length / Math.Max(Prefill.TotalSeconds, 1e-9);

    /// <summary>Tokens per second of <see cref="Decode"/>: every generated id after the first came from one decode step.</summary>
    public double DecodeTokensPerSecond => GeneratedIds.Length <= 1 ? 0 : (GeneratedIds.Length - 1) / Math.Max(Decode.TotalSeconds, 1e-9);
}

/// <summary>One item of a streamed generation: a <see cref="TokenGenerated"/> per id, then one <see cref="GenerationCompleted"/>.</summary>
public abstract record GenerationEvent;

/// <summary>An id has been generated.</summary>
/// <param name="Index">0-based position among the generated ids.</param>
/// <param name="Id">the token id.</param>
/// <param name="Kind">its range.</param>
/// <param name="TextDelta">
/// new decoded text (empty without a decoder). Text whose decoding ends in U+FFFD (an incomplete UTF-8 sequence so far)
/// is held back until a later token completes it or generation ends, so the deltas concatenate to
/// <see cref="GenerationResult.Text"/>.
/// </param>
/// <param name="AudioCode">the speech code (id − 151696) for <see cref="TokenKind.AudioCode"/>, else null.</param>
/// <param name="Alternatives">this step's alternatives when recorded, else null.</param>
public sealed record TokenGenerated(int Index, int Id, TokenKind Kind, string TextDelta, int? AudioCode, StepAlternatives? Alternatives) : GenerationEvent;

/// <summary>Generation has ended; the result equals what the non-streaming call returns.</summary>
public sealed record GenerationCompleted(GenerationResult Result) : GenerationEvent;
