namespace StepAudio2.Lab.Parity;

/// <summary>
/// Shell-style wildcards over tensor names: <c>*</c> matches any run of characters, dots included (so <c>*.qk</c> matches
/// <c>encoder.blocks.7.attn.qk</c>), <c>?</c> matches one character; everything else is literal and case-sensitive.
/// </summary>
public static class NameGlob
{
    /// <summary>True when <paramref name="name"/> matches <paramref name="pattern"/> as a whole.</summary>
    public static bool IsMatch(string name, string pattern)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(pattern);
        // Greedy match with backtracking to the last star: linear in practice, never exponential.
        int n = 0, p = 0, starP = -1, starN = 0;
        while (n < name.Length)
        {
            if (p < pattern.Length && (pattern[p] == '?' || pattern[p] == name[n]) && pattern[p] != '*')
            {
                n++;
                p++;
            }
            else if (p < pattern.Length && pattern[p] == '*')
            {
                starP = p++;
                starN = n;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                n = ++starN;
            }
            else
            {
                return false;
            }
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }

    /// <summary>True when any pattern matches.</summary>
    public static bool IsMatchAny(string name, IEnumerable<string> patterns)
    {
        foreach (var pattern in patterns)
            if (IsMatch(name, pattern)) return true;
        return false;
    }
}
