using System.Diagnostics;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Cli;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// Every <c>steplab</c> example of README.md runs verbatim: each <c>```bash</c> block that calls it is run by bash in a
/// copy of the repository layout (the root's <c>./steplab</c> launcher and <c>reference-data/</c> linked, <c>../shared</c>
/// beside it), so that its outputs land in a scratch folder. The launcher runs the CLI this test project built
/// (<c>STEPLAB_DLL</c>), the same sources <c>run.sh</c> builds. A block expects exit code 0 unless it says
/// <c># exit code N</c>.
/// </summary>
public sealed partial class ReadmeExampleTests(ITestOutputHelper output)
{
    private static string Readme => Path.Combine(TestPaths.RepoRoot, "README.md");

    /// <summary>The README's bash blocks that call steplab, by their first line.</summary>
    public static TheoryData<string> Blocks()
    {
        var data = new TheoryData<string>();
        foreach (var b in SteplabBlocks()) data.Add(b.Split('\n')[0]);
        return data;
    }

    internal static List<string> SteplabBlocks() =>
        BashBlock().Matches(File.ReadAllText(Readme)).Select(m => m.Groups[1].Value.TrimEnd())
            .Where(b => SteplabCall().IsMatch(b)).ToList();

    [Fact]
    public void TheReadmeHasExamplesOfTheMainCommandsAndEachCallsTheLauncher()
    {
        var blocks = SteplabBlocks();
        var commands = blocks.SelectMany(b => SteplabCall().Matches(b).Select(m => m.Groups["cmd"].Value)).ToHashSet();
        foreach (var c in new[] { "inspect", "compare", "report", "trace", "mel", "tokenize", "transcribe", "chat", "features" })
            Assert.Contains(c, commands);
        foreach (var b in blocks)
            foreach (var line in b.Split('\n'))
                Assert.DoesNotMatch(@"(^|[|;&]\s*)steplab\s", line); // a bare `steplab` is not on PATH after the set-up
        Assert.True(File.Exists(Path.Combine(TestPaths.RepoRoot, "steplab")), "the launcher ./steplab is missing");
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public async Task ReadmeExampleRunsVerbatim(string firstLine)
    {
        string block = SteplabBlocks().Single(b => b.Split('\n')[0] == firstLine);
        int expected = ExpectedCode().Match(block) is { Success: true } m ? int.Parse(m.Groups[1].Value) : 0;

        using var tmp = TestPaths.Temp();
        var repo = Directory.CreateDirectory(Path.Combine(tmp.Path, "repo")).FullName;
        File.CreateSymbolicLink(Path.Combine(repo, "steplab"), Path.Combine(TestPaths.RepoRoot, "steplab"));
        Directory.CreateSymbolicLink(Path.Combine(repo, "reference-data"), TestPaths.ReferenceData);
        Directory.CreateSymbolicLink(Path.Combine(tmp.Path, "shared"), TestPaths.Shared);

        var psi = new ProcessStartInfo("bash", ["-e", "-o", "pipefail", "-c", block])
        {
            WorkingDirectory = repo, RedirectStandardOutput = true, RedirectStandardError = true,
        };
        psi.Environment["STEPLAB_DLL"] = typeof(StepLabCli).Assembly.Location;
        using var p = Process.Start(psi)!;
        var stdoutTask = p.StandardOutput.ReadToEndAsync();
        var stderrTask = p.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        try { await p.WaitForExitAsync(limit.Token); }
        catch (OperationCanceledException) { p.Kill(entireProcessTree: true); Assert.Fail($"example ran over 2 minutes: {block}"); }
        string stdout = await stdoutTask, stderr = await stderrTask;
        string log = $"$ {block}\n--- stdout\n{stdout}\n--- stderr\n{stderr}";
        output.WriteLine(log);
        Assert.True(p.ExitCode == expected, $"exit code {p.ExitCode}, expected {expected}\n{log}");
        Assert.DoesNotContain("command not found", stderr);
    }

    [GeneratedRegex(@"^```bash\n(.*?)^```", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex BashBlock();

    [GeneratedRegex(@"(?:^|[|;&]\s*)(?:\./)?steplab\s+(?<cmd>[a-z0-9]+)", RegexOptions.Multiline)]
    private static partial Regex SteplabCall();

    [GeneratedRegex(@"#\s*exit code (\d)")]
    private static partial Regex ExpectedCode();
}
