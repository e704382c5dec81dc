namespace StepAudio2.Lab.Views;

/// <summary>
/// A chart library behind primitive-array methods, each returning a plotly figure as JSON (<c>{"data": [...], "layout": {...}}</c>).
/// Primitive types only so an implementation can live in another AssemblyLoadContext (the notebook extension loads its
/// Plotly.NET bridge that way: Plotly.NET 6 needs a newer FSharp.Core than the .NET Interactive kernel ships).
/// </summary>
public interface IChartRenderer
{
    /// <summary>Library and version that draws the figures (for the load banner).</summary>
    string Name { get; }

    /// <summary>A heatmap of row-major <paramref name="z"/> [rows, cols]; <paramref name="x"/>/<paramref name="y"/> label columns/rows (null: indices).</summary>
    string Heatmap(float[] z, int rows, int cols, double[]? x, double[]? y, string title, string xTitle, string yTitle, string colorscale);

    /// <summary>One line per series of <paramref name="ys"/> over the shared <paramref name="x"/>, named by <paramref name="names"/>.</summary>
    string Line(double[] x, double[][] ys, string[] names, string title, string xTitle, string yTitle);
}
