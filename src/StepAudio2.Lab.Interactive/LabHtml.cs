using System.Text;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// Turns the lab's values into notebook HTML by calling the core library's views (no view code lives here): one place
/// used by the formatters, <see cref="Lab.Show"/> and the tests.
/// </summary>
public static class LabHtml
{
    /// <summary>The types that have a view.</summary>
    public static IReadOnlyList<Type> SupportedTypes { get; } =
    [
        typeof(Tensor), typeof(SpectrogramData), typeof(AudioClip), typeof(Waveform), typeof(AttentionMaps), typeof(AttentionLayers),
        typeof(TokenStream), typeof(Trace), typeof(DumpComparison), typeof(ParityResult), typeof(Chart), typeof(HtmlView),
        typeof(QuantizationComparison), typeof(QuantizationSet),
    ];

    /// <summary>A figure id unique across outputs (nbconvert puts every output on one page).</summary>
    public static string NewId() => "steplab-" + Guid.NewGuid().ToString("N")[..12];

    /// <summary>
    /// The complete fragment for <paramref name="value"/> as one output (styles, body, loader; plotly.js only in the kernel
    /// session's first chart output, see <see cref="PlotlyOnPage"/>).
    /// </summary>
    public static string Fragment(object value) => HtmlFragment.Compose(Body(value), PlotlyOnPage.BootstrapForThisOutput);

    /// <summary>The body HTML of <paramref name="value"/> (one of <see cref="SupportedTypes"/>).</summary>
    public static string Body(object value) => value switch
    {
        Tensor t => TensorBody("tensor", t),
        // the heatmap only: a PNG of the same values beside it doubled the output (Lab.Png(s) gives the static rendering)
        SpectrogramData s => SpectrogramView.Figure(s, NewId()).ToHtml(380),
        AudioClip c => WaveformView.Render(Waveform.Of(c), NewId()),
        Waveform w => WaveformView.Render(w, NewId()),
        AttentionMaps m => AttentionView.LayerGrid(m, NewId()).ToHtml(260) + AttentionView.Zoom(m, 0, NewId()).ToHtml(420),
        AttentionLayers a => AttentionBody(a),
        TokenStream s => TokenStreamView.Render(s),
        Trace t => TraceExplorerView.RenderWithTensors(t),
        DumpComparison c => ParityView.Render(c),
        ParityResult p => ParityView.Render(p.Comparison) + (p.Diff is null ? "" : ParityView.DiffFigure(p.Diff, NewId()).ToHtml(420)),
        Chart c => c.Figure.ToHtml(c.HeightPx),
        QuantizationComparison q => QuantizationView.Render([("candidate", q)], NewId()),
        QuantizationSet s => QuantizationView.Render(s.Runs, NewId()),
        HtmlView v => v.Body,
        null => throw new ArgumentNullException(nameof(value)),
        _ => throw new ArgumentException($"no StepAudio2.Lab view for {value.GetType().FullName}; views exist for {string.Join(", ", SupportedTypes.Select(t => t.Name))}"),
    };

    /// <summary>Statistics table plus a small plot (Plotly.NET heatmap or line); a PNG with the reason when charts are unavailable.</summary>
    public static string TensorBody(string name, Tensor t)
    {
        var sb = new StringBuilder(TensorSummaryView.Render(name, TensorStats.Of(t)));
        if (t.ElementCount == 0) return sb.ToString();
        var d = TensorPlotData.Of(name, t);
        try
        {
            sb.Append(PlotTensor(d, 280).Figure.ToHtml(280));
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException or FileLoadException or BadImageFormatException or InvalidOperationException)
        {
            sb.Append($"<p class=\"hint\">charts unavailable ({Html.Esc(e.Message)}); static rendering:</p>").Append(TensorPlotView.Image(d));
        }
        return sb.ToString();
    }

    /// <summary>The plot of a <see cref="TensorPlotData"/> through the chart renderer: a line for one row, else a heatmap.</summary>
    public static Chart PlotTensor(TensorPlotData d, int heightPx = 360)
    {
        var r = ChartHost.Renderer;
        if (d.IsLine)
        {
            var x = Enumerable.Range(0, d.Cols).Select(i => (double)i * d.ColStride).ToArray();
            return Chart.FromJson(r.Line(x, [d.Values.Select(v => (double)v).ToArray()], [d.Name], d.Title, d.ColumnTitle, d.RowTitle), heightPx);
        }
        var chart = Chart.FromJson(r.Heatmap(d.Values, d.Rows, d.Cols, null, null, d.Title, d.ColumnTitle, d.RowTitle, "RdBu"), heightPx);
        // rows top-down, like a printed matrix
        if (chart.Figure.Layout["yaxis"] is System.Text.Json.Nodes.JsonObject y) y["autorange"] = "reversed";
        else chart.Figure.Layout["yaxis"] = new System.Text.Json.Nodes.JsonObject { ["autorange"] = "reversed" };
        return chart;
    }

    private static string AttentionBody(AttentionLayers a)
    {
        var sb = new StringBuilder();
        foreach (var m in a.Layers) sb.Append(AttentionView.LayerGrid(m, NewId()).ToHtml(260));
        if (a.Layers.Count > 0)
        {
            int l = Math.Clamp(a.ZoomLayer, 0, a.Layers.Count - 1);
            sb.Append(AttentionView.Zoom(a.Layers[l], Math.Clamp(a.ZoomHead, 0, a.Layers[l].Heads - 1), NewId()).ToHtml(420));
        }
        return sb.ToString();
    }
}
