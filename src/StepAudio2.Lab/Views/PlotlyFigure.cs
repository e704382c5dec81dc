using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A plotly figure as plain data (<c>data</c> traces and <c>layout</c>, plotly's JSON schema). Rendered as a
/// <c>&lt;script type="application/json"&gt;</c> holding the figure plus an empty div; <see cref="ReportPage"/>'s loader
/// calls <c>Plotly.newPlot(div, data, layout)</c> for each, so a notebook host can reuse the same JSON.
/// A figure whose JSON exceeds <see cref="DeflateAbove"/> characters travels deflated: the script then holds one JSON
/// string (the raw-DEFLATE bytes in base64) and <c>data-inflated</c> the UTF-8 length; the loaders inflate it with
/// <see cref="HtmlFragment.InflateJs"/>. Number text with 3–4 significant digits deflates to about a third, which is
/// what keeps an executed notebook (issue 13: at most 2 MB with plotly.js) small without coarser charts.
/// </summary>
public sealed record PlotlyFigure(string Id, JsonArray Data, JsonObject Layout)
{
    /// <summary>The figure JSON: <c>{"data": [...], "layout": {...}}</c>.</summary>
    public JsonObject ToJson() => new() { ["data"] = Data.DeepClone(), ["layout"] = Layout.DeepClone() };

    /// <summary>Figure JSON longer than this (characters) is deflated in the page; smaller figures stay readable text.</summary>
    public const int DeflateAbove = 16_384;

    /// <summary>The div the figure is drawn into and its JSON (escaped for an inline script element; deflated when large).</summary>
    public string ToHtml(int heightPx = 360)
    {
        var json = Html.ScriptJson(ToJson());
        var div = $"<div class=\"plot\" id=\"{Html.Esc(Id)}\" style=\"height:{heightPx}px\"></div>\n";
        if (json.Length <= DeflateAbove)
            return div + $"<script type=\"application/json\" class=\"plotly-figure\" data-target=\"{Html.Esc(Id)}\">{json}</script>\n";
        var bytes = Encoding.UTF8.GetBytes(json);
        using var ms = new MemoryStream();
        using (var z = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(bytes);
        var b64 = Convert.ToBase64String(ms.GetBuffer(), 0, (int)ms.Length);
        return div + $"<script type=\"application/json\" class=\"plotly-figure\" data-target=\"{Html.Esc(Id)}\" data-inflated=\"{bytes.Length}\">\"{b64}\"</script>\n";
    }

    private static readonly Regex FigureScript = new(
        "<script type=\"application/json\" class=\"plotly-figure\" data-target=\"([^\"]*)\"(?: data-inflated=\"([0-9]+)\")?>(.*?)</script>",
        RegexOptions.Singleline | RegexOptions.CultureInvariant);

    /// <summary>
    /// The figures <see cref="ToHtml"/> wrote into <paramref name="html"/>, in order, as (target id, figure JSON), deflated
    /// ones inflated: what a reader of a saved page or notebook (and the tests) sees without a browser.
    /// </summary>
    public static IReadOnlyList<(string Target, string Json)> ReadFigures(string html)
    {
        var list = new List<(string, string)>();
        foreach (Match m in FigureScript.Matches(html))
        {
            var text = m.Groups[3].Value;
            if (m.Groups[2].Success)
            {
                var packed = Convert.FromBase64String(JsonSerializer.Deserialize<string>(text)!);
                using var z = new DeflateStream(new MemoryStream(packed), CompressionMode.Decompress);
                using var raw = new MemoryStream();
                z.CopyTo(raw);
                if (raw.Length != long.Parse(m.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture))
                    throw new InvalidDataException($"figure '{m.Groups[1].Value}': inflated to {raw.Length} bytes, data-inflated says {m.Groups[2].Value}");
                text = Encoding.UTF8.GetString(raw.GetBuffer(), 0, (int)raw.Length);
            }
            list.Add((System.Net.WebUtility.HtmlDecode(m.Groups[1].Value), text));
        }
        return list;
    }

    /// <summary>A heatmap trace; <paramref name="z"/> is row-major [rows][cols].</summary>
    public static JsonObject Heatmap(JsonArray z, JsonArray? x = null, JsonArray? y = null, string colorscale = "Viridis", string? hover = null)
    {
        var t = new JsonObject { ["type"] = "heatmap", ["z"] = z, ["colorscale"] = colorscale };
        if (x is not null) t["x"] = x;
        if (y is not null) t["y"] = y;
        if (hover is not null) t["hovertemplate"] = hover;
        return t;
    }

    /// <summary>A basic layout with axis titles and tight margins.</summary>
    public static JsonObject BaseLayout(string title, string xTitle, string yTitle) => new()
    {
        ["title"] = new JsonObject { ["text"] = title, ["font"] = new JsonObject { ["size"] = 13 } },
        ["xaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = xTitle } },
        ["yaxis"] = new JsonObject { ["title"] = new JsonObject { ["text"] = yTitle } },
        ["margin"] = new JsonObject { ["l"] = 55, ["r"] = 10, ["t"] = 30, ["b"] = 40 },
    };

    /// <summary>Rows of a [rows, cols] matrix as a JSON array of arrays.</summary>
    public static JsonArray Matrix(float[] values, int rows, int cols, int digits = 4)
    {
        var z = new JsonArray();
        for (int r = 0; r < rows; r++)
        {
            var row = new JsonArray();
            for (int c = 0; c < cols; c++) row.Add(Html.Json(values[(long)r * cols + c], digits));
            z.Add(row);
        }
        return z;
    }
}
