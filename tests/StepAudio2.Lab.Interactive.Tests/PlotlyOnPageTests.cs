using System.Text.RegularExpressions;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Events;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// plotly.js once per kernel session, in a real C# kernel: the first chart output carries it, later ones do not, the
/// carrying cell run again carries it again (its output replaces the one that had it), and <c>Lab.ReloadPlotly()</c>
/// makes the next chart output carry it.
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class PlotlyOnPageTests
{
    private static int Bundles(string html) => Regex.Matches(html, Regex.Escape("if(window.Plotly)return;")).Count;

    [Fact]
    public async Task The_bundle_comes_once_per_session_and_again_with_its_cell()
    {
        using var csharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        using var kernel = new CompositeKernel { csharp };
        kernel.DefaultKernelName = csharp.Name;
        csharp.AddAssemblyReferences([typeof(Lab).Assembly.Location, typeof(Tensor).Assembly.Location]);
        await new StepLabKernelExtension().OnLoadAsync(kernel);

        async Task<List<string>> Run(string code)
        {
            var result = await kernel.SendAsync(new SubmitCode(code, csharp.Name));
            Assert.DoesNotContain(result.Events, e => e is CommandFailed or ErrorProduced);
            return result.Events.OfType<DisplayEvent>().SelectMany(d => d.FormattedValues).Where(v => v.MimeType == "text/html").Select(v => v.Value).ToList();
        }

        const string first = "using StepAudio2.Lab.Interactive;\ndisplay(Lab.Plot.Line(new double[] { 1, 2, 3 }));\nLab.Plot.Line(new double[] { 3, 2, 1 })";
        const string other = "Lab.Plot.Line(new double[] { 0, 1 })";
        var a = await Run(first);
        Assert.Equal([1, 0], a.Select(Bundles)); // two charts in one cell: the first output carries it
        Assert.Contains("steplabInflate(", a[0]);
        Assert.Equal([0], (await Run(other)).Select(Bundles));
        Assert.Equal([1, 0], (await Run(first)).Select(Bundles)); // the carrying cell again: its new output must carry it
        Assert.Equal([0], (await Run(other)).Select(Bundles));
        Assert.Equal([1], (await Run("Lab.ReloadPlotly();\n" + other)).Select(Bundles)); // the output that had it was cleared
        Assert.Equal([0], (await Run(other)).Select(Bundles));
        // every chart output draws through the loader whether or not it carries the bundle
        Assert.All(await Run(other), h => Assert.Contains("script.plotly-figure:not([data-drawn])", h));
    }
}
