using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>Why the CUDA backend cannot start here (no driver, no GPU, no NVRTC/cuBLAS): the message says what was looked for and where.</summary>
public sealed class CudaUnavailableException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>A CUDA call that returned an error: the call, its code and the library's name for it.</summary>
public sealed class CudaException(string message) : Exception(message);

/// <summary>
/// Finds the three native libraries the CUDA backend drives (the driver API <c>libcuda.so.1</c>, NVRTC and cuBLAS) across
/// CUDA 12 and 13 without a toolkit at build time: library names newest first, in the directory of
/// <c>STEPLAB_CUDA_LIBDIR</c> (colon-separated, searched first), the usual toolkit folders, and the <c>nvidia/*/lib</c>
/// folders of a pip-installed PyTorch (where CUDA 13 wheels put <c>libnvrtc.so.13</c> and <c>libcublas.so.13</c>).
/// </summary>
public static class CudaLibraries
{
    /// <summary>Colon-separated folders searched before any other.</summary>
    public const string LibDirVariable = "STEPLAB_CUDA_LIBDIR";

    public static readonly string[] DriverNames = ["libcuda.so.1", "libcuda.so"];
    public static readonly string[] NvrtcNames = ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"];
    public static readonly string[] CublasNames = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"];
    public static readonly string[] CublasLtNames = ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"];

    /// <summary>Folders searched, in order: the variable's, the toolkit's, the system's, then pip's nvidia wheels.</summary>
    public static IReadOnlyList<string> SearchDirectories(string? overrideDirs = null)
    {
        var dirs = new List<string>();
        overrideDirs ??= Environment.GetEnvironmentVariable(LibDirVariable);
        if (!string.IsNullOrWhiteSpace(overrideDirs)) dirs.AddRange(overrideDirs.Split(':', StringSplitOptions.RemoveEmptyEntries));
        foreach (var v in new[] { "CUDA_PATH", "CUDA_HOME" })
            if (Environment.GetEnvironmentVariable(v) is { Length: > 0 } root) { dirs.Add(Path.Combine(root, "lib64")); dirs.Add(Path.Combine(root, "lib")); }
        dirs.AddRange(["/usr/local/cuda/lib64", "/usr/local/cuda/targets/x86_64-linux/lib", "/usr/local/cuda/targets/sbsa-linux/lib",
            "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/local/nvidia/lib64", "/usr/lib/wsl/lib"]);
        foreach (var site in SitePackages())
        {
            string nv = Path.Combine(site, "nvidia");
            if (!Directory.Exists(nv)) continue;
            // CUDA 13 wheels share one folder (nvidia/cu13/lib); CUDA 12 wheels have one per library (nvidia/cublas/lib …)
            foreach (var sub in SafeDirs(nv).OrderByDescending(d => d, StringComparer.Ordinal))
                if (Directory.Exists(Path.Combine(sub, "lib"))) dirs.Add(Path.Combine(sub, "lib"));
        }
        return dirs.Distinct().ToArray();
    }

    private static IEnumerable<string> SitePackages()
    {
        var roots = new List<string>();
        if (Environment.GetEnvironmentVariable("VIRTUAL_ENV") is { Length: > 0 } venv) roots.Add(Path.Combine(venv, "lib"));
        roots.AddRange(["/usr/local/lib", "/usr/lib", "/opt/conda/lib", "/opt/venv/lib", "/root/.local/lib"]);
        if (Environment.GetEnvironmentVariable("HOME") is { Length: > 0 } home) roots.Add(Path.Combine(home, ".local", "lib"));
        foreach (var r in roots)
            foreach (var py in SafeDirs(r).Where(d => Path.GetFileName(d).StartsWith("python3", StringComparison.Ordinal)))
                foreach (var kind in new[] { "site-packages", "dist-packages" })
                    if (Directory.Exists(Path.Combine(py, kind))) yield return Path.Combine(py, kind);
        foreach (var d in SafeDirs("/opt").Concat(SafeDirs("/venv")))
            foreach (var py in SafeDirs(Path.Combine(d, "lib")).Where(x => Path.GetFileName(x).StartsWith("python3", StringComparison.Ordinal)))
                if (Directory.Exists(Path.Combine(py, "site-packages"))) yield return Path.Combine(py, "site-packages");
    }

    private static IEnumerable<string> SafeDirs(string dir)
    {
        try { return Directory.Exists(dir) ? Directory.GetDirectories(dir) : []; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>
    /// Loads the first of <paramref name="names"/> found, each tried in every folder, then by bare name (the dynamic
    /// loader's own path). Throws <see cref="CudaUnavailableException"/> listing every name and folder tried.
    /// </summary>
    public static (IntPtr Handle, string Path) Load(string what, IReadOnlyList<string> names, IReadOnlyList<string> dirs)
    {
        var errors = new List<string>();
        foreach (var name in names)
        {
            foreach (var dir in dirs)
            {
                string path = Path.Combine(dir, name);
                if (!File.Exists(path)) continue;
                PreloadCompanions(dir, name);
                if (NativeLibrary.TryLoad(path, out var h)) return (h, path);
                errors.Add($"{path}: found but could not be loaded");
            }
            if (NativeLibrary.TryLoad(name, out var hb)) return (hb, name);
        }
        throw new CudaUnavailableException(
            $"CUDA backend: {what} not found: tried {string.Join(", ", names)} in {string.Join(":", dirs)} and the loader's default path" +
            (errors.Count > 0 ? $" ({string.Join("; ", errors)})" : "") +
            $". Install the NVIDIA driver / CUDA 12 or 13 runtime libraries, or point {LibDirVariable} at the folder holding them.");
    }

    /// <summary>Libraries the wanted one opens by soname at load or first use (cuBLAS → cuBLASLt; NVRTC → its builtins):
    /// loaded from the same folder first, so a pip wheel's folder works without LD_LIBRARY_PATH.</summary>
    private static void PreloadCompanions(string dir, string name)
    {
        IEnumerable<string> companions = name.StartsWith("libcublas.", StringComparison.Ordinal)
            ? CublasLtNames.Select(n => Path.Combine(dir, n))
            : name.StartsWith("libnvrtc.", StringComparison.Ordinal)
                ? SafeFiles(dir).Where(f => Path.GetFileName(f).StartsWith("libnvrtc-builtins.so", StringComparison.Ordinal))
                : [];
        foreach (var c in companions)
            if (File.Exists(c)) NativeLibrary.TryLoad(c, out _);
    }

    private static IEnumerable<string> SafeFiles(string dir)
    {
        try { return Directory.GetFiles(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return []; }
    }

    /// <summary>An export of a loaded library, or a <see cref="CudaUnavailableException"/> naming the symbol and file.</summary>
    public static IntPtr Export(IntPtr lib, string libPath, string symbol) =>
        NativeLibrary.TryGetExport(lib, symbol, out var p) ? p
            : throw new CudaUnavailableException($"CUDA backend: {libPath} has no export {symbol} (too old a CUDA version?)");
}
