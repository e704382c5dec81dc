using StepAudio2.Lab.IO.Safetensors;
using System.Diagnostics;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Mel;

/// <summary>
/// The STFT options for the 400-point (not power-of-two) frontend FFT, each checked against the reference mel and timed
/// on 30 s of real audio (two chunks). Timings are printed, not asserted (CI machines vary); run with
/// <c>-c Release --logger "console;verbosity=detailed"</c> to see them.
/// </summary>
[Trait("Category", "Benchmark")]
public sealed class MelSpeedTests(ITestOutputHelper output)
{
    public static TheoryData<string> Kernels => new() { "mixed-radix", "mathnet", "dft-matrix" };

    internal static IStftPower Create(string name) => name switch
    {
        "mixed-radix" => new MixedRadixStftPower(LogMelFrontend.NFft),
        "mathnet" => new MathNetStftPower(LogMelFrontend.NFft),
        "dft-matrix" => new DftMatrixStftPower(LogMelFrontend.NFft),
        _ => throw new ArgumentException(name),
    };

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_MeetsAccuracyTarget_AndIsTimedOn30Seconds(string name)
    {
        var kernel = Create(name);
        var two = SafetensorsFile.Open(LogMelFrontendTests.DumpPath("two_chunks"));
        var shortClip = SafetensorsFile.Open(LogMelFrontendTests.DumpPath("short"));
        var twoWav = two.Get("input.wav").ToFloatArray();

        // Accuracy on both reference chunks.
        var ranges = LogMelFrontend.ChunkRanges(twoWav.Length);
        for (int i = 0; i < ranges.Length; i++)
        {
            var mel = LogMelFrontend.Compute(twoWav.AsSpan(ranges[i]), true, kernel);
            double diff = LogMelFrontendTests.MaxAbsDiff(mel, two.Get($"input.mel.{i}"));
            output.WriteLine($"{name}: chunk {i} max |Δ| vs reference = {diff:E2}");
            Assert.True(diff <= 1e-4, $"{name} chunk {i}: max |Δ| = {diff:E3}");
        }

        // 30 s = the 27 s clip + the first 3 s of the short clip → chunks of 25 s and 5 s.
        float[] wav30 = [.. twoWav, .. shortClip.Get("input.wav").ToFloatArray().AsSpan(0, 48_000)];
        Assert.Equal(480_000, wav30.Length);
        int runs = name == "mathnet" ? 2 : 7; // MathNet's Bluestein path takes ~0.5 s per 30 s
        double serial = Time(wav30, kernel, 1, runs), parallel = Time(wav30, kernel, -1, runs);
        output.WriteLine($"{name}: 30 s of audio → {serial:F1} ms on 1 thread, {parallel:F1} ms with Parallel.For ({Environment.ProcessorCount} cores), best of {runs}, {Build} build");
    }

#if DEBUG
    private const string Build = "Debug (unoptimised JIT: run with -c Release for real numbers)";
#else
    private const string Build = "Release";
#endif

    private static double Time(float[] wav, IStftPower kernel, int threads, int runs)
    {
        var ranges = LogMelFrontend.ChunkRanges(wav.Length);
        void Run() { foreach (var r in ranges) LogMelFrontend.Compute(wav.AsSpan(r), true, kernel, threads); }
        Run(); // JIT warm-up
        double best = double.MaxValue;
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            Run();
            best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        return best; // minimum: the least disturbed run on a shared machine
    }
}
