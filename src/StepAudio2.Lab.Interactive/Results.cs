using System.Text.Json.Nodes;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// Views composed for one output: the body HTML (the core views' markup). Displayed in the extension's styles, with the
/// plotly.js bundle when it is the kernel session's first chart output (<see cref="PlotlyOnPage"/>).
/// </summary>
public sealed record HtmlView(string Body)
{
    /// <summary>The standalone fragment: styles, body and, when it has figures, plotly.js inline.</summary>
    public string Html => HtmlFragment.Render(Body, () => ChartHost.PlotlyJs);

    /// <inheritdoc />
    public override string ToString() => Html;
}

/// <summary>A plotly figure made by the chart renderer (Plotly.NET), drawn offline in the notebook.</summary>
public sealed record Chart(PlotlyFigure Figure, int HeightPx = 360)
{
    /// <summary>The figure JSON (<c>{"data": [...], "layout": {...}}</c>).</summary>
    public string Json => Figure.ToJson().ToJsonString();

    /// <summary>Wraps the figure JSON returned by an <see cref="IChartRenderer"/>.</summary>
    public static Chart FromJson(string figureJson, int heightPx = 360)
    {
        var node = JsonNode.Parse(figureJson) as JsonObject ?? throw new FormatException("figure JSON is not an object");
        var data = node["data"] as JsonArray ?? throw new FormatException("figure JSON has no data array");
        var layout = node["layout"] as JsonObject ?? new JsonObject();
        return new Chart(new PlotlyFigure(LabHtml.NewId(), (JsonArray)data.DeepClone(), (JsonObject)layout.DeepClone()), heightPx);
    }
}

/// <summary>Encoder attention of several layers (softmaxed <c>encoder.blocks.N.attn.qk</c>) with the head shown zoomed.</summary>
public sealed record AttentionLayers(IReadOnlyList<AttentionMaps> Layers, int ZoomLayer = 0, int ZoomHead = 0);

/// <summary>A dump comparison plus the |a−b| map of the row worth a look (first failure, else the largest difference).</summary>
public sealed record ParityResult(DumpComparison Comparison, DiffMap? Diff)
{
    /// <summary>True when every compared tensor is within tolerance.</summary>
    public bool AllPassed => Comparison.AllPassed;
}

/// <summary>Quantized checkpoints against one float trace, labelled ("int8", "int4"): summary, rel-L2 by depth, KL by position.</summary>
public sealed record QuantizationSet(IReadOnlyList<(string Label, QuantizationComparison Comparison)> Runs);
