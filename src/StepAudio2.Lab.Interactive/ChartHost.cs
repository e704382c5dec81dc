using System.Reflection;
using System.Runtime.Loader;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// Finds the <c>charts/</c> folder shipped with the extension and loads the Plotly.NET bridge from it into its own
/// <see cref="AssemblyLoadContext"/>: Plotly.NET 6 needs FSharp.Core ≥ 10.1, while the dotnet-interactive kernel already has
/// its FSharp.Core 10.0 in the default context (and the user's tool must not be patched). Also the source of the inline
/// plotly.js bundle (read from Plotly.NET.dll's resource as bytes, so it works even when the bridge cannot load).
/// </summary>
public static class ChartHost
{
    /// <summary>Environment variable that points at a charts folder explicitly (wins over the search beside the assembly).</summary>
    public const string ChartsDirVariable = "STEPLAB_CHARTS_DIR";

    /// <summary>Assembly and type of the bridge (the only reflection in the extension: a type from another load context).</summary>
    private const string BridgeAssembly = "StepAudio2.Lab.Interactive.Charts", BridgeType = "StepAudio2.Lab.Interactive.Charts.PlotlyNetChartRenderer";

    private static readonly Lazy<string> Dir = new(FindChartsDirectory);
    private static readonly Lazy<(ChartLoadContext Context, IChartRenderer Renderer)> Bridge = new(LoadBridge);
    private static readonly Lazy<string> Js = new(() => PlotlyScript.ReadFromAssembly(Path.Combine(Dir.Value, "Plotly.NET.dll")));

    /// <summary>The charts folder (throws <see cref="DirectoryNotFoundException"/> naming every place searched).</summary>
    public static string ChartsDirectory => Dir.Value;

    /// <summary>The Plotly.NET renderer, loaded on first use.</summary>
    public static IChartRenderer Renderer => Bridge.Value.Renderer;

    /// <summary>The load context holding Plotly.NET and FSharp.Core 10.1 (loads the bridge on first use).</summary>
    public static AssemblyLoadContext LoadContext => Bridge.Value.Context;

    /// <summary>The plotly.js source embedded in Plotly.NET.dll.</summary>
    public static string PlotlyJs => Js.Value;

    /// <summary>
    /// Loads the bridge and draws one throw-away chart on a background thread: the first Plotly.NET chart costs seconds
    /// (F# and Plotly.NET JIT), which otherwise lands on the notebook's first plot. Failures surface on first real use.
    /// </summary>
    public static Task WarmUpAsync() => Task.Run(async () =>
    {
        try
        {
            _ = PlotlyOnPage.PackedBootstrap.Length; // the first chart output of the session carries it
            // The Plotly.NET bridge (its own load context, FSharp.Core, JIT) is needed only by the tensor plots; loading it
            // a few seconds later keeps both cores free for the notebook's first cells, which come right after the load.
            await Task.Delay(WarmUpDelay);
            _ = Renderer.Heatmap([0f, 1f], 1, 2, null, null, "", "", "", "Viridis");
        }
        catch (Exception e) when (e is DirectoryNotFoundException or FileNotFoundException or FileLoadException or BadImageFormatException or InvalidOperationException)
        {
            // reported by the view that needs the chart (LabHtml.TensorBody explains it next to a PNG)
        }
    });

    /// <summary>How long after the extension loads the Plotly.NET bridge is warmed up in the background.</summary>
    public static TimeSpan WarmUpDelay { get; set; } = TimeSpan.FromSeconds(4);

    private static string FindChartsDirectory()
    {
        var candidates = new List<string>();
        var env = Environment.GetEnvironmentVariable(ChartsDirVariable);
        if (!string.IsNullOrEmpty(env)) candidates.Add(env);
        var here = Path.GetDirectoryName(typeof(ChartHost).Assembly.Location);
        if (!string.IsNullOrEmpty(here))
        {
            candidates.Add(Path.Combine(here, "charts"));
            // loaded from the package's lib/net10.0/: the bridge sits in interactive-extensions/dotnet/charts/
            candidates.Add(Path.GetFullPath(Path.Combine(here, "..", "..", "interactive-extensions", "dotnet", "charts")));
        }
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, BridgeAssembly + ".dll")) && File.Exists(Path.Combine(c, "Plotly.NET.dll"))) return c;
        throw new DirectoryNotFoundException($"StepAudio2.Lab charts folder ({BridgeAssembly}.dll + Plotly.NET.dll) not found; searched: {string.Join(", ", candidates)}");
    }

    private static (ChartLoadContext, IChartRenderer) LoadBridge()
    {
        var context = new ChartLoadContext(Dir.Value);
        var assembly = context.LoadFromAssemblyPath(Path.Combine(Dir.Value, BridgeAssembly + ".dll"));
        var type = assembly.GetType(BridgeType, throwOnError: true)!;
        if (Activator.CreateInstance(type) is not IChartRenderer renderer)
            throw new InvalidOperationException($"{BridgeType} does not implement the default context's {typeof(IChartRenderer).FullName} (a second StepAudio2.Lab.dll in {Dir.Value}?)");
        return (context, renderer);
    }

    /// <summary>
    /// Resolves what the charts folder holds (Plotly.NET, FSharp.Core 10.1, …) from the folder and everything else — notably
    /// StepAudio2.Lab, where <see cref="IChartRenderer"/> lives — from the default context, so the interface is shared.
    /// </summary>
    private sealed class ChartLoadContext(string directory) : AssemblyLoadContext("StepAudio2.Lab.Charts")
    {
        protected override Assembly? Load(AssemblyName name)
        {
            if (name.Name is null || name.Name.StartsWith("StepAudio2.Lab", StringComparison.Ordinal) && name.Name != BridgeAssembly) return null;
            var path = Path.Combine(directory, name.Name + ".dll");
            return File.Exists(path) ? LoadFromAssemblyPath(path) : null;
        }
    }
}
