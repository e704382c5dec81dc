namespace StepAudio2.Lab.Generation;

/// <summary>Token id ranges of the Step-Audio 2 vocabulary that generation needs (docs/model.md §6.1).</summary>
public static class StepAudio2Tokens
{
    /// <summary><c>&lt;|EOT|&gt;</c>, end of turn: the only official stop token.</summary>
    public const int EndOfTurn = 151665;
    /// <summary><c>&lt;|BOT|&gt;</c>, begin of turn.</summary>
    public const int BeginOfTurn = 151666;
    /// <summary><c>&lt;audio_start&gt;</c>: first id that is neither text nor a speech code.</summary>
    public const int AudioStart = 151688;
    /// <summary><c>&lt;tts_start&gt;</c>: a prompt ending with it asks for an interleaved speech reply (§6.5).</summary>
    public const int TtsStart = 151693;
    /// <summary><c>&lt;tts_end&gt;</c>: end of the speech section.</summary>
    public const int TtsEnd = 151694;
    /// <summary><c>&lt;tts_pad&gt;</c>: text-slot padding inside the speech section; last non-code marker id.</summary>
    public const int TtsPad = 151695;
    /// <summary><c>&lt;audio_0&gt;</c>: speech code c has id <c>FirstAudioCode + c</c>.</summary>
    public const int FirstAudioCode = 151696;
    /// <summary>Codes 0..6560 (3⁸) are valid flow inputs; 6561 (<c>&lt;audio_6561&gt;</c>) is the speech-slot padding.</summary>
    public const int SpeechCodebookSize = Models.Token2Wav.SpeechCodes.CodebookSize;

    /// <summary>Text (and turn-control) ids: everything below <see cref="AudioStart"/>.</summary>
    public static bool IsText(int id) => id is >= 0 and < AudioStart;

    /// <summary>Speech-code ids: everything above <see cref="TtsPad"/>.</summary>
    public static bool IsAudioCode(int id) => id > TtsPad;

    /// <summary>The audio/TTS markers 151688..151695, which belong to neither text nor speech.</summary>
    public static bool IsMarker(int id) => id is >= AudioStart and <= TtsPad;
}

/// <summary>
/// Partitions generated ids into text ids and speech codes by id range (docs/model.md §6.4); the interleaved "TA4" layout of a
/// speech reply (§6.5) needs no parsing for this, since every id belongs to exactly one range.
/// </summary>
public static class OutputSplitter
{
    /// <summary>
    /// Text ids (all ids &lt; 151688) and speech codes (ids &gt; 151695, minus 151696) of <paramref name="generated"/>,
    /// leaving out a stop token only when it is the final id.
    /// </summary>
    /// <remarks>
    /// The official runner instead takes <c>generated[prompt_len : −1]</c>, always dropping the last generated id: when
    /// generation ended on the length limit that loses a real token. Here only a final stop id is excluded, so a reply
    /// cut by <c>MaxNewTokens</c> keeps its last token.
    /// </remarks>
    public static (int[] TextIds, int[] AudioCodes) Split(ReadOnlySpan<int> generated, IReadOnlyCollection<int> stopTokenIds)
    {
        ArgumentNullException.ThrowIfNull(stopTokenIds);
        if (!generated.IsEmpty && stopTokenIds.Contains(generated[^1])) generated = generated[..^1];
        var text = new List<int>(generated.Length);
        var codes = new List<int>(generated.Length);
        foreach (int id in generated)
        {
            if (id < 0) throw new ArgumentOutOfRangeException(nameof(generated), $"negative token id {id}");
            if (StepAudio2Tokens.IsText(id)) text.Add(id);
            else if (StepAudio2Tokens.IsAudioCode(id)) codes.Add(id - StepAudio2Tokens.FirstAudioCode);
        }
        return (text.ToArray(), codes.ToArray());
    }

    /// <summary>The codes token2wav may receive: those &lt; 6561, dropping <c>&lt;audio_6561&gt;</c> padding and anything higher (§6.4).</summary>
    public static int[] SpeechCodesForToken2Wav(ReadOnlySpan<int> codes) => Models.Token2Wav.SpeechCodes.Filter(codes);
}
