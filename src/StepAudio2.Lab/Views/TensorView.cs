using System.Text.Json.Nodes;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A tensor folded to 2-D (<c>[product of leading dims, last dim]</c>; a vector is one row) and mean-pooled over finite values
/// so that neither side exceeds a bound: what a heatmap of an activation, a weight or a filter bank draws.
/// </summary>
public sealed record TensorGrid(string Name, int[] Shape, float[] Values, int Rows, int Cols, int RowStride, int ColStride)
{
    /// <summary>Folds and pools <paramref name="t"/>; a cell with no finite value is NaN (drawn as a gap).</summary>
    public static TensorGrid Of(string name, Tensor t, int maxSide = 200)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (maxSide < 1) throw new ArgumentOutOfRangeException(nameof(maxSide), "maxSide must be at least 1");
        var v = t.ToDoubleArray();
        int cols0 = t.Rank == 0 ? 1 : t.Shape[^1];
        int rows0 = cols0 == 0 ? 0 : (int)(v.LongLength / cols0);
        int rs = Math.Max(1, (rows0 + maxSide - 1) / maxSide), cs = Math.Max(1, (cols0 + maxSide - 1) / maxSide);
        int rows = (rows0 + rs - 1) / rs, cols = (cols0 + cs - 1) / cs;
        var sum = new double[rows * cols];
        var count = new int[rows * cols];
        for (int r = 0; r < rows0; r++)
            for (int c = 0; c < cols0; c++)
            {
                double x = v[(long)r * cols0 + c];
                if (!double.IsFinite(x)) continue; // NaN/Inf are counted by TensorStats; a mean with them would hide the rest
                int cell = (r / rs) * cols + c / cs;
                sum[cell] += x;
                count[cell]++;
            }
        var values = new float[rows * cols];
        for (int i = 0; i < values.Length; i++) values[i] = count[i] == 0 ? float.NaN : (float)(sum[i] / count[i]);
        return new TensorGrid(name, t.Shape.ToArray(), values, rows, cols, rs, cs);
    }
}

/// <summary>Tensor heatmap view: any activation or weight as a plotly heatmap (diverging colours centred on 0 when values change sign).</summary>
public static class TensorView
{
    /// <summary>The heatmap of <see cref="TensorGrid.Of"/>; rows top to bottom, axis titles name the folding and pooling.</summary>
    public static PlotlyFigure Heatmap(string name, Tensor t, string id = "tensor", int maxSide = 200, string? xTitle = null, string? yTitle = null) =>
        Heatmap(TensorGrid.Of(name, t, maxSide), id, xTitle, yTitle);

    /// <summary>The heatmap of a prepared grid.</summary>
    public static PlotlyFigure Heatmap(TensorGrid g, string id = "tensor", string? xTitle = null, string? yTitle = null)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var x in g.Values) if (float.IsFinite(x)) { lo = Math.Min(lo, x); hi = Math.Max(hi, x); }
        bool diverging = lo < 0 && hi > 0;
        var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(g.Values, g.Rows, g.Cols), colorscale: diverging ? "RdBu" : "Viridis",
            hover: "row %{y} col %{x}<br>%{z:.4g}<extra></extra>");
        if (diverging)
        {
            trace["zmid"] = 0;
            trace["reversescale"] = true; // plotly's RdBu runs red→blue; positive values read as red
        }
        string pooled = g.RowStride > 1 || g.ColStride > 1 ? $", mean over {g.RowStride}×{g.ColStride} cells" : "";
        var layout = PlotlyFigure.BaseLayout($"{g.Name} {Tensor.ShapeString(g.Shape)}{pooled}",
            xTitle ?? $"last dim{(g.ColStride > 1 ? $" / {g.ColStride}" : "")}",
            yTitle ?? $"leading dims{(g.RowStride > 1 ? $" / {g.RowStride}" : "")}");
        ((JsonObject)layout["yaxis"]!)["autorange"] = "reversed";
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }
}
