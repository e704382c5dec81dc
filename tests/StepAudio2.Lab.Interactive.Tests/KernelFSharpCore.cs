using System.Reflection;
using System.Runtime.Loader;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// Puts FSharp.Core 10.0 into the default load context, as the dotnet-interactive 1.0.712001 kernel has it, before any
/// chart is drawn: the extension must then draw with Plotly.NET 6 (which needs 10.1) from its own load context.
/// </summary>
public sealed class KernelFSharpCore
{
    public Assembly Assembly { get; }

    public KernelFSharpCore()
    {
        var loaded = AssemblyLoadContext.Default.Assemblies.FirstOrDefault(a => a.GetName().Name == "FSharp.Core");
        Assembly = loaded ?? AssemblyLoadContext.Default.LoadFromAssemblyPath(Path.Combine(AppContext.BaseDirectory, "fsharp-core-10.0", "FSharp.Core.dll"));
    }
}

/// <summary>Tests that touch the process-wide formatter registry or the default context's FSharp.Core run one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NotebookCollection : ICollectionFixture<KernelFSharpCore>
{
    public const string Name = "notebooks";
}
