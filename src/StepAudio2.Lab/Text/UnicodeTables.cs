using System.Text;

namespace StepAudio2.Lab.Text;

/// <summary>
/// Character classes and NFC normalisation exactly as Hugging Face <c>tokenizers</c> sees them, from generated tables
/// (<see cref="UnicodeTables"/>.g.cs). Our own data rather than the runtime's because (1) the repository runs with
/// InvariantGlobalization, where <see cref="string.Normalize()"/> is a no-op, and (2) HF's regex engine (Oniguruma) and its
/// NFC (an old unicode-normalization fork) are pinned to older Unicode versions than .NET's: matching them is what makes
/// ids equal on text with recently assigned characters.
/// </summary>
internal static partial class UnicodeTables
{
    /// <summary>Class of a code point for the Qwen2 pre-tokenisation regex.</summary>
    public enum CharClass : byte { Other = 0, Letter = 1, Number = 2, Space = 3 }

    private static readonly byte[] BmpClass = BuildBmpClasses();
    private static readonly Dictionary<int, (int First, int Second)> Decomp = BuildDecompositions();
    private static readonly Dictionary<long, int> Compose = BuildCompositions(out ComposeSeconds);
    private static readonly HashSet<int> ComposeSeconds;

    private const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7;
    private const int LCount = 19, VCount = 21, TCount = 28, NCount = VCount * TCount, SCount = LCount * NCount;

    public static CharClass Classify(int cp) => cp < 0x10000 ? (CharClass)BmpClass[cp] : (CharClass)Lookup(ClassRanges, cp);

    public static int CombiningClass(int cp) => cp < 0x300 ? 0 : Lookup(CccRanges, cp);

    /// <summary>NFC of <paramref name="text"/>; returns the same instance when nothing can change (the common case).</summary>
    public static string Nfc(string text) => NeedsWork(text) ? Normalize(text) : text;

    /// <summary>NFC of <paramref name="text"/>.</summary>
    public static string Nfc(ReadOnlySpan<char> text) => NeedsWork(text) ? Normalize(text) : text.ToString();

    // A string is left unchanged by NFC when no code point decomposes, reorders or composes with its predecessor.
    private static bool NeedsWork(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            int c = text[i];
            if (c < 0x300) continue;
            if (char.IsHighSurrogate((char)c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                c = char.ConvertToUtf32((char)c, text[++i]);
            // Precomposed Hangul syllables are stable on their own; only a following jamo (flagged here) joins them.
            if (CombiningClass(c) != 0 || Decomp.ContainsKey(c) || ComposeSeconds.Contains(c) || (c >= LBase && c <= 0x11FF))
                return true;
        }
        return false;
    }

    private static string Normalize(ReadOnlySpan<char> text)
    {
        var cps = new List<int>(text.Length + 8);
        for (var i = 0; i < text.Length; i++)
        {
            int c = text[i];
            if (char.IsHighSurrogate((char)c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
                c = char.ConvertToUtf32((char)c, text[++i]);
            Decompose(c, cps);
        }
        // Canonical ordering: a stable sort of each run of non-starters by combining class.
        for (var i = 1; i < cps.Count; i++)
        {
            var ccc = CombiningClass(cps[i]);
            if (ccc == 0) continue;
            var j = i;
            while (j > 0 && CombiningClass(cps[j - 1]) > ccc)
            {
                (cps[j - 1], cps[j]) = (cps[j], cps[j - 1]);
                j--;
            }
        }
        // Canonical composition: each character joins the last starter unless a character in between blocks it.
        var output = new List<int>(cps.Count);
        var starter = -1;
        foreach (var c in cps)
        {
            var ccc = CombiningClass(c);
            if (starter >= 0)
            {
                var adjacent = starter == output.Count - 1;
                var lastCcc = adjacent ? 0 : CombiningClass(output[^1]);
                if ((adjacent || (lastCcc != 0 && lastCcc < ccc)) && TryCompose(output[starter], c, out var composite))
                {
                    output[starter] = composite;
                    continue;
                }
            }
            if (ccc == 0) starter = output.Count;
            output.Add(c);
        }
        var sb = new StringBuilder(output.Count + 4);
        foreach (var c in output) sb.Append(char.ConvertFromUtf32(IsSurrogate(c) ? 0xFFFD : c));
        return sb.ToString();
    }

    private static bool IsSurrogate(int c) => c is >= 0xD800 and <= 0xDFFF;

    private static void Decompose(int c, List<int> into)
    {
        if (c >= SBase && c < SBase + SCount)
        {
            var s = c - SBase;
            into.Add(LBase + s / NCount);
            into.Add(VBase + s % NCount / TCount);
            if (s % TCount != 0) into.Add(TBase + s % TCount);
            return;
        }
        if (Decomp.TryGetValue(c, out var d))
        {
            Decompose(d.First, into);
            if (d.Second >= 0) Decompose(d.Second, into);
            return;
        }
        into.Add(c);
    }

    private static bool TryCompose(int first, int second, out int composite)
    {
        if (first >= LBase && first < LBase + LCount && second >= VBase && second < VBase + VCount)
        {
            composite = SBase + ((first - LBase) * VCount + (second - VBase)) * TCount;
            return true;
        }
        if (first >= SBase && first < SBase + SCount && (first - SBase) % TCount == 0 && second > TBase && second < TBase + TCount)
        {
            composite = first + (second - TBase);
            return true;
        }
        return Compose.TryGetValue(((long)first << 21) | (uint)second, out composite);
    }

    // Binary search in sorted [first, last, value] triples; 0 when cp is in no range.
    private static int Lookup(ReadOnlySpan<int> triples, int cp)
    {
        int lo = 0, hi = triples.Length / 3 - 1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >> 1;
            if (cp < triples[mid * 3]) hi = mid - 1;
            else if (cp > triples[mid * 3 + 1]) lo = mid + 1;
            else return triples[mid * 3 + 2];
        }
        return 0;
    }

    private static byte[] BuildBmpClasses()
    {
        var table = new byte[0x10000];
        var r = ClassRanges;
        for (var i = 0; i < r.Length && r[i] < 0x10000; i += 3)
            table.AsSpan(r[i], Math.Min(r[i + 1], 0xFFFF) - r[i] + 1).Fill((byte)r[i + 2]);
        return table;
    }

    private static Dictionary<int, (int, int)> BuildDecompositions()
    {
        var d = Decompositions;
        var map = new Dictionary<int, (int, int)>(d.Length / 3);
        for (var i = 0; i < d.Length; i += 3) map[d[i]] = (d[i + 1], d[i + 2]);
        return map;
    }

    private static Dictionary<long, int> BuildCompositions(out HashSet<int> seconds)
    {
        var c = Compositions;
        var map = new Dictionary<long, int>(c.Length / 3);
        seconds = [];
        for (var i = 0; i < c.Length; i += 3)
        {
            map[((long)c[i] << 21) | (uint)c[i + 1]] = c[i + 2];
            seconds.Add(c[i + 1]);
        }
        return map;
    }
}
