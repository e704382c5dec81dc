using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

public static partial class Lab
{
    /// <summary>One plotly figure of the core views, drawn by the extension's chart host (plotly.js inline, offline).</summary>
    public static Chart Figure(PlotlyFigure figure, int heightPx = 360) => new(figure, heightPx);

    /// <summary>Figures that belong together in one output.</summary>
    public static HtmlView Figures(int heightPx, params PlotlyFigure[] figures) =>
        new(string.Concat(figures.Select(f => f.ToHtml(heightPx))));

    /// <summary>
    /// Makes the next chart output carry plotly.js again: needed only when the output that carried it for this kernel
    /// session was cleared (a plot then says "plotly.js is not on this page").
    /// </summary>
    public static void ReloadPlotly() => PlotlyOnPage.Reset();

    /// <summary>A plain table (header row, escaped cells, invariant numbers) in the extension's styles (<see cref="TableView"/>).</summary>
    public static HtmlView Table(string[] columns, IEnumerable<object[]> rows) => new(TableView.Render(columns, rows));
}
