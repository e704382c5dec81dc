using System.Diagnostics;
using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using System.Text.Json;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// <c>quant</c>: decode GEMV (m = 1) of bf16, int8 and int4 (MLX affine, group 64) weights side by side at the LLM's
/// shapes (q/o 3584×3584, k/v 512×3584, gate/up 18944×3584, down 3584×18944, lm_head 158720×3584; random weights),
/// GB/s of bytes streamed (packed codes + scales + biases) against the measured streaming read bandwidth, the decode
/// tok/s these GEMVs allow for the whole 28-layer decoder + lm_head, and one prefill GEMM (m = 128) per format.
/// The SIMD level is whatever the process has: run it again with DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 for the
/// portable path (bench/run_quant.sh does both and merges them).
/// Usage: quant [--threads N] [--label NAME] [--seconds S] [--out file.json]
/// </summary>
internal static unsafe class QuantBench
{
    private const int Hidden = 3584, Inter = 18944, Kv = 512, Vocab = 158720, Layers = 28;
    private const long ColdBytes = 384L << 20; // weights of small cases rotate through copies at least this large

    private sealed record Shape(string Name, int N, int K, int PerToken);

    private static readonly Shape[] Shapes =
    [
        new("q_proj/o_proj", Hidden, Hidden, 2 * Layers),
        new("k_proj/v_proj", Kv, Hidden, 2 * Layers),
        new("gate_proj/up_proj", Inter, Hidden, 2 * Layers),
        new("down_proj", Hidden, Inter, Layers),
        new("lm_head", Vocab, Hidden, 1),
    ];

    public static int Run(string[] args)
    {
        string? outPath = null, label = "default";
        double seconds = 1.0;
        string? only = null; // exploration: cases whose "shape format" contains this (never for a tracked result)
        bool gemm = true;
        int rows_ = 1; // GEMV rows of x (decode batch); the per-token totals assume 1
        bool hot = false; // exploration: one copy of the weights (cache-resident for small shapes: the kernel's compute bound)
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--out": outPath = args[++i]; break;
                case "--label": label = args[++i]; break;
                case "--seconds": seconds = double.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--no-gemm": gemm = false; break;
                case "--rows": rows_ = int.Parse(args[++i]); break;
                case "--hot": hot = true; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        string simd = Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported ? "AVX2" : Vector128.IsHardwareAccelerated ? "Vector128" : "scalar";
        string loadAvg = LoadAverage.Now();
        double stream = StreamGbps();
        Console.Error.WriteLine($"[{label}] {simd}, {Gemm.MaxThreads} threads, stream read {stream:F1} GB/s, load {loadAvg}");

        var rows = new List<Dictionary<string, object>>();
        var msPerToken = new Dictionary<string, double> { ["bf16"] = 0, ["int8"] = 0, ["int4"] = 0 };
        var bytesPerToken = new Dictionary<string, double> { ["bf16"] = 0, ["int8"] = 0, ["int4"] = 0 };
        var rng = new Random(15);
        foreach (var s in Shapes)
        {
            var source = RandomBf16(rng, s.N, s.K);
            foreach (var format in new[] { "bf16", "int8", "int4" })
            {
                if (only is not null && !$"{s.Name} {format}".Contains(only, StringComparison.OrdinalIgnoreCase)) continue;
                QuantizedWeight? q = format == "bf16" ? null : AffineQuantizer.Quantize(source, format == "int8" ? 8 : 4, 64);
                long bytes = q?.ByteCount ?? source.ByteCount;
                int copies = hot ? 1 : (int)Math.Clamp(ColdBytes / bytes, 1, 64);
                var ws = Enumerable.Range(0, copies).Select(i => i == 0 ? (source, q) : Copy(source, q)).ToArray();
                var x = RandomF32(rng, rows_, s.K);
                int call = 0;
                var (median, runs) = Time(() =>
                {
                    var (src, qq) = ws[call++ % ws.Length];
                    _ = qq is null ? Ops.Linear(x, src) : Ops.QuantizedLinear(x, qq);
                }, seconds);
                double gbps = bytes / (median * 1e6), cpuMs = _lastCpuMs, coreGbps = bytes / (cpuMs * 1e6);
                msPerToken[format] += median * s.PerToken;
                bytesPerToken[format] += (double)bytes * s.PerToken;
                Console.Error.WriteLine($"[{label}] gemv {s.Name,-18} {s.N,6}x{s.K,6} {format}: {median,8:F3} ms  {gbps,6:F1} GB/s  ({100 * gbps / stream:F0}% of stream); cpu {cpuMs,8:F3} ms, {coreGbps,5:F1} GB per CPU-second; min {_lastMinMs:F3} ms");
                rows.Add(new() { ["op"] = "gemv", ["shape"] = s.Name, ["n"] = s.N, ["k"] = s.K, ["format"] = format, ["median_ms"] = Math.Round(median, 4), ["min_ms"] = Math.Round(_lastMinMs, 4),
                    ["runs"] = runs, ["bytes"] = bytes, ["gbps"] = Math.Round(gbps, 2), ["fraction_of_stream"] = Math.Round(gbps / stream, 3),
                    ["cpu_ms"] = Math.Round(cpuMs, 4), ["gb_per_cpu_second"] = Math.Round(coreGbps, 2) });
                if (gemm && s.Name == "gate_proj/up_proj")
                {
                    var xp = RandomF32(rng, 128, s.K);
                    var (pm, pr) = Time(() => _ = q is null ? Ops.Linear(xp, source) : Ops.QuantizedLinear(xp, q), seconds, minRuns: 2);
                    double gflops = 2.0 * 128 * s.N * s.K / (pm * 1e6);
                    Console.Error.WriteLine($"[{label}] gemm m=128 {s.N}x{s.K} {format}: {pm,8:F2} ms  {gflops,6:F1} GFLOP/s");
                    rows.Add(new() { ["op"] = "gemm", ["shape"] = s.Name, ["m"] = 128, ["n"] = s.N, ["k"] = s.K, ["format"] = format,
                        ["median_ms"] = Math.Round(pm, 3), ["runs"] = pr, ["gflops"] = Math.Round(gflops, 1) });
                }
            }
        }
        var summary = new List<Dictionary<string, object>>();
        foreach (var f in new[] { "bf16", "int8", "int4" })
        {
            if (only is not null) break; // a partial run has no per-token total
            double tokS = 1000 / msPerToken[f], bound = stream * 1e9 / bytesPerToken[f];
            Console.Error.WriteLine($"[{label}] decode {f}: {bytesPerToken[f] / 1e9:F2} GB/token, GEMVs {msPerToken[f]:F0} ms/token → {tokS:F2} tok/s; bandwidth bound {bound:F2} tok/s ({100 * tokS / bound:F0}%)");
            summary.Add(new() { ["format"] = f, ["gb_per_token"] = Math.Round(bytesPerToken[f] / 1e9, 3), ["gemv_ms_per_token"] = Math.Round(msPerToken[f], 1),
                ["tok_s_from_gemvs"] = Math.Round(tokS, 3), ["tok_s_bandwidth_bound"] = Math.Round(bound, 3), ["fraction_of_bound"] = Math.Round(tokS / bound, 3),
                ["speedup_vs_bf16"] = Math.Round(msPerToken["bf16"] / msPerToken[f], 2) });
        }
        var doc = new Dictionary<string, object>
        {
            ["label"] = label!, ["simd"] = simd, ["threads"] = Gemm.MaxThreads, ["stream_gbps"] = Math.Round(stream, 2), ["loadavg_at_start"] = loadAvg,
            ["loadavg_at_end"] = LoadAverage.Now(),
            ["runtime"] = RuntimeInformation.FrameworkDescription, ["group_size"] = 64, ["cases"] = rows, ["decode"] = summary,
        };
        string json = JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json + "\n");
        return 0;
    }

    /// <summary><c>stream [--threads N]</c>: the streaming read bandwidth alone, as one JSON line (bench/run_quant_full.sh
    /// measures it beside each full-size decode, in the same load).</summary>
    public static int RunStream(string[] args)
    {
        for (int i = 0; i < args.Length; i++)
        {
            if (args[i] == "--threads" && i + 1 < args.Length) Gemm.MaxThreads = int.Parse(args[++i]);
            else { Console.Error.WriteLine($"unknown argument {args[i]}"); return 2; }
        }
        string load = LoadAverage.Now();
        double gbps = StreamGbps();
        Console.WriteLine(JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["stream_read_gbps"] = Math.Round(gbps, 2), ["threads"] = Gemm.MaxThreads, ["loadavg"] = load,
        }));
        return 0;
    }

    private static (Tensor, QuantizedWeight?) Copy(Tensor source, QuantizedWeight? q)
    {
        if (q is null) return (Clone(source), null);
        return (source, QuantizedWeight.Create(Clone(q.Weight), Clone(q.Scales), Clone(q.Biases), q.Bits, q.GroupSize));
    }

    private static Tensor Clone(Tensor t)
    {
        var c = Tensor.Zeros(t.DType, t.Shape.ToArray());
        new ReadOnlySpan<byte>(t.Storage.Pointer + t.Offset * t.DType.SizeOf(), (int)t.ByteCount).CopyTo(new Span<byte>(c.Storage.Pointer, (int)t.ByteCount));
        return c;
    }

    /// <summary>Process CPU milliseconds per call (all threads) of the last <see cref="Time"/>: unlike wall time it does
    /// not count slices lost to other engineers' builds, so bytes per CPU-second tells a kernel's own speed per core. It
    /// does count the thread pool's spin-waiting between calls and JIT background work, so it understates short calls.</summary>
    private static double _lastCpuMs;

    /// <summary>Median wall time (ms) of <paramref name="f"/> over at least <paramref name="minRuns"/> runs and about <paramref name="seconds"/> s, after one warm-up.</summary>
    /// <summary>Fastest run of the last <see cref="Time"/> call (on a shared, noisy machine the least disturbed one).</summary>
    private static double _lastMinMs;

    private static (double Median, int Runs) Time(Action f, double seconds, int minRuns = 5)
    {
        f();
        var times = new List<double>();
        var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
        var total = Stopwatch.StartNew();
        while (times.Count < minRuns || (total.Elapsed.TotalSeconds < seconds && times.Count < 2000))
        {
            var sw = Stopwatch.StartNew();
            f();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        _lastCpuMs = (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalMilliseconds / times.Count;
        times.Sort();
        _lastMinMs = times[0];
        return (times[times.Count / 2], times.Count);
    }

    private static Tensor RandomBf16(Random rng, int n, int k)
    {
        var bits = new ushort[(long)n * k];
        // values of magnitude ~2^-7..2^0 with random signs and mantissas: typical LLM weight scale, no NaN/Inf
        Parallel.For(0, n, j =>
        {
            var r = new Random(rng.GetHashCode() ^ j * 7919);
            for (int i = 0; i < k; i++) bits[(long)j * k + i] = (ushort)((r.Next(2) << 15) | ((120 + r.Next(7)) << 7) | r.Next(128));
        });
        return Tensor.FromBFloat16Bits(bits, n, k);
    }

    private static Tensor RandomF32(Random rng, int m, int k)
    {
        var v = new float[m * k];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(v, m, k);
    }

    /// <summary>Streaming read bandwidth over 1 GiB with every thread (portable: TensorPrimitives.Sum).</summary>
    private static double StreamGbps()
    {
        const long bytes = 1L << 30;
        var buf = new float[bytes / 4];
        buf.AsSpan().Fill(1f);
        int threads = Gemm.MaxThreads;
        double sink = 0;
        var (median, _) = Time(() =>
        {
            var partial = new double[threads];
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                long s = buf.LongLength * t / threads, e = buf.LongLength * (t + 1) / threads;
                partial[t] = TensorPrimitives.Sum(new ReadOnlySpan<float>(buf, (int)s, (int)(e - s)));
            });
            sink += partial.Sum();
        }, 2.0);
        GC.KeepAlive(sink);
        return bytes / (median * 1e6);
    }
}
