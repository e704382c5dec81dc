using System.Globalization;
using System.Text;

namespace StepAudio2.Lab.Views;

/// <summary>A small HTML table of given columns and rows (numbers compact and culture-invariant), for notebook and report sections.</summary>
public static class TableView
{
    /// <summary>
    /// <c>&lt;table class="stats"&gt;</c> with a header row; cells are HTML-escaped text: floating-point values with 4
    /// significant digits (<see cref="Html.Num"/>), other values by their invariant-culture string, null as empty.
    /// </summary>
    public static string Render(IEnumerable<string> columns, IEnumerable<IEnumerable<object?>> rows)
    {
        ArgumentNullException.ThrowIfNull(columns);
        ArgumentNullException.ThrowIfNull(rows);
        var sb = new StringBuilder("<table class=\"stats\"><tr>");
        foreach (var c in columns) sb.Append("<th>").Append(Html.Esc(c)).Append("</th>");
        sb.Append("</tr>\n");
        foreach (var row in rows)
        {
            sb.Append("<tr>");
            foreach (var v in row) sb.Append("<td>").Append(Html.Esc(Cell(v))).Append("</td>");
            sb.Append("</tr>\n");
        }
        return sb.Append("</table>\n").ToString();
    }

    private static string Cell(object? v) => v switch
    {
        null => "",
        double d => Html.Num(d),
        float f => Html.Num(f),
        IFormattable x => x.ToString(null, CultureInfo.InvariantCulture),
        _ => v.ToString() ?? "",
    };
}
