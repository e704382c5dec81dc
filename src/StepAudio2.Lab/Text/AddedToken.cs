using System.Globalization;

namespace StepAudio2.Lab.Text;

/// <summary>One entry of <c>added_tokens_decoder</c> in tokenizer_config.json, with the flags HF honours when matching it.</summary>
/// <param name="Id">Token id (ids 151 643.. in Step-Audio 2 mini).</param>
/// <param name="Content">The literal text matched as one token.</param>
/// <param name="Special">Special token (HF can skip these when decoding; we never do).</param>
/// <param name="LStrip">Absorb the whitespace on its left into the token.</param>
/// <param name="RStrip">Absorb the whitespace on its right into the token.</param>
/// <param name="Normalized">Matched against the NFC-normalised text instead of the raw text.</param>
/// <param name="SingleWord">Matched only when neither neighbour is a word character.</param>
public sealed record AddedToken(int Id, string Content, bool Special, bool LStrip, bool RStrip, bool Normalized, bool SingleWord);

/// <summary>
/// Finds added tokens in text the way HF tokenizers' <c>AddedVocabulary::find_matches</c> does: leftmost-longest,
/// non-overlapping matches scanned left to right; a match rejected by <c>single_word</c> is still consumed; lstrip and
/// rstrip widen the match over whitespace (lstrip never reaching back into the previous match).
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<string, AddedToken> _byContent;
    private readonly Dictionary<string, AddedToken>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly int[] _lengthsDescending;
    private readonly HashSet<char> _firstChars;

    public AddedTokenMatcher(IEnumerable<AddedToken> tokens)
    {
        _byContent = new Dictionary<string, AddedToken>(StringComparer.Ordinal);
        foreach (var t in tokens) _byContent[t.Content] = t;
        _lookup = _byContent.GetAlternateLookup<ReadOnlySpan<char>>();
        _lengthsDescending = [.. _byContent.Keys.Select(k => k.Length).Distinct().OrderDescending()];
        _firstChars = [.. _byContent.Keys.Select(k => k[0])];
    }

    public int Count => _byContent.Count;

    /// <summary>A piece of the input: either an added token (<see cref="Token"/> not null) or plain text.</summary>
    public readonly record struct Piece(int Start, int Length, AddedToken? Token);

    /// <summary>Splits <paramref name="s"/> into pieces that tile it; plain pieces may be empty only when s is.</summary>
    public List<Piece> Split(ReadOnlySpan<char> s)
    {
        var pieces = new List<Piece>();
        var startOffset = 0;
        var p = 0;
        while (p < s.Length)
        {
            var token = LongestAt(s, p);
            if (token is null) { p++; continue; }
            int start = p, stop = p + token.Content.Length;
            p = stop;
            if (token.SingleWord
                && ((start > 0 && IsWordChar(s, start, before: true)) || (stop < s.Length && IsWordChar(s, stop, before: false))))
                continue;
            if (token.LStrip)
            {
                var ns = start;
                while (ns > 0 && IsSpaceBefore(s, ns, out var w)) ns -= w;
                start = Math.Max(ns, startOffset);
            }
            if (token.RStrip)
            {
                while (stop < s.Length && IsSpaceAt(s, stop, out var w)) stop += w;
                p = stop;
            }
            if (startOffset < start) pieces.Add(new Piece(startOffset, start - startOffset, null));
            pieces.Add(new Piece(start, stop - start, token));
            startOffset = stop;
        }
        if (startOffset < s.Length || pieces.Count == 0) pieces.Add(new Piece(startOffset, s.Length - startOffset, null));
        return pieces;
    }

    private AddedToken? LongestAt(ReadOnlySpan<char> s, int p)
    {
        if (!_firstChars.Contains(s[p])) return null;
        foreach (var len in _lengthsDescending)
            if (len <= s.Length - p && _lookup.TryGetValue(s.Slice(p, len), out var t)) return t;
        return null;
    }

    // Rust regex \s: the Unicode White_Space property, which is the class the Qwen2 regex calls \s.
    private static bool IsSpaceAt(ReadOnlySpan<char> s, int i, out int width)
    {
        var r = Utf16.CodePointAt(s, i, out width);
        return UnicodeTables.Classify(r) == UnicodeTables.CharClass.Space;
    }

    private static bool IsSpaceBefore(ReadOnlySpan<char> s, int end, out int width)
    {
        var r = Utf16.CodePointBefore(s, end, out width);
        return UnicodeTables.Classify(r) == UnicodeTables.CharClass.Space;
    }

    // Rust regex \w: Alphabetic, marks, decimal digits, connector punctuation, joiners.
    private static bool IsWordChar(ReadOnlySpan<char> s, int at, bool before)
    {
        var r = before ? Utf16.CodePointBefore(s, at, out _) : Utf16.CodePointAt(s, at, out _);
        if (r is 0x200C or 0x200D) return true;
        return CharUnicodeInfo.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
                or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter or UnicodeCategory.LetterNumber
                or UnicodeCategory.NonSpacingMark or UnicodeCategory.SpacingCombiningMark or UnicodeCategory.EnclosingMark
                or UnicodeCategory.DecimalDigitNumber or UnicodeCategory.ConnectorPunctuation => true,
            _ => false,
        };
    }
}

/// <summary>Code points of UTF-16 spans; a lone surrogate reads as U+FFFD.</summary>
internal static class Utf16
{
    public static int CodePointAt(ReadOnlySpan<char> s, int i, out int width) =>
        System.Text.Rune.DecodeFromUtf16(s[i..], out var r, out width) == System.Buffers.OperationStatus.Done ? r.Value : 0xFFFD;

    public static int CodePointBefore(ReadOnlySpan<char> s, int end, out int width) =>
        System.Text.Rune.DecodeLastFromUtf16(s[..end], out var r, out width) == System.Buffers.OperationStatus.Done ? r.Value : 0xFFFD;
}
