using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using StepAudio2.Lab.Engine.Cpu;

namespace StepAudio2.Lab.Bench;

/// <summary>One benchmark shape from bench/shapes.json.</summary>
internal sealed record BenchCase(string Name, string Op, int M, int N, int K);

/// <summary>The timing of one case: median and minimum over the measured runs.</summary>
internal sealed record BenchResult(BenchCase Case, double MedianMs, double MinMs, double CpuMs, int Runs, long WeightBytes, long TrafficBytes, int WeightCopies)
{
    /// <summary>GEMV only: median over alternating (GEMV, streaming pass) pairs of GEMV GB/s ÷ streaming GB/s.</summary>
    public double? BwFraction { get; init; }
    /// <summary>GEMV only: median streaming read bandwidth during those pairs.</summary>
    public double? PairedStreamGbps { get; init; }
}

/// <summary>
/// Console benchmark of the CPU GEMM/GEMV kernels and of the machine's streaming read bandwidth.
/// Usage: StepAudio2.Lab.Bench [--shapes bench/shapes.json] [--out results.json] [--threads N] [--only substring] [--portable]
/// --portable times every case a second time on the portable Vector128 path (<see cref="Gemm.ForcePath"/>), right after
/// the best path, and adds portable_* fields to its entry.
/// </summary>
internal static unsafe class Program
{
    // Weights of GEMV cases rotate through copies totalling at least this much, so each call reads from DRAM like decoding does.
    private const long ColdBytes = 384L << 20;
    private const long StreamBytes = 1L << 30;
    private static float* _stream; // the 1 GiB streaming buffer, kept for the paired GEMV measurements

    private static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "model") return ModelBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "make-checkpoint") return RandomCheckpoint.Run(args[1..]);
        if (args.Length > 0 && args[0] == "flow") return FlowBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "hift") return HiftBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "quant") return QuantBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "backends") return BackendBench.Run(args[1..]);
        if (args.Length > 0 && args[0] == "decode-profile") return DecodeProfile.Run(args[1..]);
        if (args.Length > 0 && args[0] == "stream") return QuantBench.RunStream(args[1..]);
        if (args.Length > 0 && args[0] == "mel-kernels") return Mel.MelKernelBench.Run(args[1..]);
        string? shapesPath = null, outPath = null, only = null;
        bool portable = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--shapes": shapesPath = args[++i]; break;
                case "--out": outPath = args[++i]; break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--portable": portable = true; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        shapesPath ??= FindShapes();
        var cases = LoadCases(shapesPath).Where(c => only is null || c.Name.Contains(only, StringComparison.OrdinalIgnoreCase)).ToList();

        var total = Stopwatch.StartNew();
        string loadAvg = LoadAverage.Now();
        var (streamAll, streamOne) = MeasureStream();
        Console.Error.WriteLine($"stream read: {streamAll:F1} GB/s ({Gemm.MaxThreads} threads), {streamOne:F1} GB/s (1 thread)");

        var results = new List<BenchResult>();
        var portableResults = new List<BenchResult>();
        Console.Error.WriteLine($"best path: {Gemm.BestPath}");
        foreach (var c in cases)
        {
            var r = Run(c);
            results.Add(r);
            Report(c.Name, r);
            if (!portable) continue;
            Gemm.ForcePath = GemmPath.Portable;
            try { portableResults.Add(Run(c)); }
            finally { Gemm.ForcePath = null; }
            Report(c.Name + " [portable]", portableResults[^1]);
        }

        static void Report(string name, BenchResult r) =>
            Console.Error.WriteLine($"{name,-28} {r.Case.M,6}x{r.Case.N,6}x{r.Case.K,6}  {r.MedianMs,9:F3} ms (cpu {r.CpuMs,9:F3} ms)  {Gflops(r),7:F1} GFLOP/s  {Gbps(r),6:F1} GB/s" + (r.BwFraction is { } f ? $"  {100 * f,4:F0}% of paired stream ({r.PairedStreamGbps:F1} GB/s)" : ""));

        using var stream = outPath is null ? Console.OpenStandardOutput() : File.Create(outPath);
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        w.WriteStartObject();
        w.WriteStartObject("machine");
        w.WriteString("cpu", CpuModel());
        w.WriteNumber("logical_cores", Environment.ProcessorCount);
        w.WriteNumber("threads", Gemm.MaxThreads);
        w.WriteBoolean("avx2", Avx2.IsSupported);
        w.WriteBoolean("fma", Fma.IsSupported);
        w.WriteBoolean("avx512f", Avx512F.IsSupported);
        w.WriteString("gemm_path", Gemm.BestPath.ToString());
        w.WriteBoolean("vector128_accelerated", Vector128.IsHardwareAccelerated);
        w.WriteString("runtime", RuntimeInformation.FrameworkDescription);
        w.WriteString("os", RuntimeInformation.OSDescription);
        w.WriteString("loadavg_at_start", loadAvg);
        w.WriteEndObject();
        w.WriteNumber("stream_read_gbps", Math.Round(streamAll, 2));
        w.WriteNumber("stream_read_1thread_gbps", Math.Round(streamOne, 2));
        w.WriteNumber("stream_buffer_bytes", StreamBytes);
        w.WriteStartArray("entries");
        for (int ri = 0; ri < results.Count; ri++)
        {
            var r = results[ri];
            w.WriteStartObject();
            w.WriteString("name", r.Case.Name);
            w.WriteString("op", r.Case.Op);
            w.WriteStartArray("shape"); w.WriteNumberValue(r.Case.M); w.WriteNumberValue(r.Case.N); w.WriteNumberValue(r.Case.K); w.WriteEndArray();
            w.WriteNumber("ours_ms", Math.Round(r.MedianMs, 4));
            w.WriteNumber("ours_min_ms", Math.Round(r.MinMs, 4));
            w.WriteNumber("ours_cpu_ms", Math.Round(r.CpuMs, 4));
            w.WriteNumber("runs", r.Runs);
            w.WriteNumber("gflops", Math.Round(Gflops(r), 2));
            w.WriteNumber("gbps", Math.Round(Gbps(r), 2));
            w.WriteNumber("weight_bytes", r.WeightBytes);
            w.WriteNumber("weight_copies", r.WeightCopies);
            if (r.BwFraction is { } f) w.WriteNumber("bw_fraction", Math.Round(f, 3));
            if (r.PairedStreamGbps is { } ps) w.WriteNumber("paired_stream_gbps", Math.Round(ps, 2));
            if (portable)
            {
                var q = portableResults[ri];
                w.WriteNumber("portable_ms", Math.Round(q.MedianMs, 4));
                w.WriteNumber("portable_cpu_ms", Math.Round(q.CpuMs, 4));
                w.WriteNumber("portable_gflops", Math.Round(Gflops(q), 2));
                w.WriteNumber("portable_gbps", Math.Round(Gbps(q), 2));
                if (q.BwFraction is { } qf) w.WriteNumber("portable_bw_fraction", Math.Round(qf, 3));
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteNumber("bench_seconds", Math.Round(total.Elapsed.TotalSeconds, 1));
        w.WriteEndObject();
        return 0;
    }

    private static double Gflops(BenchResult r) => 2.0 * r.Case.M * r.Case.N * r.Case.K / (r.MedianMs * 1e6);
    private static double Gbps(BenchResult r) => r.TrafficBytes / (r.MedianMs * 1e6);

    private static BenchResult Run(BenchCase c)
    {
        bool bf16 = c.Op == "bf16_nt";
        if (!bf16 && c.Op != "f32_nt") throw new InvalidDataException($"unknown op '{c.Op}' in case '{c.Name}'");
        long weightElems = (long)c.N * c.K;
        long weightBytes = weightElems * (bf16 ? 2 : 4);
        int copies = c.M <= 4 ? (int)Math.Max(1, (ColdBytes + weightBytes - 1) / weightBytes) : 1;
        long traffic = weightBytes + 4L * c.M * c.K + 4L * c.M * c.N;

        float* a = Alloc<float>((long)c.M * c.K);
        float* cOut = Alloc<float>((long)c.M * c.N);
        float* bias = Alloc<float>(c.N);
        FillFloats(a, (long)c.M * c.K, 1);
        FillFloats(bias, c.N, 2);
        var weights = new nint[copies];
        for (int i = 0; i < copies; i++)
        {
            if (bf16) { var p = Alloc<ushort>(weightElems); FillBf16(p, weightElems, 10 + (ulong)i); weights[i] = (nint)p; }
            else { var p = Alloc<float>(weightElems); FillFloats(p, weightElems, 10 + (ulong)i); weights[i] = (nint)p; }
        }
        int call = 0;
        void Once()
        {
            nint wgt = weights[call++ % copies];
            if (bf16) Gemm.GemmBf16NT(c.M, c.N, c.K, a, c.K, (ushort*)wgt, c.K, cOut, c.N, bias);
            else Gemm.SgemmNT(c.M, c.N, c.K, a, c.K, (float*)wgt, c.K, cOut, c.N, bias);
        }
        var (median, min, cpu, runs) = Time(Once);
        double? fraction = null, pairedStream = null;
        if (c.M <= 4)
        {
            // The fraction of streaming bandwidth is a ratio of two timings; on a shared machine the load drifts, so time
            // them in alternating pairs (GEMV, then a streaming pass over as many bytes) and take the median pair ratio.
            int pairs = Math.Clamp((int)(400 / Math.Max(2 * median, 1e-3)), 9, 60);
            var ratios = new double[pairs];
            var streams = new double[pairs];
            var sw = new Stopwatch();
            // At least 128 MiB per pass: shorter passes would measure thread wake-up, not the memory.
            long streamFloats = Math.Clamp(traffic, 128L << 20, StreamBytes) / 4 & ~31L;
            long offset = 0; // walk through the 1 GiB buffer so each pass, like each weight copy, comes from DRAM
            for (int i = 0; i < pairs; i++)
            {
                if (offset + streamFloats > StreamBytes / 4) offset = 0;
                sw.Restart(); Once(); double g = traffic / sw.Elapsed.TotalSeconds;
                sw.Restart(); StreamPass(_stream + offset, streamFloats, Gemm.MaxThreads); double st = streamFloats * 4 / sw.Elapsed.TotalSeconds;
                offset += streamFloats;
                ratios[i] = g / st;
                streams[i] = st / 1e9;
            }
            Array.Sort(ratios); Array.Sort(streams);
            fraction = ratios[pairs / 2];
            pairedStream = streams[pairs / 2];
        }
        foreach (var p in weights) NativeMemory.AlignedFree((void*)p);
        NativeMemory.AlignedFree(a); NativeMemory.AlignedFree(cOut); NativeMemory.AlignedFree(bias);
        return new BenchResult(c, median, min, cpu, runs, weightBytes, traffic, copies) { BwFraction = fraction, PairedStreamGbps = pairedStream };
    }

    /// <summary>Warms up, then times enough calls for ~0.6 s (5 to 200 runs); returns the median and minimum wall time
    /// and the mean process CPU time per call, in ms. CPU time is immune to time-slicing on a loaded machine, so with one
    /// thread it measures kernel efficiency even while others compile; with several it also counts spin-waiting.</summary>
    private static (double Median, double Min, double CpuMs, int Runs) Time(Action body)
    {
        var sw = Stopwatch.StartNew();
        body();
        double first = sw.Elapsed.TotalMilliseconds;
        int warm = first > 100 ? 1 : 3;
        for (int i = 0; i < warm; i++) body();
        sw.Restart();
        body();
        double est = sw.Elapsed.TotalMilliseconds;
        int runs = Math.Clamp((int)(600 / Math.Max(est, 1e-3)), 5, 200);
        var times = new double[runs];
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        for (int i = 0; i < runs; i++)
        {
            sw.Restart();
            body();
            times[i] = sw.Elapsed.TotalMilliseconds;
        }
        proc.Refresh();
        double cpuMs = (proc.TotalProcessorTime - cpu0).TotalMilliseconds / runs;
        Array.Sort(times);
        return (times[runs / 2], times[0], cpuMs, runs);
    }

    /// <summary>Streaming read bandwidth: a vectorised sum over a 1 GiB buffer, split over the GEMM thread count and over one thread.</summary>
    private static (double All, double One) MeasureStream()
    {
        long n = StreamBytes / 4;
        _stream = Alloc<float>(n);
        FillFloats(_stream, n, 99);
        double Measure(int threads)
        {
            var (median, _, _, _) = Time(() => StreamPass(_stream, n, threads));
            return StreamBytes / (median * 1e6);
        }
        return (Measure(Gemm.MaxThreads), Measure(1));
    }

    private static double _sink;

    /// <summary>One read pass over buf[0, count) (count a multiple of 32) split over contiguous per-thread ranges.</summary>
    private static void StreamPass(float* buf, long count, int threads)
    {
        var partial = new double[threads];
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            long s = count * t / threads & ~31L, e = t == threads - 1 ? count : count * (t + 1) / threads & ~31L;
            partial[t] = SumRange(buf + s, e - s);
        });
        _sink += partial.Sum(); // keeps the sums observable so the reads cannot be elided
    }

    private static float SumRange(float* p, long count)
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        long i = 0;
        for (; i + 32 <= count; i += 32)
        {
            s0 = Avx.Add(s0, Avx.LoadAlignedVector256(p + i));
            s1 = Avx.Add(s1, Avx.LoadAlignedVector256(p + i + 8));
            s2 = Avx.Add(s2, Avx.LoadAlignedVector256(p + i + 16));
            s3 = Avx.Add(s3, Avx.LoadAlignedVector256(p + i + 24));
        }
        float r = Vector256.Sum(Avx.Add(Avx.Add(s0, s1), Avx.Add(s2, s3)));
        for (; i < count; i++) r += p[i];
        return r;
    }

    private static T* Alloc<T>(long count) where T : unmanaged => (T*)NativeMemory.AlignedAlloc((nuint)(Math.Max(count, 1) * sizeof(T)), 64);

    /// <summary>Uniform [-1, 1) values from a per-chunk xorshift generator, filled in parallel (this also commits the pages).</summary>
    private static void FillFloats(float* p, long count, ulong seed)
    {
        const long Chunk = 1 << 20;
        Parallel.For(0, (count + Chunk - 1) / Chunk, ci =>
        {
            ulong s = seed * 0x9E3779B97F4A7C15UL + (ulong)ci * 0xBF58476D1CE4E5B9UL + 1;
            long end = Math.Min(count, (ci + 1) * Chunk);
            for (long i = ci * Chunk; i < end; i++)
            {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                p[i] = (s >> 40) * (2.0f / (1 << 24)) - 1f;
            }
        });
    }

    private static void FillBf16(ushort* p, long count, ulong seed)
    {
        const long Chunk = 1 << 20;
        Parallel.For(0, (count + Chunk - 1) / Chunk, ci =>
        {
            ulong s = seed * 0x9E3779B97F4A7C15UL + (ulong)ci * 0xBF58476D1CE4E5B9UL + 1;
            long end = Math.Min(count, (ci + 1) * Chunk);
            for (long i = ci * Chunk; i < end; i++)
            {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                p[i] = StepAudio2.Lab.Tensors.BFloat16.FromSingle((s >> 40) * (2.0f / (1 << 24)) - 1f);
            }
        });
    }

    private static List<BenchCase> LoadCases(string path)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(path));
        var list = new List<BenchCase>();
        foreach (var e in doc.RootElement.GetProperty("cases").EnumerateArray())
            list.Add(new BenchCase(e.GetProperty("name").GetString()!, e.GetProperty("op").GetString()!,
                e.GetProperty("m").GetInt32(), e.GetProperty("n").GetInt32(), e.GetProperty("k").GetInt32()));
        return list;
    }

    private static string FindShapes()
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var p = Path.Combine(d.FullName, "bench", "shapes.json");
                if (File.Exists(p)) return p;
            }
        throw new FileNotFoundException("bench/shapes.json not found above the current or the program directory; pass --shapes");
    }

    private static string CpuModel()
    {
        if (!File.Exists("/proc/cpuinfo")) return RuntimeInformation.ProcessArchitecture.ToString();
        var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        return line is null ? "unknown" : line[(line.IndexOf(':') + 1)..].Trim();
    }
}
