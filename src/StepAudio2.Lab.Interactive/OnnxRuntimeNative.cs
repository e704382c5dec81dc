using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// Lets ONNX Runtime's <c>DllImport("onnxruntime")</c> find the native library this package ships under
/// <c>runtimes/&lt;rid&gt;/native/</c>. In an app the host reads the native assets from deps.json; a notebook kernel loads the
/// package's dlls without one, so the load context's last-chance <see cref="AssemblyLoadContext.ResolvingUnmanagedDll"/>
/// probes the package folders (an event, not <see cref="NativeLibrary.SetDllImportResolver"/>: ORT registers its own
/// resolver, and each assembly may have only one).
/// </summary>
public static class OnnxRuntimeNative
{
    private static int _registered;

    /// <summary>The platform folder name used by NuGet (<c>linux-x64</c>, <c>osx-arm64</c>, …).</summary>
    public static string Rid =>
        (OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux") + "-" +
        RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();

    /// <summary>Registers the resolver once for the load context that holds Microsoft.ML.OnnxRuntime.</summary>
    public static void Register()
    {
        if (Interlocked.Exchange(ref _registered, 1) == 1) return;
        var ort = typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly;
        var context = AssemblyLoadContext.GetLoadContext(ort) ?? AssemblyLoadContext.Default;
        context.ResolvingUnmanagedDll += (assembly, name) =>
            name.Contains("onnxruntime", StringComparison.OrdinalIgnoreCase) ? Resolve(name, assembly, ort) : IntPtr.Zero;
    }

    /// <summary>The folders probed for the native library, nearest first.</summary>
    public static IEnumerable<string> ProbeDirectories(params Assembly[] from)
    {
        var rid = Path.Combine("runtimes", Rid, "native");
        foreach (var a in from.Append(typeof(OnnxRuntimeNative).Assembly).Distinct())
        {
            var dir = Path.GetDirectoryName(a.Location);
            if (string.IsNullOrEmpty(dir)) continue;
            yield return dir;                                            // beside the dll
            yield return Path.Combine(dir, rid);                         // a build output
            yield return Path.GetFullPath(Path.Combine(dir, "..", "..", rid)); // package root from lib/<tfm>/ or interactive-extensions/dotnet/
        }
    }

    private static IntPtr Resolve(string name, Assembly requester, Assembly ort)
    {
        string file = name.Contains('.') ? name
            : OperatingSystem.IsWindows() ? name + ".dll"
            : "lib" + name + (OperatingSystem.IsMacOS() ? ".dylib" : ".so");
        foreach (var dir in ProbeDirectories(requester, ort))
        {
            var path = Path.Combine(dir, file);
            if (File.Exists(path) && NativeLibrary.TryLoad(path, out var handle)) return handle;
        }
        return IntPtr.Zero;
    }
}
