namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>Locations of the repository and the shared data folder beside it (independent of the working directory).</summary>
internal static class TestPaths
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string Notebooks => Path.Combine(RepoRoot, "notebooks");
    public static string Tiny => Path.Combine(RepoRoot, "reference-data", "tiny");
    public static string SharedAudio => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "audio"));

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StepAudio2.Lab.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("StepAudio2.Lab.sln not found above " + AppContext.BaseDirectory);
    }
}
