namespace StepAudio2.Lab.Generation;

/// <summary>
/// Decoded text of the generated text ids as they arrive: streaming deltas that hold back an incomplete UTF-8 tail,
/// and stop-string detection across token boundaries.
/// </summary>
/// <remarks>
/// The whole id list is decoded again at every token. That costs O(n) per step (far below a forward pass) and needs
/// nothing from the decoder beyond <see cref="ITokenDecoder.Decode"/>: byte-level BPE pieces are not text on their
/// own, so decoding them one by one would be wrong.
/// </remarks>
public sealed class IncrementalText
{
    private readonly ITokenDecoder _decoder;
    private readonly IReadOnlyList<string> _stopStrings;
    private readonly List<int> _ids = [];
    private int _emitted;

    public IncrementalText(ITokenDecoder decoder, IReadOnlyList<string>? stopStrings = null)
    {
        _decoder = decoder ?? throw new ArgumentNullException(nameof(decoder));
        _stopStrings = stopStrings ?? [];
    }

    /// <summary>The decoded text of all ids appended so far.</summary>
    public string Text { get; private set; } = "";

    /// <summary>The ids appended so far.</summary>
    public IReadOnlyList<int> Ids => _ids;

    /// <summary>
    /// Appends one id and returns the stop string it completes, or null. HF <c>stop_strings</c> semantics: a stop string
    /// matches when it occurs in the decoded text and ends inside the text the newest token added (the token may run
    /// past it, e.g. <c>"&gt;\n"</c> completing <c>"&lt;/think&gt;"</c>); what decoded before stays unmatched.
    /// </summary>
    public string? Append(int id)
    {
        _ids.Add(id);
        string previous = Text;
        Text = _decoder.Decode(_ids) ?? throw new InvalidOperationException("the token decoder returned null");
        int unchanged = CommonPrefixLength(previous, Text);
        foreach (var stop in _stopStrings)
        {
            int from = Math.Max(0, unchanged - stop.Length + 1); // a match starting here ends after the unchanged prefix
            if (from <= Text.Length && Text.IndexOf(stop, from, StringComparison.Ordinal) >= 0) return stop;
        }
        return null;
    }

    /// <summary>
    /// Text not yet handed out. Unless <paramref name="final"/>, trailing U+FFFD is held back: it is what an incomplete
    /// UTF-8 sequence decodes to, and the next token may complete it.
    /// </summary>
    public string TakeDelta(bool final)
    {
        int visible = Text.Length;
        if (!final) while (visible > 0 && Text[visible - 1] == '\uFFFD') visible--;
        if (visible <= _emitted) return "";
        string delta = Text[_emitted..visible];
        _emitted = visible;
        return delta;
    }

    private static int CommonPrefixLength(string a, string b) => a.AsSpan().CommonPrefixLength(b.AsSpan());
}
