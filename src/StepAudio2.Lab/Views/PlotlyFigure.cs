using System.Text.Json.Nodes;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A plotly figure as plain data (<c>data</c> traces and <c>layout</c>, plotly's JSON schema). Rendered as a
/// <c>&lt;script type="application/json"&gt;</c> holding the figure plus an empty div; <see cref="ReportPage"/>'s loader
/// calls <c>Plotly.newPlot(div, data, layout)</c> for each, so a notebook host can reuse the same JSON.
/// </summary>
public sealed record PlotlyFigure(string Id, JsonArray Data, JsonObject Layout)
{
    /// <summary>The figure JSON: <c>{"data": [...], "layout": {...}}</c>.</summary>
    public JsonObject ToJson() => new() { ["data"] = Data.DeepClone(), ["layout"] = Layout.DeepClone() };

    /// <summary>The div the figure is drawn into and its JSON (escaped for an inline script element).</summary>
    public string ToHtml(int heightPx = 360) =>
        $"<div class=\"plot\" id=\"{Html.Esc(Id)}\" style=\"height:{heightPx}px\"></div>\n" +
        $"<script type=\"application/json\" class=\"plotly-figure\" data-target=\"{Html.Esc(Id)}\">{Html.ScriptJson(ToJson())}</script>\n";

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
