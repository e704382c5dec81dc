using System.Diagnostics;

namespace StepAudio2.Lab.Tests.Jupyter;

/// <summary>
/// Whether real Jupyter (Debian's, with the .NET Interactive kernel) and headless Chromium are here or can be installed
/// here by <c>scripts/setup.sh</c>; the notebook tests skip only when neither holds.
/// </summary>
internal static class JupyterEnvironment
{
    public const string Jupyter = "/usr/bin/jupyter";
    public const string Python = "/usr/bin/python3";

    /// <summary>The .NET Interactive global tool (what the kernelspec's <c>dotnet interactive</c> runs).</summary>
    public static string DotnetInteractive => Path.Combine(Home, ".dotnet", "tools", "dotnet-interactive");

    /// <summary>The C# kernelspec <c>dotnet interactive jupyter install</c> writes under Jupyter's user data folder.</summary>
    public static string KernelSpec => Path.Combine(
        Environment.GetEnvironmentVariable("JUPYTER_DATA_DIR") is { Length: > 0 } d ? d : Path.Combine(Home, ".local", "share", "jupyter"),
        "kernels", ".net-csharp", "kernel.json");

    private static string Home => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static readonly string[] Chromiums = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

    /// <summary>What is missing; empty when everything is installed.</summary>
    public static IReadOnlyList<string> Missing()
    {
        var missing = new List<string>();
        if (!File.Exists(Jupyter)) missing.Add(Jupyter);
        if (!File.Exists(DotnetInteractive)) missing.Add(DotnetInteractive);
        if (!File.Exists(KernelSpec)) missing.Add(KernelSpec);
        if (!Chromiums.Any(File.Exists)) missing.Add("chromium");
        return missing;
    }

    private static readonly Lazy<string?> _skip = new(() =>
    {
        var missing = Missing();
        if (missing.Count == 0) return null;
        if (!File.Exists("/usr/bin/apt-get") || !File.Exists("/usr/bin/dpkg-query"))
            return $"not installed and not installable here (no apt-get: not Debian): {string.Join(", ", missing)}";
        if (!IsRoot() && !CanSudo())
            return $"not installed and not installable here (neither root nor passwordless sudo for apt-get): {string.Join(", ", missing)}";
        return null;
    });

    /// <summary>Null when the notebook tests can run (possibly after installing); otherwise why they cannot.</summary>
    public static string? SkipReason => _skip.Value;

    /// <summary>Installs what is missing through scripts/setup.sh (idempotent); throws with its output if that fails.</summary>
    public static void EnsureInstalled()
    {
        if (Missing().Count == 0) return;
        var (code, output) = Run("bash", ["-c", "set -euo pipefail; source scripts/setup.sh; setup_jupyter; setup_chromium"], TestPaths.RepoRoot, TimeSpan.FromMinutes(20));
        var still = Missing();
        if (code != 0 || still.Count > 0)
            throw new InvalidOperationException($"scripts/setup.sh setup_jupyter/setup_chromium failed (exit {code}); still missing: {string.Join(", ", still)}\n{output}");
    }

    private static bool IsRoot() => Environment.UserName == "root" || Run("id", ["-u"], "/", TimeSpan.FromSeconds(10)).Output.Trim() == "0";

    private static bool CanSudo() => File.Exists("/usr/bin/sudo") && Run("sudo", ["-n", "true"], "/", TimeSpan.FromSeconds(10)).Code == 0;

    /// <summary>Runs a process to completion, stdout and stderr merged; exit code -1 when it had to be killed.</summary>
    public static (int Code, string Output) Run(string file, IEnumerable<string> args, string cwd, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = new Process { StartInfo = psi };
        var sb = new System.Text.StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (sb) sb.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (sb) sb.AppendLine(e.Data); };
        try
        {
            p.Start();
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, $"cannot start {file}: {e.Message}");
        }
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (!p.WaitForExit(limit))
        {
            p.Kill(entireProcessTree: true);
            p.WaitForExit();
            lock (sb) sb.AppendLine($"[killed after {limit.TotalSeconds:0} s]");
            return (-1, sb.ToString());
        }
        p.WaitForExit();
        lock (sb) return (p.ExitCode, sb.ToString());
    }
}

/// <summary>A fact that skips only when Jupyter/Chromium are missing and cannot be installed on this machine.</summary>
public sealed class JupyterFactAttribute : FactAttribute
{
    public JupyterFactAttribute()
    {
        if (JupyterEnvironment.SkipReason is { } why) Skip = "real Jupyter + Chromium: " + why;
    }
}

/// <summary>A theory that skips only when Jupyter/Chromium are missing and cannot be installed on this machine.</summary>
public sealed class JupyterTheoryAttribute : TheoryAttribute
{
    public JupyterTheoryAttribute()
    {
        if (JupyterEnvironment.SkipReason is { } why) Skip = "real Jupyter + Chromium: " + why;
    }
}
