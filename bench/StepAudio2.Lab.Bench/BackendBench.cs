using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Mlx;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// <c>backends</c>: the same ops through <see cref="IBackend"/> on several backends side by side, alternating per case
/// so both see the same background load: the GEMM/GEMV shapes of bench/shapes.json (f32 and bf16 weights), an int4
/// quantized GEMV (MLX affine, group 64), and the encoder's and decoder's other hot ops (layer norm, attention over
/// 1500 frames, conv1d, one decode step's attention over a 1000-token cache). Inputs are uploaded once before timing;
/// a device backend's result is evaluated (MLX <c>eval</c>), not downloaded, so the numbers are compute, not transfer.
/// Usage: backends [--backends cpu,mlx] [--threads N] [--seconds S] [--only substring] [--out file.json]
/// </summary>
internal static class BackendBench
{
    private sealed record Case(string Name, string Kind, Func<IBackend, Func<Tensor>> Prepare);

    public static int Run(string[] args)
    {
        string? outPath = null, only = null;
        string[] names = ["cpu", "mlx"];
        double seconds = 1.0;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--backends": names = args[++i].Split(','); break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--seconds": seconds = double.Parse(args[++i]); break;
                case "--only": only = args[++i]; break;
                case "--out": outPath = args[++i]; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        var backends = names.Select(Backends.Get).ToArray();
        string loadAvg = LoadAverage.Now();
        foreach (var b in backends) Console.Error.WriteLine($"{b.Name}: {b.Describe()}");

        // streamed: each case makes its weights when reached, so only one case's weights are alive at a time
        var cases = Cases().Where(c => only is null || c.Name.Contains(only, StringComparison.OrdinalIgnoreCase));
        var rows = new List<Dictionary<string, object>>();
        var total = Stopwatch.StartNew();
        foreach (var c in cases)
        {
            var row = new Dictionary<string, object> { ["case"] = c.Name, ["kind"] = c.Kind };
            var runs = backends.Select(b => (Backend: b, Step: c.Prepare(b))).ToArray();
            foreach (var (b, step) in runs) Sync(b, step()); // warm-up: weight upload/layout, MLX graph caches
            var times = runs.Select(_ => new List<double>()).ToArray();
            var sw = Stopwatch.StartNew();
            // alternate the backends, at least 3 timed calls each, until the time budget of the case is used
            while (times.Any(t => t.Count < 3) || sw.Elapsed.TotalSeconds < seconds * runs.Length)
            {
                for (int i = 0; i < runs.Length; i++)
                {
                    var t0 = Stopwatch.GetTimestamp();
                    Sync(runs[i].Backend, runs[i].Step());
                    times[i].Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                }
                if (times[0].Count >= 200) break;
            }
            for (int i = 0; i < runs.Length; i++)
            {
                var sorted = times[i].Order().ToArray();
                row[$"{runs[i].Backend.Name}_median_ms"] = Math.Round(sorted[sorted.Length / 2], 4);
                row[$"{runs[i].Backend.Name}_min_ms"] = Math.Round(sorted[0], 4);
                row[$"{runs[i].Backend.Name}_runs"] = sorted.Length;
            }
            if (runs.Length == 2)
                row[$"{runs[1].Backend.Name}_over_{runs[0].Backend.Name}"] = Math.Round((double)row[$"{runs[1].Backend.Name}_median_ms"] / (double)row[$"{runs[0].Backend.Name}_median_ms"], 3);
            rows.Add(row);
            Console.Error.WriteLine(c.Name.PadRight(34) + string.Join("  ", runs.Select(r => $"{r.Backend.Name} {row[$"{r.Backend.Name}_median_ms"],9:F2} ms")));
            GC.Collect();
        }
        var doc = new Dictionary<string, object>
        {
            ["benchmark"] = "ops through IBackend, backends side by side (bench/run_mlx.sh)",
            ["backends"] = backends.Select(b => b.Describe()).ToArray(),
            ["threads"] = Gemm.MaxThreads,
            ["loadavg_at_start"] = loadAvg,
            ["loadavg_at_end"] = LoadAverage.Now(),
            ["runtime"] = System.Runtime.InteropServices.RuntimeInformation.FrameworkDescription,
            ["wall_s"] = Math.Round(total.Elapsed.TotalSeconds, 1),
            ["cases"] = rows,
        };
        string json = JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json);
        else File.WriteAllText(outPath, json + "\n");
        return 0;
    }

    /// <summary>Waits for a backend's result: MLX evaluates its graph; the CPU backend is already done.</summary>
    private static void Sync(IBackend b, Tensor y)
    {
        if (b is MlxBackend mlx) mlx.Eval(y);
    }

    private static Tensor Rand(int seed, params int[] shape)
    {
        var r = new Random(seed);
        var d = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = (float)(r.NextDouble() * 2 - 1) * 0.05f;
        return Tensor.FromArray(d, shape);
    }

    private static Tensor Bf16(Tensor f32)
    {
        var f = f32.ToFloatArray();
        var bits = new ushort[f.Length];
        for (int i = 0; i < f.Length; i++) bits[i] = (ushort)(BitConverter.SingleToUInt32Bits(f[i]) >> 16);
        return Tensor.FromBFloat16Bits(bits, f32.Shape);
    }

    private static IEnumerable<Case> Cases()
    {
        string shapes = Path.Combine(AppContext.BaseDirectory, "..", "..", "bench", "shapes.json");
        if (!File.Exists(shapes)) shapes = Path.Combine("bench", "shapes.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(shapes));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!, op = c.GetProperty("op").GetString()!;
            int m = c.GetProperty("m").GetInt32(), n = c.GetProperty("n").GetInt32(), k = c.GetProperty("k").GetInt32();
            if ((long)n * k > 100_000_000) continue; // lm_head: 2.3 GB as f32 per backend copy does not fit beside the others
            var w = Rand(1, n, k);
            if (op == "bf16_nt") w = Bf16(w);
            var x = Rand(2, m, k);
            yield return new Case(name, "linear", b => { var xb = b.FromHost(x); return () => b.Linear(xb, w, null); });
        }
        {
            var w = Bf16(Rand(3, 18944, 3584));
            var q = AffineQuantizer.Quantize(w, 4, 64);
            var x = Rand(4, 1, 3584);
            yield return new Case("llm.gate/up gemv int4 g64", "quantized_matmul", b => { var xb = b.FromHost(x); return () => b.QuantizedMatmul(xb, q, null); });
        }
        {
            var x = Rand(5, 1, 1500, 1280); var g = Rand(6, 1280); var be = Rand(7, 1280);
            yield return new Case("enc.layer_norm [1500, 1280]", "layer_norm", b => { var xb = b.FromHost(x); return () => b.LayerNorm(xb, g, be, 1e-5f); });
        }
        {
            var q = Rand(8, 1, 20, 1500, 64); var k = Rand(9, 1, 20, 1500, 64); var v = Rand(10, 1, 20, 1500, 64);
            yield return new Case("enc.attention 20×1500×64", "sdpa", b =>
            {
                var (qb, kb, vb) = (b.FromHost(q), b.FromHost(k), b.FromHost(v));
                return () => b.ScaledDotProductAttention(qb, kb, vb, 0.125f, null, false, null);
            });
        }
        {
            var q = Rand(11, 1, 28, 1, 128); var k = Rand(12, 1, 4, 1000, 128); var v = Rand(13, 1, 4, 1000, 128);
            yield return new Case("llm.decode attention 28/4×1000×128", "sdpa", b =>
            {
                var (qb, kb, vb) = (b.FromHost(q), b.FromHost(k), b.FromHost(v));
                return () => b.ScaledDotProductAttention(qb, kb, vb, 0.088f, null, true, null);
            });
        }
        {
            var x = Rand(14, 1, 128, 3000); var w = Rand(15, 1280, 128, 3); var bias = Rand(16, 1280);
            yield return new Case("enc.conv1 128→1280 k3 T3000", "conv1d", b => { var xb = b.FromHost(x); return () => b.Conv1d(xb, w, bias, 1, 1, 1, 1); });
        }
        {
            var x = Rand(17, 1, 1500, 1280);
            yield return new Case("gelu [1500, 1280]", "unary", b => { var xb = b.FromHost(x); return () => b.Unary(UnaryOp.Gelu, xb, 0); });
        }
        {
            var x = Rand(18, 1, 28, 1, 128);
            yield return new Case("llm.rope 28×1×128 @ 1000", "rope", b => { var xb = b.FromHost(x); return () => b.Rope(xb, 1000, 1e6f); });
        }
    }
}
