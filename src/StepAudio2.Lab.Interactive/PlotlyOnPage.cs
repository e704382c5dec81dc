using System.Runtime.CompilerServices;
using Microsoft.DotNet.Interactive;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// plotly.js once per notebook page: the first chart output of a kernel session carries the bundle (deflated, 1.45 MB),
/// every later one only its figure JSON and a loader that uses <c>window.Plotly</c>. A notebook page (Jupyter, its
/// exported HTML, VS Code's output webview) runs the outputs' scripts in one window, in order, so the later charts find it.
/// Outside a kernel (no invocation context: tests, <see cref="HtmlView.Html"/>) every fragment carries its own bundle.
/// </summary>
public static class PlotlyOnPage
{
    private static readonly ConditionalWeakTable<Kernel, object> Sent = new();
    private static readonly Lazy<string> Packed = new(() =>
    {
        var (b64, length) = HtmlFragment.Pack(ChartHost.PlotlyJs);
        return HtmlFragment.PackedBootstrap(b64, length);
    });

    /// <summary>The bootstrap script of the packed bundle (computed once, on first use or by the warm-up).</summary>
    public static string PackedBootstrap => Packed.Value;

    /// <summary>The bundle for the output being formatted now, or null when this kernel session has sent it already.</summary>
    public static string? BootstrapForThisOutput()
    {
        var kernel = CurrentKernel();
        if (kernel is null) return PackedBootstrap;
        bool first = false;
        Sent.GetValue(kernel, _ => { first = true; return new object(); });
        return first ? PackedBootstrap : null;
    }

    /// <summary>Makes the next chart output of this kernel session carry the bundle again (the output that had it was cleared).</summary>
    public static void Reset()
    {
        if (CurrentKernel() is { } kernel) Sent.Remove(kernel);
    }

    private static Kernel? CurrentKernel()
    {
        var handling = KernelInvocationContext.Current?.HandlingKernel;
        return handling?.RootKernel ?? handling;
    }
}
