using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using static StepAudio2.Lab.Engine.Mlx.MlxNative;

namespace StepAudio2.Lab.Engine.Mlx;

/// <summary>An error MLX reported through mlx-c's error handler (shape mismatch, unsupported dtype, …).</summary>
public sealed class MlxException(string message) : Exception(message);

/// <summary>
/// Finds and loads the native MLX libraries that scripts/build-mlx.sh builds (libmlx + libmlxc), installs an error
/// handler that turns MLX errors into <see cref="MlxException"/>s (mlx-c's default handler prints and calls exit(-1),
/// which would take the whole process down on a shape error), and serialises native calls (MLX's graph building and
/// evaluation are not documented as thread-safe; tests and notebooks may call from several threads).
/// Location: $STEPLAB_MLX_DIR (a folder with lib/ or the libraries themselves), else the build script's cache folder.
/// </summary>
public static unsafe class MlxLibrary
{
    /// <summary>The versions scripts/build-mlx.sh pins; the cache folder is named after them.</summary>
    public const string MlxVersion = "0.31.2";
    public const string MlxCCommit = "fba4470";

    private static readonly object Gate = new();
    private static readonly Lazy<(nint Handle, string? Error, string? Dir)> Loaded = new(Load);
    private static readonly ConcurrentQueue<nint> DeferredFrees = new();
    [ThreadStatic] private static string? t_lastError;

    /// <summary>The lock every native call of the backend runs under.</summary>
    internal static object Lock => Gate;

    /// <summary>The folder the script caches the build in (~/.cache/steplab/mlx-&lt;version&gt;-c&lt;commit&gt;).</summary>
    public static string CacheDirectory
    {
        get
        {
            string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
            string root = string.IsNullOrEmpty(xdg)
                ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                : xdg;
            return Path.Combine(root, "steplab", $"mlx-{MlxVersion}-c{MlxCCommit}");
        }
    }

    /// <summary>True when libmlxc loaded and its error handler is installed.</summary>
    public static bool IsAvailable => Loaded.Value.Error is null;

    /// <summary>Why the backend cannot run (null when it can): where it looked and how to build the libraries.</summary>
    public static string? UnavailableReason => Loaded.Value.Error;

    /// <summary>The folder the libraries were loaded from.</summary>
    public static string? LibraryDirectory => Loaded.Value.Dir;

    /// <summary>Throws with <see cref="UnavailableReason"/> when the libraries are not there.</summary>
    public static void EnsureAvailable()
    {
        if (Loaded.Value.Error is { } error) throw new InvalidOperationException(error);
    }

    /// <summary>MLX's own version string (mlx_version).</summary>
    public static string Version
    {
        get
        {
            EnsureAvailable();
            lock (Gate)
            {
                var s = mlx_string_new();
                try
                {
                    Check(mlx_version(&s), "version");
                    return Marshal.PtrToStringUTF8((nint)mlx_string_data(s)) ?? "?";
                }
                finally { mlx_string_free(s); }
            }
        }
    }

    private static string LibName(string stem) =>
        OperatingSystem.IsMacOS() ? $"lib{stem}.dylib" : OperatingSystem.IsWindows() ? $"{stem}.dll" : $"lib{stem}.so";

    private static (nint, string?, string?) Load()
    {
        string? env = Environment.GetEnvironmentVariable("STEPLAB_MLX_DIR");
        var candidates = new List<string>();
        if (!string.IsNullOrEmpty(env)) { candidates.Add(Path.Combine(env, "lib")); candidates.Add(env); }
        else candidates.Add(Path.Combine(CacheDirectory, "lib"));
        string? dir = candidates.FirstOrDefault(d => File.Exists(Path.Combine(d, LibName("mlxc"))));
        if (dir is null)
            return (0, $"the MLX libraries are not built: no {LibName("mlxc")} in {string.Join(" or ", candidates)}"
                       + (string.IsNullOrEmpty(env) ? "; run `bash scripts/build-mlx.sh` (or set STEPLAB_MLX_DIR)" : " (STEPLAB_MLX_DIR)"), null);
        nint handle;
        try
        {
            // libmlx first, by full path: libmlxc's dependency on it then resolves to this copy whatever the rpath.
            string mlx = Path.Combine(dir, LibName("mlx"));
            if (File.Exists(mlx)) NativeLibrary.Load(mlx);
            handle = NativeLibrary.Load(Path.Combine(dir, LibName("mlxc")));
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            return (0, $"the MLX libraries in {dir} do not load: {e.Message}", dir);
        }
        // An event, not NativeLibrary.SetDllImportResolver: that is one per assembly, and other backends may need it.
        var context = AssemblyLoadContext.GetLoadContext(typeof(MlxLibrary).Assembly) ?? AssemblyLoadContext.Default;
        context.ResolvingUnmanagedDll += (_, name) => name == MlxNative.Lib ? handle : 0;
        mlx_set_error_handler(&OnError, null, null);
        return (handle, null, dir);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnError(byte* message, void* data) =>
        t_lastError = Marshal.PtrToStringUTF8((nint)message) ?? "(no message)";

    /// <summary>Throws the message MLX reported when <paramref name="rc"/> is non-zero.</summary>
    internal static void Check(int rc, string op)
    {
        if (rc == 0) return;
        string message = t_lastError ?? $"error code {rc}";
        t_lastError = null;
        throw new MlxException($"mlx {op}: {message}");
    }

    /// <summary>Frees an array handle now (under the lock) or later (from a finalizer, at the next native call).</summary>
    internal static void Free(mlx_array a, bool fromFinalizer)
    {
        if (a.IsNull) return;
        if (fromFinalizer) { DeferredFrees.Enqueue(a.Ctx); return; }
        lock (Gate) mlx_array_free(a);
    }

    /// <summary>Frees handles whose owners were finalized; call with the lock held.</summary>
    internal static void DrainDeferred()
    {
        while (DeferredFrees.TryDequeue(out var ctx)) mlx_array_free(new mlx_array { Ctx = ctx });
    }
}
