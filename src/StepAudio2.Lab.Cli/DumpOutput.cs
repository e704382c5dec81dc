namespace StepAudio2.Lab.Cli;

/// <summary>
/// The one output rule of every command that writes a dump (<c>mel</c>, <c>features</c>, <c>trace</c>): the format
/// follows the extension of <c>--out</c>, <c>.safetensors</c>, <c>.npz</c> or <c>.npy</c> (one tensor only); anything
/// else is bad input (exit 2) named before any work is done, never a safetensors file under another name.
/// </summary>
public static class DumpOutput
{
    /// <summary>The extensions a dump may be written as.</summary>
    public static IReadOnlyList<string> Extensions { get; } = [".safetensors", ".npz", ".npy"];

    /// <summary>
    /// The lower-case extension of <paramref name="path"/> after checking it against the rule; <paramref name="manyTensors"/>
    /// refuses <c>.npy</c> for outputs that hold several tensors (a trace).
    /// </summary>
    public static string Check(string path, bool manyTensors = false, string option = "--out")
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        string ext = Path.GetExtension(path).ToLowerInvariant();
        if (!Extensions.Contains(ext))
            throw new ArgumentException($"{option} '{path}': a dump is written as .safetensors, .npz or .npy (chosen by the extension)");
        if (manyTensors && ext == ".npy")
            throw new ArgumentException($"{option} '{path}': .npy holds one tensor and this dump holds many; use .safetensors or .npz");
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"{option}: no such folder: {dir}");
        return ext;
    }
}
