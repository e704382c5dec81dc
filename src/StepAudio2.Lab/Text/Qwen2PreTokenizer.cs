using Microsoft.ML.Tokenizers;
using static StepAudio2.Lab.Text.UnicodeTables;

namespace StepAudio2.Lab.Text;

/// <summary>
/// The Qwen2 pre-tokenisation regex
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
/// as a hand-written scanner over code points.
/// </summary>
/// <remarks>
/// Not a .NET <see cref="System.Text.RegularExpressions.Regex"/>: .NET classes match UTF-16 units, so a supplementary
/// letter or digit (𝐀, 𠀀, 𝟏) is two "other" surrogates to it, while HF's Oniguruma sees one \p{L}/\p{N} code point, and
/// the pieces (hence the ids) differ. Classes come from <see cref="UnicodeTables"/>, probed from HF itself. Each branch
/// below is one alternative of the pattern, tried in the pattern's order, with the backtracking outcome written out.
/// </remarks>
internal sealed class Qwen2PreTokenizer : PreTokenizer
{
    public static Qwen2PreTokenizer Instance { get; } = new();

    public override IEnumerable<(int Offset, int Length)> PreTokenize(string text) =>
        string.IsNullOrEmpty(text) ? [] : Split(text.AsSpan());

    public override IEnumerable<(int Offset, int Length)> PreTokenize(ReadOnlySpan<char> text) =>
        text.IsEmpty ? [] : Split(text);

    /// <summary>The (offset, length) pieces of <paramref name="s"/>, in UTF-16 units; they tile the whole input.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<char> s)
    {
        var pieces = new List<(int, int)>();
        var i = 0;
        while (i < s.Length)
        {
            var end = MatchAt(s, i);
            pieces.Add((i, end - i));
            i = end;
        }
        return pieces;
    }

    private static int MatchAt(ReadOnlySpan<char> s, int i)
    {
        var (cp, w) = At(s, i);

        // (?i:'s|'t|'re|'ve|'m|'ll|'d) — case folding also maps U+017F LONG S onto s (Oniguruma does; checked against HF).
        if (cp == '\'' && i + 1 < s.Length)
        {
            var a = Fold(s[i + 1]);
            if (a is 's' or 't' or 'm' or 'd') return i + 2;
            if (i + 2 < s.Length)
            {
                var b = Fold(s[i + 2]);
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
            }
        }

        var cls = Classify(cp);
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (cls == CharClass.Letter) return SkipClass(s, i + w, CharClass.Letter);
        if (cp != '\r' && cp != '\n' && cls != CharClass.Number && i + w < s.Length && Classify(At(s, i + w).Cp) == CharClass.Letter)
            return SkipClass(s, i + w, CharClass.Letter);
        // \p{N}
        if (cls == CharClass.Number) return i + w;
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        var first = cp == ' ' ? i + 1 : i;
        if (first < s.Length && Classify(At(s, first).Cp) == CharClass.Other)
        {
            var j = SkipClass(s, first, CharClass.Other);
            while (j < s.Length && s[j] is '\r' or '\n') j++;
            return j;
        }
        // Only whitespace is left (every \s code point is in the BMP, one unit each).
        var run = SkipClass(s, i, CharClass.Space);
        // \s*[\r\n]+ : greedy \s* gives back up to the last line break of the run.
        for (var k = run - 1; k >= i; k--)
            if (s[k] is '\r' or '\n') return k + 1;
        // \s+(?!\S) : the whole run at the end of input, else all but its last code point; \s+ when that is empty.
        if (run == s.Length) return run;
        return run - i >= 2 ? run - 1 : run;
    }

    private static char Fold(char c) => c == '\u017F' ? 's' : char.ToLowerInvariant(c) is var l && l < 0x80 ? l : '\0';

    private static int SkipClass(ReadOnlySpan<char> s, int i, CharClass cls)
    {
        while (i < s.Length)
        {
            var (cp, w) = At(s, i);
            if (Classify(cp) != cls) break;
            i += w;
        }
        return i;
    }

    private static (int Cp, int Width) At(ReadOnlySpan<char> s, int i)
    {
        var c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) return (char.ConvertToUtf32(c, s[i + 1]), 2);
        return (c, 1);
    }
}
