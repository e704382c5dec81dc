using System.Text.Json.Nodes;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A tensor reduced to something drawable: rank ≤ 1 (or a single row) as a line, otherwise folded to 2-D
/// ([product of leading dims, last dim], as <see cref="DiffMap"/> does) and mean-pooled to at most <c>maxSide</c> per side.
/// </summary>
public sealed record TensorPlotData(string Name, int[] Shape, float[] Values, int Rows, int Cols, int RowStride, int ColStride)
{
    /// <summary>True when the plot is a line (one row).</summary>
    public bool IsLine => Rows == 1;

    /// <summary>Folds and pools <paramref name="t"/> (NaN/Inf cells stay non-finite so they show as gaps).</summary>
    public static TensorPlotData Of(string name, Tensor t, int maxSide = 128, int maxLine = 2000)
    {
        ArgumentNullException.ThrowIfNull(t);
        var v = t.ToDoubleArray();
        int cols0 = t.Rank == 0 ? 1 : t.Shape[^1];
        int rows0 = cols0 == 0 ? 0 : (int)(v.LongLength / cols0);
        if (rows0 <= 1) { rows0 = 1; cols0 = v.Length; }
        int side = rows0 == 1 ? maxLine : maxSide;
        int rs = Math.Max(1, (rows0 + maxSide - 1) / maxSide), cs = Math.Max(1, (cols0 + side - 1) / side);
        int rows = (rows0 + rs - 1) / rs, cols = cols0 == 0 ? 0 : (cols0 + cs - 1) / cs;
        var sum = new double[rows * cols];
        var n = new int[rows * cols];
        for (int r = 0; r < rows0; r++)
            for (int c = 0; c < cols0; c++)
            {
                int cell = (r / rs) * cols + c / cs;
                sum[cell] += v[(long)r * cols0 + c];
                n[cell]++;
            }
        var values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++) values[i] = n[i] == 0 ? float.NaN : (float)(sum[i] / n[i]);
        return new TensorPlotData(name, t.Shape.ToArray(), values, rows, cols, rs, cs);
    }

    /// <summary>Title naming the shape and any pooling.</summary>
    public string Title => $"{Name} {Tensor.ShapeString(Shape)}{(RowStride > 1 || ColStride > 1 ? $", mean over {RowStride}×{ColStride} cells" : "")}";

    /// <summary>Axis title of the columns (the last dimension, pooled or not).</summary>
    public string ColumnTitle => IsLine ? $"index{(ColStride > 1 ? $" / {ColStride}" : "")}" : $"last dim{(ColStride > 1 ? $" / {ColStride}" : "")}";

    /// <summary>Axis title of the rows (the folded leading dimensions).</summary>
    public string RowTitle => IsLine ? "value" : $"leading dims{(RowStride > 1 ? $" / {RowStride}" : "")}";
}

/// <summary>Tensor plots: a plotly heatmap/line (plain JSON, no chart library) and a script-free PNG heatmap.</summary>
public static class TensorPlotView
{
    /// <summary>The figure of <paramref name="t"/> folded and pooled by <see cref="TensorPlotData.Of"/> (see <see cref="Figure(TensorPlotData, string, string?, string?)"/>).</summary>
    public static PlotlyFigure Figure(string name, Tensor t, string id, int maxSide = 128, string? xTitle = null, string? yTitle = null) =>
        Figure(TensorPlotData.Of(name, t, maxSide), id, xTitle, yTitle);

    /// <summary>
    /// The figure of <paramref name="d"/>: a line for one row, else a heatmap with rows top-down, in diverging colours centred
    /// on 0 when the values change sign (positive red) and in Viridis when they do not (a filter bank, probabilities, |a−b|).
    /// The axis titles default to the folding (<see cref="TensorPlotData.ColumnTitle"/>, <see cref="TensorPlotData.RowTitle"/>).
    /// </summary>
    public static PlotlyFigure Figure(TensorPlotData d, string id, string? xTitle = null, string? yTitle = null)
    {
        var layout = PlotlyFigure.BaseLayout(d.Title, xTitle ?? d.ColumnTitle, yTitle ?? d.RowTitle);
        if (d.IsLine)
        {
            var trace = new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines", ["x"] = Html.Array(Enumerable.Range(0, d.Cols).Select(i => (double)i * d.ColStride), 7),
                ["y"] = Html.Array(d.Values.Select(v => (double)v)),
            };
            return new PlotlyFigure(id, new JsonArray(trace), layout);
        }
        ((JsonObject)layout["yaxis"]!)["autorange"] = "reversed";
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in d.Values) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        bool diverging = lo < 0 && hi > 0;
        var heatmap = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(d.Values, d.Rows, d.Cols), colorscale: diverging ? "RdBu" : "Viridis",
            hover: "row %{y} col %{x}<br>%{z:.4g}<extra></extra>");
        if (diverging)
        {
            heatmap["zmid"] = 0;
            heatmap["reversescale"] = true; // plotly's RdBu runs red → blue from low to high; positive values read as red
        }
        return new PlotlyFigure(id, new JsonArray(heatmap), layout);
    }

    /// <summary>A PNG heatmap (one pixel per cell, scaled up, rows top-down, non-finite cells red) in an <c>&lt;img&gt;</c> data URI.</summary>
    public static string Image(TensorPlotData d, int maxWidthPx = 512)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in d.Values) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        int w = Math.Max(1, d.Cols), h = Math.Max(1, d.Rows);
        var rgb = new byte[(long)w * h * 3];
        for (int r = 0; r < d.Rows; r++)
            for (int c = 0; c < d.Cols; c++)
            {
                float v = d.Values[r * d.Cols + c];
                var (R, G, B) = float.IsFinite(v) ? SpectrogramView.Ramp(hi > lo ? (v - lo) / (hi - lo) : 0.5) : ((byte)255, (byte)0, (byte)0);
                long o = ((long)r * w + c) * 3;
                rgb[o] = R; rgb[o + 1] = G; rgb[o + 2] = B;
            }
        int scale = Math.Max(1, Math.Min(8, maxWidthPx / w));
        return $"<img class=\"tensor-png\" alt=\"{Html.Esc(d.Title)}\" title=\"{Html.Esc(d.Title)}: {Html.Num(lo)} … {Html.Num(hi)}\" width=\"{w * scale}\" " +
               $"height=\"{Math.Min(h * scale, 512)}\" style=\"image-rendering:pixelated\" src=\"data:image/png;base64,{Convert.ToBase64String(PngImage.EncodeRgb(w, h, rgb))}\">\n";
    }
}
