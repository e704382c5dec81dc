using System.Diagnostics;
using StepAudio2.Lab.Engine.Cuda;

namespace StepAudio2.Lab.Tests.Engine.Cuda;

/// <summary>
/// The NVRTC source of every CUDA kernel, checked on a machine without CUDA: a host C++ compiler (g++) parses and
/// type-checks it against declarations of the CUDA built-ins it uses (<c>mock_cuda_builtins.h</c>), so a typo or a type
/// error in a kernel is found here and not on the scarce GPU machine, where NVRTC would reject the whole module.
/// </summary>
public sealed class CudaKernelSyntaxTests
{
    private static string Header => Path.Combine(TestPaths.RepoRoot, "tests", "StepAudio2.Lab.Tests", "Engine", "Cuda", "mock_cuda_builtins.h");

    private static (int Exit, string Output) Gxx(string source)
    {
        var file = Path.Combine(Path.GetTempPath(), $"steplab-kernels-{Environment.ProcessId}-{Guid.NewGuid():N}.cu");
        File.WriteAllText(file, source);
        try
        {
            var psi = new ProcessStartInfo("g++", ["-std=c++17", "-fsyntax-only", "-Wno-unknown-pragmas", "-include", Header, "-x", "c++", file])
            { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = Process.Start(psi)!;
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(120_000)) { p.Kill(); return (-1, "g++ did not finish in 120 s"); }
            return (p.ExitCode, output + err.Result);
        }
        finally { File.Delete(file); }
    }

    private static bool HaveGxx()
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo("g++", ["--version"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            p.WaitForExit(10_000);
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; }
    }

    [Fact]
    public void TheKernelSourceParsesAndTypeChecksAsCxx()
    {
        Assert.True(HaveGxx(), "g++ is needed for this check (the CI installs it: build-essential)");
        var (exit, output) = Gxx(CudaKernels.Source);
        Assert.True(exit == 0, "g++ rejected CudaKernels.Source:\n" + output);
    }

    [Fact]
    public void TheCheckFailsOnABrokenKernel()
    {
        // the check can fail: an undeclared name and a missing semicolon in an otherwise valid kernel
        Assert.True(HaveGxx(), "g++ is needed for this check");
        var broken = CudaKernels.Source.Replace("float acc = 0.f;", "float acc = 0.f").Replace("__ldg(wr + w)", "__ldg(wr_missing + w)");
        Assert.NotEqual(CudaKernels.Source, broken);
        var (exit, output) = Gxx(broken);
        Assert.NotEqual(0, exit);
        Assert.Contains("error", output);
    }
}
