using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>The core-library view additions the notebook fragments rely on.</summary>
public sealed class CoreViewTests
{
    [Fact]
    public void Scoped_css_prefixes_every_selector_and_drops_page_rules()
    {
        var css = ReportPage.ScopedCss(".steplab");
        Assert.Contains(".steplab td,.steplab th{", css);
        Assert.Contains(".steplab .tok.speech{", css);
        Assert.DoesNotContain("body{", css);
        Assert.All(css.Split('}', StringSplitOptions.RemoveEmptyEntries), rule => Assert.StartsWith(".steplab ", rule));
    }

    [Fact]
    public void Trace_explorer_rows_expand_to_a_tensor_picture()
    {
        var trace = new Trace();
        trace.Record("encoder.conv1", Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 1, 2, 3));
        trace.Record("adapter", Tensor.FromArray(new float[] { 7, 8 }, 2));
        var html = TraceExplorerView.RenderWithTensors(trace);
        Assert.Equal(2, html.Split("<summary>tensor view</summary><img class=\"tensor-png\"").Length - 1);
        Assert.Contains("alt=\"encoder.conv1 [1, 2, 3]\"", html);
        Assert.DoesNotContain("tensor view", TraceExplorerView.Render(TraceExplorerView.Entries(trace)));
    }

    [Fact]
    public void Tensor_plot_data_folds_leading_dims_and_treats_vectors_as_lines()
    {
        var d = TensorPlotData.Of("x", Tensor.FromArray(Enumerable.Range(0, 24).Select(i => (float)i).ToArray(), 2, 3, 4));
        Assert.Equal((6, 4, false), (d.Rows, d.Cols, d.IsLine));
        Assert.Equal(23f, d.Values[^1]);
        var line = TensorPlotData.Of("v", Tensor.FromArray(new float[] { 1, 2, 3 }, 3));
        Assert.Equal((1, 3, true), (line.Rows, line.Cols, line.IsLine));
    }
}
