using System.Runtime.CompilerServices;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// plotly.js once per notebook page: the first chart output of a kernel session carries the bundle (deflated, 1.34 MB),
/// every later one only its figure JSON and a loader that uses <c>window.Plotly</c>. A notebook page (Jupyter, its
/// exported HTML, VS Code's output webview) runs the outputs' scripts in one window, in order, so the later charts find it.
/// Outside a kernel (no invocation context: tests, <see cref="HtmlView.Html"/>) every fragment carries its own bundle.
/// A cell run again with the same code gets the bundle again when it was that cell which carried it: its new output
/// replaces the old one, and a notebook saved afterwards must still hold the bundle.
/// </summary>
public static class PlotlyOnPage
{
    /// <summary>Per kernel: the submission whose output carried the bundle (the command, and its code).</summary>
    private sealed class Carrier
    {
        public KernelCommand? Command;
        public string? Code;
    }

    private static readonly ConditionalWeakTable<Kernel, Carrier> Sent = new();
    private static readonly Lazy<string> Packed = new(() =>
    {
        var (text, deflated, length) = HtmlFragment.Pack(ChartHost.PlotlyJs);
        return HtmlFragment.PackedBootstrap(text, deflated, length);
    });

    /// <summary>The bootstrap script of the packed bundle (computed once, on first use or by the warm-up).</summary>
    public static string PackedBootstrap => Packed.Value;

    /// <summary>The bundle for the output being formatted now, or null when this kernel session has sent it already.</summary>
    public static string? BootstrapForThisOutput()
    {
        var kernel = CurrentKernel();
        if (kernel is null) return PackedBootstrap;
        var command = RootCommand();
        string? code = (command as SubmitCode)?.Code;
        lock (Sent)
        {
            if (Sent.TryGetValue(kernel, out var carrier))
            {
                // sent by an earlier output: again only when the carrying cell runs again (same code, a new submission)
                bool rerun = code is not null && code == carrier.Code && !ReferenceEquals(command, carrier.Command);
                if (!rerun) return null;
            }
            else
            {
                carrier = new Carrier();
                Sent.Add(kernel, carrier);
            }
            carrier.Command = command;
            carrier.Code = code;
            return PackedBootstrap;
        }
    }

    /// <summary>Makes the next chart output of this kernel session carry the bundle again (the output that had it was cleared).</summary>
    public static void Reset()
    {
        if (CurrentKernel() is { } kernel)
            lock (Sent) Sent.Remove(kernel);
    }

    /// <summary>The submission being run (a SubmitCode the kernel split into parts has the user's cell as its root).</summary>
    private static KernelCommand? RootCommand()
    {
        var command = KernelInvocationContext.Current?.Command;
        while (command?.Parent is { } parent) command = parent;
        return command;
    }

    private static Kernel? CurrentKernel()
    {
        var handling = KernelInvocationContext.Current?.HandlingKernel;
        return handling?.RootKernel ?? handling;
    }
}
