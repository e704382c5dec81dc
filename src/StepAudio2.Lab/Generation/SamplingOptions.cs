namespace StepAudio2.Lab.Generation;

/// <summary>
/// How the next token is chosen and when generation stops: Hugging Face <c>GenerationConfig</c> semantics as the
/// official runner uses them (docs/model.md §6.4), plus stop strings (HF <c>stop_strings</c>, for think mode §6.7).
/// </summary>
/// <remarks>
/// Like HF, each processor is active only where it changes something: repetition penalty ≠ 1, and when
/// <see cref="DoSample"/>: temperature ≠ 1, top-k ≠ 0, top-p &lt; 1. With <see cref="DoSample"/> false the warpers
/// (temperature, top-k, top-p) are ignored, as HF ignores them for greedy search, but the repetition penalty still
/// applies before the argmax.
/// </remarks>
public sealed record SamplingOptions
{
    /// <summary>The official stop token <c>&lt;|EOT|&gt;</c>.</summary>
    public const int EndOfTurnId = 151665;

    /// <summary>False: greedy (argmax, first maximum as <c>torch.argmax</c>); true: multinomial draw.</summary>
    public bool DoSample { get; init; }

    /// <summary>Logits are divided by this before top-k/top-p (sampling only); must be &gt; 0.</summary>
    public double Temperature { get; init; } = 1.0;

    /// <summary>Keep the k largest scores, and every score tied with the k-th (sampling only); 0 = off. HF default 50.</summary>
    public int TopK { get; init; } = 50;

    /// <summary>Nucleus: keep the smallest top set whose probability exceeds <c>TopP</c> (sampling only); 1.0 = off.</summary>
    public double TopP { get; init; } = 1.0;

    /// <summary>CTRL repetition penalty over every id of the whole sequence, prompt included; 1.0 = off.</summary>
    public double RepetitionPenalty { get; init; } = 1.0;

    /// <summary>Most tokens to generate (the stop token counts); the runner's default is 2048.</summary>
    public int MaxNewTokens { get; init; } = 2048;

    /// <summary>Seed of the sampling RNG; null draws a fresh seed. Unused when greedy.</summary>
    public int? Seed { get; init; }

    /// <summary>Ids that end generation when produced (kept as the last generated id); default <c>&lt;|EOT|&gt;</c>.</summary>
    public IReadOnlyList<int> StopTokenIds { get; init; } = [EndOfTurnId];

    /// <summary>
    /// Strings that end generation once the decoded text contains them, e.g. <c>"&lt;/think&gt;"</c> (needs a decoder).
    /// Matched across token boundaries on the decoded generated text ids (the prompt, markers and speech codes are not
    /// part of that text); see <see cref="IncrementalText.Append"/>. The tokens that spell the string are kept.
    /// </summary>
    public IReadOnlyList<string> StopStrings { get; init; } = [];

    /// <summary>Record, for every step, the most probable alternatives of the distribution the token came from.</summary>
    public bool RecordAlternatives { get; init; }

    /// <summary>How many alternatives each recorded step keeps.</summary>
    public int AlternativesCount { get; init; } = 5;

    /// <summary>Greedy decoding, as the official ASR examples (no sampling arguments).</summary>
    public static SamplingOptions Greedy { get; } = new();

    /// <summary>Chat and speech replies in the official examples: T 0.7, top-p 0.9, repetition penalty 1.05, HF top-k 50.</summary>
    public static SamplingOptions Chat { get; } = new() { DoSample = true, Temperature = 0.7, TopK = 50, TopP = 0.9, RepetitionPenalty = 1.05 };

    /// <summary>Translation and captioning in the official examples: T 0.1 with HF's top-k 50.</summary>
    public static SamplingOptions Translate { get; } = new() { DoSample = true, Temperature = 0.1, TopK = 50 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid setting (the ranges HF enforces).</summary>
    public void Validate()
    {
        if (DoSample && (!(Temperature > 0) || double.IsInfinity(Temperature)))
            throw new ArgumentException($"Temperature must be a finite value > 0 when sampling (got {Temperature}); for greedy decoding set DoSample = false");
        if (TopK < 0) throw new ArgumentException($"TopK must be ≥ 0 (0 = off), got {TopK}");
        if (!(TopP >= 0 && TopP <= 1)) throw new ArgumentException($"TopP must lie in [0, 1], got {TopP}");
        if (!(RepetitionPenalty > 0) || double.IsInfinity(RepetitionPenalty))
            throw new ArgumentException($"RepetitionPenalty must be a finite value > 0 (1 = off), got {RepetitionPenalty}");
        if (MaxNewTokens < 1) throw new ArgumentException($"MaxNewTokens must be ≥ 1, got {MaxNewTokens}");
        if (StopTokenIds is null) throw new ArgumentException("StopTokenIds must not be null (use an empty list for none)");
        if (StopStrings is null) throw new ArgumentException("StopStrings must not be null (use an empty list for none)");
        foreach (var s in StopStrings)
            if (string.IsNullOrEmpty(s)) throw new ArgumentException("StopStrings must not contain null or empty strings");
        if (RecordAlternatives && AlternativesCount < 1) throw new ArgumentException($"AlternativesCount must be ≥ 1, got {AlternativesCount}");
    }
}
