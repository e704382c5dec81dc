using System.Text;
using Microsoft.DotNet.Interactive;
using Microsoft.DotNet.Interactive.Commands;
using Microsoft.DotNet.Interactive.CSharp;
using Microsoft.DotNet.Interactive.Documents;
using Microsoft.DotNet.Interactive.Documents.Jupyter;
using Microsoft.DotNet.Interactive.Events;
using StepAudio2.Lab.Tensors;
using KernelInfo = Microsoft.DotNet.Interactive.Documents.KernelInfo;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>What one code cell produced: its id, source, whether it failed (and why), and every formatted output.</summary>
public sealed record CellRun(string Id, string Code, bool Skipped, string? Error, IReadOnlyList<(string MimeType, string Value)> Outputs)
{
    public string Html => string.Join("\n", Outputs.Where(o => o.MimeType == "text/html").Select(o => o.Value));
}

/// <summary>
/// Runs a notebook's code cells in-process: a CompositeKernel with a CSharpKernel, the extension loaded by the host
/// instead of through NuGet (the cells that fetch the package from the local feed are skipped).
/// </summary>
public static class NotebookRunner
{
    /// <summary>Cells that load the package from the local feed: the host has loaded the extension already.</summary>
    public static bool IsPackageLoadCell(string code) =>
        code.Contains("artifacts/packages", StringComparison.Ordinal) || code.Contains("#r \"nuget: StepAudio2.Lab.Interactive", StringComparison.Ordinal);

    public static InteractiveDocument Read(string path)
    {
        var kernels = new KernelInfoCollection { new KernelInfo("csharp", "C#", ["c#", "C#"]) };
        return Notebook.Parse(File.ReadAllText(path), kernels);
    }

    /// <summary>Runs every code cell; <paramref name="edit"/> (cell id, source → source) may change a cell first, e.g. a parameter.</summary>
    public static async Task<List<CellRun>> RunAsync(string path, Func<string, string, string>? edit = null)
    {
        var document = Read(path);
        using var csharp = new CSharpKernel().UseKernelHelpers().UseValueSharing();
        using var kernel = new CompositeKernel { csharp };
        kernel.DefaultKernelName = csharp.Name;
        csharp.AddAssemblyReferences([typeof(Lab).Assembly.Location, typeof(Tensor).Assembly.Location]);
        await new StepLabKernelExtension().OnLoadAsync(kernel);

        var runs = new List<CellRun>();
        foreach (var cell in document.Elements.Where(e => e.KernelName is "csharp" or "C#"))
        {
            if (IsPackageLoadCell(cell.Contents))
            {
                runs.Add(new CellRun(cell.Id ?? "", cell.Contents, true, null, []));
                continue;
            }
            var code = edit is null ? cell.Contents : edit(cell.Id ?? "", cell.Contents);
            var result = await kernel.SendAsync(new SubmitCode(code, csharp.Name));
            var outputs = new List<(string, string)>();
            var errors = new StringBuilder();
            foreach (var e in result.Events)
            {
                switch (e)
                {
                    case ErrorProduced err: // a DisplayEvent too: check it first
                        errors.Append(err.Message).Append('\n');
                        break;
                    case DisplayEvent d:
                        outputs.AddRange(d.FormattedValues.Select(v => (v.MimeType, v.Value)));
                        break;
                    case CommandFailed f:
                        errors.Append(f.Message).Append(f.Exception).Append('\n');
                        break;
                }
            }
            runs.Add(new CellRun(cell.Id ?? "", code, false, errors.Length == 0 ? null : errors.ToString(), outputs));
        }
        return runs;
    }
}
