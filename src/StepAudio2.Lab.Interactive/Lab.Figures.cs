using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

public static partial class Lab
{
    /// <summary>One plotly figure of the core views, drawn by the extension's chart host (plotly.js inline, offline).</summary>
    public static Chart Figure(PlotlyFigure figure, int heightPx = 360) => new(figure, heightPx);

    /// <summary>Figures that belong together in one output, so that the page carries plotly.js once for them.</summary>
    public static HtmlView Figures(int heightPx, params PlotlyFigure[] figures) =>
        new(HtmlFragment.Render(string.Concat(figures.Select(f => f.ToHtml(heightPx))), () => ChartHost.PlotlyJs));

    /// <summary>A plain table (header row, escaped cells, invariant numbers) in the extension's styles (<see cref="TableView"/>).</summary>
    public static HtmlView Table(string[] columns, IEnumerable<object[]> rows) => new(HtmlFragment.Render(TableView.Render(columns, rows), null));
}
