using System.Runtime.Loader;
using System.Text.Json;
using Microsoft.DotNet.Interactive.Formatting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>Plotly.NET 6 charts drawn while the default context holds the kernel's FSharp.Core 10.0; formatters and fragments.</summary>
[Collection(NotebookCollection.Name)]
public sealed class ChartTests(KernelFSharpCore fsharp)
{
    [Fact]
    public void Plotly_net_draws_from_its_own_context_while_the_default_one_has_FSharp_Core_10_0()
    {
        Assert.Equal(10, fsharp.Assembly.GetName().Version!.Major);
        Assert.Equal(0, fsharp.Assembly.GetName().Version!.Minor);

        var json = ChartHost.Renderer.Heatmap([1, 2, 3, 4, 5, 6], 2, 3, null, null, "t", "x", "y", "Viridis");
        using var doc = JsonDocument.Parse(json);
        var trace = doc.RootElement.GetProperty("data")[0];
        Assert.Equal("heatmap", trace.GetProperty("type").GetString());
        Assert.Equal(6.0, trace.GetProperty("z")[1][2].GetDouble());
        Assert.Equal("t", doc.RootElement.GetProperty("layout").GetProperty("title").GetProperty("text").GetString());

        var chartFs = ChartHost.LoadContext.Assemblies.Single(a => a.GetName().Name == "FSharp.Core").GetName().Version!;
        Assert.True(chartFs >= new Version(10, 1), $"bridge FSharp.Core {chartFs}");
        // the default context still has exactly the kernel's FSharp.Core and no Plotly.NET
        Assert.Same(fsharp.Assembly, AssemblyLoadContext.Default.Assemblies.Single(a => a.GetName().Name == "FSharp.Core"));
        Assert.DoesNotContain(AssemblyLoadContext.Default.Assemblies, a => a.GetName().Name == "Plotly.NET");
        Assert.Contains("Plotly.NET 6.0.0", ChartHost.Renderer.Name);
    }

    [Fact]
    public void Line_chart_has_one_scatter_per_series()
    {
        var c = Lab.Plot.Line([0, 1, 2], [[1, 2, 3], [3, 2, 1]], ["up", "down"], "lines");
        using var doc = JsonDocument.Parse(c.Json);
        var data = doc.RootElement.GetProperty("data");
        Assert.Equal(2, data.GetArrayLength());
        Assert.Equal("scatter", data[0].GetProperty("type").GetString());
        Assert.Equal("down", data[1].GetProperty("name").GetString());
        Assert.Equal(1.0, data[1].GetProperty("y")[2].GetDouble());
    }

    [Fact]
    public void Tensor_heatmap_is_pooled_and_keeps_values()
    {
        // [4, 300]: rows kept, columns mean-pooled by 3 to 100
        var v = new float[4 * 300];
        for (int i = 0; i < v.Length; i++) v[i] = i % 300;
        var chart = Lab.Plot.Heatmap(Tensor.FromArray(v, 4, 300), "ramp");
        using var doc = JsonDocument.Parse(chart.Json);
        var z = doc.RootElement.GetProperty("data")[0].GetProperty("z");
        Assert.Equal(4, z.GetArrayLength());
        Assert.Equal(100, z[0].GetArrayLength());
        Assert.Equal(1.0, z[2][0].GetDouble(), 6);      // mean of 0, 1, 2
        Assert.Equal(298.0, z[3][99].GetDouble(), 6);   // mean of 297, 298, 299
    }

    [Fact]
    public void Formatter_renders_a_tensor_as_stats_and_plot()
    {
        LabFormatters.Register();
        var html = Formatter.ToDisplayString(Tensor.FromArray(new float[] { 1, float.NaN, 3, 5 }, 2, 2), HtmlFormatter.MimeType);
        Assert.Contains("<table class=\"stats\">", html);
        Assert.Contains("<td class=\"bad\">1</td>", html); // one NaN
        Assert.Single(NotebookTests.Figures(html));
        Assert.Contains("if(window.Plotly)return;", html);
        Assert.StartsWith("<div class=\"steplab\"><style>.steplab table", html);
    }

    [Fact]
    public void Fragment_without_figures_carries_no_script()
    {
        var html = Lab.Png("ramp", Tensor.FromArray(new float[] { 0, 1, 2, 3 }, 2, 2)).Html;
        Assert.Contains("data:image/png;base64,iVBOR", html);
        Assert.DoesNotContain("<script", html);
    }

    [Fact]
    public void Bootstrap_hides_amd_define_and_restores_it()
    {
        var s = HtmlFragment.PlotlyBootstrap("window.Plotly={};");
        Assert.Matches(@"^<script>\(function\(\)\{if\(window\.Plotly\)return;var d=window\.define", s);
        Assert.True(s.IndexOf("window.define=undefined", StringComparison.Ordinal) < s.IndexOf("window.Plotly={};", StringComparison.Ordinal));
        Assert.Contains("finally{window.define=d;", s);
    }

    [Fact]
    public void Lab_finds_the_bundled_data()
    {
        Assert.True(File.Exists(Path.Combine(Lab.TinyCheckpoint, "config.json")));
        Assert.True(File.Exists(Lab.TinyDump("audio-short")));
        Assert.Equal(Path.GetFullPath(TestPaths.SharedAudio), Path.GetDirectoryName(Lab.SharedAudio()));
        Assert.Matches(@"^StepAudio2\.Lab \S+ loaded: cpu backend, (AVX-512|AVX2\+FMA|AVX|scalar), \d+ threads", Lab.EngineInfo);
    }

    [Fact]
    public void Unsupported_values_are_refused_by_name()
    {
        var e = Assert.Throws<ArgumentException>(() => Lab.Show(DateTime.Now));
        Assert.Contains("System.DateTime", e.Message);
        Assert.Contains("SpectrogramData", e.Message);
    }
}
