using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>Statistics of one tensor: dtype, shape, min/max/mean/std over finite values, NaN and Inf counts.</summary>
public sealed record TensorStats(DType DType, int[] Shape, long Count, double Min, double Max, double Mean, double Std, long NaN, long Inf)
{
    /// <summary>Computes the statistics in double precision (integers and bools widened; empty tensors give NaN stats).</summary>
    public static TensorStats Of(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        var v = t.ToDoubleArray();
        long nan = 0, inf = 0, n = 0;
        double min = double.PositiveInfinity, max = double.NegativeInfinity, sum = 0;
        foreach (var x in v)
        {
            if (double.IsNaN(x)) { nan++; continue; }
            if (double.IsInfinity(x)) { inf++; continue; }
            n++;
            sum += x;
            if (x < min) min = x;
            if (x > max) max = x;
        }
        double mean = n == 0 ? double.NaN : sum / n, ss = 0;
        // two-pass variance: one pass of Σx² loses digits on activations with a large mean
        foreach (var x in v) if (double.IsFinite(x)) ss += (x - mean) * (x - mean);
        return new TensorStats(t.DType, t.Shape.ToArray(), v.LongLength, n == 0 ? double.NaN : min, n == 0 ? double.NaN : max,
            mean, n == 0 ? double.NaN : Math.Sqrt(ss / n), nan, inf);
    }

    public string ShapeText => Tensor.ShapeString(Shape);
}

/// <summary>Renders <see cref="TensorStats"/> as a small HTML table.</summary>
public static class TensorSummaryView
{
    /// <summary>A one-row table: name, dtype, shape, min, max, mean, std, NaN, Inf.</summary>
    public static string Render(string name, TensorStats s) =>
        "<table class=\"stats\"><tr><th>name</th><th>dtype</th><th>shape</th><th>min</th><th>max</th><th>mean</th><th>std</th><th>NaN</th><th>Inf</th></tr>" +
        Row(name, s) + "</table>\n";

    /// <summary>One table row of the same columns.</summary>
    public static string Row(string name, TensorStats s) =>
        $"<tr><td class=\"path\">{Html.Esc(name)}</td><td>{s.DType}</td><td>{Html.Esc(s.ShapeText)}</td><td>{Html.Num(s.Min)}</td><td>{Html.Num(s.Max)}</td>" +
        $"<td>{Html.Num(s.Mean)}</td><td>{Html.Num(s.Std)}</td><td{(s.NaN > 0 ? " class=\"bad\"" : "")}>{s.NaN}</td><td{(s.Inf > 0 ? " class=\"bad\"" : "")}>{s.Inf}</td></tr>";
}
