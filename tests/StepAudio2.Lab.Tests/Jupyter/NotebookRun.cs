using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json;

namespace StepAudio2.Lab.Tests.Jupyter;

/// <summary>The notebook collection: run alone (after the parallel tests), since one kernel and Chromium fill both cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class JupyterCollection : ICollectionFixture<NotebookRun>
{
    public const string Name = "Jupyter";
}

/// <summary>
/// One run of <c>scripts/run_notebooks.py</c> over every notebook, shared by the notebook tests: packs the kernel
/// extension into the local feed first (<c>scripts/pack_interactive.sh</c>, when present), then executes each notebook
/// in real Jupyter and renders it in headless Chromium, into <c>artifacts/notebooks/</c>.
/// </summary>
public sealed class NotebookRun
{
    /// <summary>Where the notebooks are: <c>notebooks/</c>, or the folder in <c>STEPLAB_NOTEBOOKS</c> (to try the harness elsewhere).</summary>
    public static string Folder => Environment.GetEnvironmentVariable("STEPLAB_NOTEBOOKS") is { Length: > 0 } f
        ? Path.GetFullPath(f)
        : Path.Combine(TestPaths.RepoRoot, "notebooks");

    /// <summary>Names (file name without <c>.ipynb</c>) of the notebooks, sorted.</summary>
    public static IReadOnlyList<string> Names => Directory.Exists(Folder)
        ? Directory.GetFiles(Folder, "*.ipynb").Select(p => Path.GetFileNameWithoutExtension(p)!).Order(StringComparer.Ordinal).ToList()
        : [];

    public static string Out => Path.Combine(TestPaths.RepoRoot, "artifacts", "notebooks");

    public NotebookRun()
    {
        if (JupyterEnvironment.SkipReason is not null) return;   // every test skips with that reason
        var log = new System.Text.StringBuilder();
        var clock = Stopwatch.StartNew();
        try
        {
            JupyterEnvironment.EnsureInstalled();
            var pack = Path.Combine(TestPaths.RepoRoot, "scripts", "pack_interactive.sh");
            if (File.Exists(pack))
            {
                var (code, output) = JupyterEnvironment.Run("bash", [pack], TestPaths.RepoRoot, TimeSpan.FromMinutes(10));
                log.AppendLine($"$ bash scripts/pack_interactive.sh  (exit {code}, {clock.Elapsed.TotalSeconds:0.0} s)").AppendLine(output);
                if (code != 0) throw new InvalidOperationException($"scripts/pack_interactive.sh failed (exit {code}):\n{output}");
            }
            var sources = Names.Select(n => Path.Combine(Folder, n + ".ipynb")).ToList();
            SourceHashes = sources.ToDictionary(p => Path.GetFileNameWithoutExtension(p)!, Hash);
            var runStart = clock.Elapsed;
            (RunnerExit, var runOutput) = JupyterEnvironment.Run(JupyterEnvironment.Python,
                [Path.Combine(TestPaths.RepoRoot, "scripts", "run_notebooks.py"), "--out", Out, .. sources],
                TestPaths.RepoRoot, TimeSpan.FromMinutes(30));
            log.AppendLine($"$ /usr/bin/python3 scripts/run_notebooks.py  (exit {RunnerExit}, {(clock.Elapsed - runStart).TotalSeconds:0.0} s)").AppendLine(runOutput);
            var results = Path.Combine(Out, "results.json");
            if (File.Exists(results))
            {
                using var doc = JsonDocument.Parse(File.ReadAllText(results));
                Results = doc.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.Clone());
            }
        }
        catch (Exception e)
        {
            Failure = e.Message;
        }
        Log = log.ToString();
    }

    /// <summary>Why the run could not happen at all (install or pack failed), else null.</summary>
    public string? Failure { get; }

    /// <summary>What pack and the runner printed.</summary>
    public string Log { get; } = "";

    public int RunnerExit { get; } = -1;

    /// <summary>SHA-256 of each source notebook before the run (the run must not write them).</summary>
    public IReadOnlyDictionary<string, string> SourceHashes { get; } = new Dictionary<string, string>();

    /// <summary>The runner's results.json: one object per notebook.</summary>
    public IReadOnlyDictionary<string, JsonElement> Results { get; } = new Dictionary<string, JsonElement>();

    /// <summary>The runner's entry for one notebook; fails the test with the run's log when there is none.</summary>
    public JsonElement Result(string name)
    {
        Assert.True(Failure is null, Failure + "\n" + Log);
        Assert.True(Results.TryGetValue(name, out var r), $"the runner reported nothing for {name}:\n{Log}");
        return r;
    }

    public static string Hash(string path) => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(path)));
}
