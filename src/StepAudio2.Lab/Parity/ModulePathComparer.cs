namespace StepAudio2.Lab.Parity;

/// <summary>
/// Orders activation names (PyTorch module paths) the way a forward pass produces them, as far as names allow:
/// <list type="bullet">
/// <item><c>input.*</c> first (the dumps' inputs);</item>
/// <item>dot-separated segments compared one by one, digit runs numerically (<c>blocks.2</c> before <c>blocks.10</c>);</item>
/// <item>a module after its own submodules (<c>blocks.0.attn.qk</c>, <c>blocks.0.attn</c>, <c>blocks.0</c>): forward hooks fire
/// when a module returns, so children's outputs exist before their parent's. This puts the first failing *leaf* first.</item>
/// </list>
/// Sibling order that names cannot tell (<c>conv1</c> vs <c>blocks</c>) needs an explicit execution order.
/// </summary>
public sealed class ModulePathComparer : IComparer<string>
{
    /// <summary>The shared instance.</summary>
    public static ModulePathComparer Instance { get; } = new();

    public int Compare(string? x, string? y)
    {
        if (ReferenceEquals(x, y)) return 0;
        if (x is null) return -1;
        if (y is null) return 1;

        bool ix = IsInput(x), iy = IsInput(y);
        if (ix != iy) return ix ? -1 : 1;

        int px = 0, py = 0;
        while (true)
        {
            bool endX = px > x.Length, endY = py > y.Length;
            if (endX || endY)
            {
                // One path is an ancestor of the other: the descendant (longer) comes first.
                if (endX && endY) return string.CompareOrdinal(x, y);
                return endX ? 1 : -1;
            }
            int ex = x.IndexOf('.', px); if (ex < 0) ex = x.Length;
            int ey = y.IndexOf('.', py); if (ey < 0) ey = y.Length;
            int c = CompareSegment(x.AsSpan(px, ex - px), y.AsSpan(py, ey - py));
            if (c != 0) return c;
            px = ex + 1;
            py = ey + 1;
        }
    }

    private static bool IsInput(string name) => name == "input" || name.StartsWith("input.", StringComparison.Ordinal);

    /// <summary>Natural comparison of one segment: digit runs by value, other runs ordinally; ties broken ordinally.</summary>
    internal static int CompareSegment(ReadOnlySpan<char> a, ReadOnlySpan<char> b)
    {
        int i = 0, j = 0;
        while (i < a.Length && j < b.Length)
        {
            if (char.IsAsciiDigit(a[i]) && char.IsAsciiDigit(b[j]))
            {
                int si = i, sj = j;
                while (i < a.Length && char.IsAsciiDigit(a[i])) i++;
                while (j < b.Length && char.IsAsciiDigit(b[j])) j++;
                var da = a[si..i].TrimStart('0');
                var db = b[sj..j].TrimStart('0');
                if (da.Length != db.Length) return da.Length.CompareTo(db.Length);
                int c = da.SequenceCompareTo(db);
                if (c != 0) return c;
            }
            else
            {
                if (a[i] != b[j]) return a[i].CompareTo(b[j]);
                i++;
                j++;
            }
        }
        if (i < a.Length || j < b.Length) return i < a.Length ? 1 : -1;
        return a.SequenceCompareTo(b);
    }
}
