using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Bench.Mel;

/// <summary>
/// The STFT options for the 400-point (not power-of-two) frontend FFT (<see cref="MixedRadixStftPower"/>, the production
/// kernel; MathNet's Bluestein path; a DFT matrix), each checked against the reference mel of the tiny dumps (max |Δ| ≤ 1e-4,
/// exit 1 otherwise) and timed on 30 s of real audio (chunks of 25 s and 5 s), on one thread and with Parallel.For.
/// Was a test class (MelSpeedTests); a benchmark belongs here (the production kernel is tested by LogMelFrontendTests).
/// Usage: StepAudio2.Lab.Bench mel-kernels [--dumps reference-data/tiny/dumps] [--out file.json]
/// </summary>
internal static class MelKernelBench
{
    private static IStftPower Create(string name) => name switch
    {
        "mixed-radix" => new MixedRadixStftPower(LogMelFrontend.NFft),
        "mathnet" => new MathNetStftPower(LogMelFrontend.NFft),
        "dft-matrix" => new DftMatrixStftPower(LogMelFrontend.NFft),
        _ => throw new ArgumentException(name),
    };

    public static int Run(string[] args)
    {
        string dumps = Path.Combine("reference-data", "tiny", "dumps");
        string? outPath = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--dumps": dumps = args[++i]; break;
                case "--out": outPath = args[++i]; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        using var two = SafetensorsFile.Open(Path.Combine(dumps, "audio-two_chunks.safetensors"));
        using var shortClip = SafetensorsFile.Open(Path.Combine(dumps, "audio-short.safetensors"));
        var twoWav = two.Get("input.wav").ToFloatArray();
        // 30 s = the 27 s clip + the first 3 s of the short clip → chunks of 25 s and 5 s
        float[] wav30 = [.. twoWav, .. shortClip.Get("input.wav").ToFloatArray().AsSpan(0, 48_000)];

        var rows = new List<object>();
        bool accurate = true;
        foreach (var name in new[] { "mixed-radix", "mathnet", "dft-matrix" })
        {
            var kernel = Create(name);
            var ranges = LogMelFrontend.ChunkRanges(twoWav.Length);
            double worst = 0;
            for (int i = 0; i < ranges.Length; i++)
                worst = Math.Max(worst, MaxAbsDiff(LogMelFrontend.Compute(twoWav.AsSpan(ranges[i]), true, kernel), two.Get($"input.mel.{i}")));
            accurate &= worst <= 1e-4;
            int runs = name == "mathnet" ? 2 : 7; // MathNet's Bluestein path takes ~0.5 s per 30 s
            double serial = Time(wav30, kernel, 1, runs), parallel = Time(wav30, kernel, -1, runs);
            Console.WriteLine($"{name,-12} max |Δ| vs reference {worst:E2}{(worst <= 1e-4 ? "" : " (over 1e-4!)")}; 30 s of audio: " +
                $"{serial:F1} ms on 1 thread, {parallel:F1} ms with Parallel.For ({Environment.ProcessorCount} cores), best of {runs}");
            rows.Add(new { kernel = name, max_abs_diff = worst, serial_ms = serial, parallel_ms = parallel, runs });
        }
        if (outPath is not null)
            File.WriteAllText(outPath, JsonSerializer.Serialize(new
            {
                benchmark = "mel STFT kernels, 30 s of audio",
                cores = Environment.ProcessorCount,
                load_average = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "",
                entries = rows,
            }, new JsonSerializerOptions { WriteIndented = true }));
        return accurate ? 0 : 1;
    }

    private static double MaxAbsDiff(Tensor a, Tensor b)
    {
        var x = a.ToFloatArray();
        var y = b.ToFloatArray();
        if (x.Length != y.Length) return double.PositiveInfinity;
        double m = 0;
        for (int i = 0; i < x.Length; i++) m = Math.Max(m, Math.Abs(x[i] - y[i]));
        return m;
    }

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
