using System.Globalization;
using System.Text;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A plain HTML table for listings that have no richer view (chat turns, tool calls, per-step figures): one header row,
/// one row per item, every cell escaped text, numbers culture-invariant. Flat on purpose: the notebook kernel's default
/// object formatter renders such lists as collapsed trees, which hides exactly what a listing is for.
/// </summary>
public static class TableView
{
    /// <summary>The table; every row must have one value per column (a value's text is its invariant string, null empty).</summary>
    /// <param name="cssClass">class attribute of the table, so tests and styles can find it.</param>
    public static string Render(IReadOnlyList<string> columns, IEnumerable<IReadOnlyList<object?>> rows, string cssClass = "listing")
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(rows);
        if (columns.Count == 0) throw new ArgumentException("a table needs at least one column", nameof(columns));
        var sb = new StringBuilder($"<table class=\"{Html.Esc(cssClass)}\"><tr>");
        foreach (var c in columns) sb.Append("<th>").Append(Html.Esc(c)).Append("</th>");
        sb.Append("</tr>");
        int r = 0;
        foreach (var row in rows)
        {
            if (row is null || row.Count != columns.Count)
                throw new ArgumentException($"row {r} has {row?.Count ?? 0} values, the table has {columns.Count} columns", nameof(rows));
            sb.Append("<tr>");
            foreach (var v in row) sb.Append("<td>").Append(Html.Esc(Text(v))).Append("</td>");
            sb.Append("</tr>");
            r++;
        }
        return sb.Append("</table>\n").ToString();
    }

    private static string Text(object? v) => v switch
    {
        null => "",
        double d => Html.Num(d),
        float f => Html.Num(f),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
