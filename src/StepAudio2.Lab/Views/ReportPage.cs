using System.Text;

namespace StepAudio2.Lab.Views;

/// <summary>One section of a report page: a heading and its HTML body.</summary>
public sealed record ReportSection(string Id, string Title, string Body);

/// <summary>
/// Assembles sections into one self-contained offline HTML page: plotly.js inline, every figure's JSON inline, no
/// external URL anywhere (so it opens from disk, in a mail attachment or on an air-gapped machine).
/// </summary>
public static class ReportPage
{
    private const string Css = """
        body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1400px;color:#222}
        h1{font-size:1.4em}h2{font-size:1.15em;border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:1.6em}
        """ + ComponentCss;

    /// <summary>Styles of the views themselves (tables, pass/fail colours, token chips), without page-level rules.</summary>
    public const string ComponentCss = """
        table{border-collapse:collapse;font-size:12px;margin:.4em 0}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left}
        td.path,code{font-family:ui-monospace,monospace}
        tr.pass td.status,.verdict.pass{color:#11661a;font-weight:bold}tr.pass{background:#eef9ee}
        tr.fail td.status,.verdict.fail{color:#a00;font-weight:bold}tr.fail{background:#fde8e8}tr.missing{background:#f4f4f4}
        td.bad{color:#a00;font-weight:bold}.hint{color:#a05a00}
        .tokens{line-height:2;font-family:ui-monospace,monospace;font-size:12px}
        .tok{border-radius:3px;padding:1px 3px;margin:1px;white-space:pre}
        .tok.text{background:#e4efff}.tok.special{background:#ffe2b8}.tok.audio_patch{background:#d6f5d6}.tok.speech{background:#f1dcff}
        .tok.gen{outline:2px solid #444}
        details{margin:.3em 0}summary{cursor:pointer}
        """;

    /// <summary>
    /// <see cref="ComponentCss"/> with every selector prefixed by <paramref name="scope"/>, so a fragment inside a notebook
    /// styles its own views and nothing else on the page.
    /// </summary>
    public static string ScopedCss(string scope)
    {
        var sb = new StringBuilder();
        foreach (var rule in ComponentCss.Split('}', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int brace = rule.IndexOf('{');
            if (brace < 0) continue;
            var selectors = rule[..brace].Split(',', StringSplitOptions.TrimEntries).Select(sel => $"{scope} {sel}");
            sb.Append(string.Join(",", selectors)).Append(rule[brace..]).Append('}');
        }
        return sb.ToString();
    }

    // Draws every figure whose JSON sits in a <script type="application/json" class="plotly-figure"> (inflated when deflated).
    private const string Loader = """
        document.querySelectorAll('script.plotly-figure').forEach(function(s){
          var f = steplabFigure(s);
          Plotly.newPlot(document.getElementById(s.dataset.target), f.data, f.layout, {responsive:true, displaylogo:false});
        });
        """;

    /// <summary>The page: <paramref name="plotlyJs"/> is the plotly.js source (see <see cref="PlotlyScript"/>).</summary>
    public static string Render(string title, IEnumerable<ReportSection> sections, string plotlyJs)
    {
        var list = sections.ToList();
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
        sb.Append($"<title>{Html.Esc(title)}</title>\n<style>{Css}</style>\n");
        sb.Append("<script>").Append(PlotlyScript.ForInlineScript(plotlyJs)).Append("</script>\n</head><body>\n");
        sb.Append($"<h1>{Html.Esc(title)}</h1>\n<nav>");
        sb.Append(string.Join(" · ", list.Select(s => $"<a href=\"#{Html.Esc(s.Id)}\">{Html.Esc(s.Title)}</a>")));
        sb.Append("</nav>\n");
        foreach (var s in list)
            sb.Append($"<section id=\"{Html.Esc(s.Id)}\"><h2>{Html.Esc(s.Title)}</h2>\n{s.Body}</section>\n");
        sb.Append("<script>").Append(HtmlFragment.InflateJs).Append(HtmlFragment.FigureJs).Append(Loader).Append("</script>\n</body></html>\n");
        return sb.ToString();
    }
}
