using Plotly.NET;
using StepAudio2.Lab.Views;
using CSharpChart = Plotly.NET.CSharp.Chart;
using ChartExtensions = Plotly.NET.CSharp.GenericChartExtensions;

namespace StepAudio2.Lab.Interactive.Charts;

/// <summary>
/// <see cref="IChartRenderer"/> built with Plotly.NET 6 (through Plotly.NET.CSharp): the chart is composed by Plotly.NET
/// and handed back as figure JSON, never as Plotly.NET's own HTML (which would point at a CDN).
/// </summary>
public sealed class PlotlyNetChartRenderer : IChartRenderer
{
    /// <inheritdoc />
    public string Name => $"Plotly.NET {typeof(GenericChart).Assembly.GetName().Version} (FSharp.Core {typeof(Microsoft.FSharp.Core.FSharpOption<>).Assembly.GetName().Version})";

    /// <inheritdoc />
    public string Heatmap(float[] z, int rows, int cols, double[]? x, double[]? y, string title, string xTitle, string yTitle, string colorscale)
    {
        ArgumentNullException.ThrowIfNull(z);
        if ((long)rows * cols != z.Length) throw new ArgumentException($"z has {z.Length} values, expected {rows}×{cols}");
        // non-finite cells become NaN, which Plotly.NET writes as JSON null: plotly draws them as gaps
        var matrix = Enumerable.Range(0, rows).Select(r => z.AsSpan(r * cols, cols).ToArray().Select(v => float.IsFinite(v) ? v : double.NaN));
        var chart = CSharpChart.Heatmap<double, double, double, string>(
            zData: matrix,
            X: x ?? Enumerable.Range(0, cols).Select(i => (double)i).ToArray(),
            Y: y ?? Enumerable.Range(0, rows).Select(i => (double)i).ToArray(),
            ColorScale: Colorscale(colorscale));
        return GenericChart.toFigureJson(Style(chart, title, xTitle, yTitle));
    }

    /// <inheritdoc />
    public string Line(double[] x, double[][] ys, string[] names, string title, string xTitle, string yTitle)
    {
        ArgumentNullException.ThrowIfNull(ys);
        if (names.Length != ys.Length) throw new ArgumentException($"{ys.Length} series but {names.Length} names");
        var lines = ys.Select((s, i) => CSharpChart.Line<double, double, string>(x: x, y: s, Name: names[i]));
        return GenericChart.toFigureJson(Style(CSharpChart.Combine(lines), title, xTitle, yTitle));
    }

    private static GenericChart Style(GenericChart chart, string title, string xTitle, string yTitle)
    {
        chart = Plotly.NET.Chart.withTitle(title, null).Invoke(chart); // F# optional TitleFont: null is None
        chart = ChartExtensions.WithXAxisStyle<double, double, string>(chart, TitleText: xTitle);
        return ChartExtensions.WithYAxisStyle<double, double, string>(chart, TitleText: yTitle);
    }

    private static StyleParam.Colorscale Colorscale(string name) => name switch
    {
        "Viridis" => StyleParam.Colorscale.Viridis,
        "Cividis" => StyleParam.Colorscale.Cividis,
        "Greens" => StyleParam.Colorscale.Greens,
        "RdBu" => StyleParam.Colorscale.RdBu,
        "Greys" => StyleParam.Colorscale.Greys,
        "Hot" => StyleParam.Colorscale.Hot,
        "Electric" => StyleParam.Colorscale.Electric,
        _ => throw new ArgumentException($"unknown colorscale '{name}' (Viridis, Cividis, Greens, RdBu, Greys, Hot, Electric)", nameof(name)),
    };
}
