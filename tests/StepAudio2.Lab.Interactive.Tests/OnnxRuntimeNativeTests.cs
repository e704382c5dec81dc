using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>Where the extension looks for ONNX Runtime's native library inside a kernel that has no deps.json for the package.</summary>
public sealed class OnnxRuntimeNativeTests
{
    [Fact]
    public void RidNamesThisPlatformAsNuGetDoes()
    {
        var expected = (OperatingSystem.IsWindows() ? "win" : OperatingSystem.IsMacOS() ? "osx" : "linux") + "-" +
                       RuntimeInformation.ProcessArchitecture.ToString().ToLowerInvariant();
        Assert.Equal(expected, OnnxRuntimeNative.Rid);
        if (OperatingSystem.IsLinux() && RuntimeInformation.ProcessArchitecture == Architecture.X64) Assert.Equal("linux-x64", OnnxRuntimeNative.Rid);
    }

    [Fact]
    public void ProbesReachThePackageRootAndTheBuildOutputsNativeFolder()
    {
        var ort = typeof(Microsoft.ML.OnnxRuntime.InferenceSession).Assembly;
        var dirs = OnnxRuntimeNative.ProbeDirectories(ort).ToList();
        var here = Path.GetDirectoryName(ort.Location)!;
        var rid = Path.Combine("runtimes", OnnxRuntimeNative.Rid, "native");
        // a package: lib/net10.0/ or interactive-extensions/dotnet/ → <package>/runtimes/<rid>/native
        Assert.Contains(Path.GetFullPath(Path.Combine(here, "..", "..", rid)), dirs);
        // this build output: runtimes/<rid>/native beside the dll, where the trimmed build keeps linux-x64
        Assert.Contains(Path.Combine(here, rid), dirs);
        if (OnnxRuntimeNative.Rid == "linux-x64")
            Assert.Contains(dirs, d => File.Exists(Path.Combine(d, "libonnxruntime.so")));
    }

    [Fact]
    public void RegisteringTwiceIsHarmless()
    {
        OnnxRuntimeNative.Register();
        OnnxRuntimeNative.Register();
        using var options = new Microsoft.ML.OnnxRuntime.SessionOptions(); // the native library loads
        Assert.NotNull(options);
    }
}
