using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// Model-level benchmarks: the mel of 30 s, one full-size encoder block (1280-d, 1500 frames, bf16 weights in place),
/// and the whole full-size encoder (32 blocks, random bf16 weights) on 25 s of real speech with peak RSS.
/// Usage: StepAudio2.Lab.Bench model [--out file.json] [--only name] [--threads N]. Prints JSON to stdout or --out.
/// <c>--only encoder_profile</c> (exactly) times one encoder block op by op instead.
/// </summary>
internal static class ModelBench
{
    private static readonly AudioEncoderConfig FullEncoder = new(128, 1500, 1280, 20, 32, 4096, 3584, 3, 2);

    public static int Run(string[] args)
    {
        string? outPath = null, only = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out": outPath = args[++i]; break;
                case "--only": only = args[++i]; break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        var entries = new List<Dictionary<string, object?>>();
        bool Want(string name) => only is null || name.Contains(only, StringComparison.OrdinalIgnoreCase);

        if (Want("mel_30s")) entries.Add(Mel30s());
        if (Want("encoder_layer")) entries.Add(EncoderLayer());
        if (Want("encoder_full")) entries.Add(EncoderFull());
        if (only == "encoder_profile") entries.Add(EncoderProfile());

        var json = JsonSerializer.Serialize(new { suite = "model", threads = Gemm.MaxThreads, backend = Ops.Backend.Describe(), entries },
            new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json);
        return 0;
    }

    private static float[] Speech(int seconds)
    {
        // real speech from ../shared/audio, concatenated and repeated to the wanted length
        var dir = FindShared();
        var parts = new[] { "mmau_test.wav", "multi-turn-round1-zh.wav", "music_playing_followed_by_a_woman_speaking.wav" }
            .Select(f => AudioInput.Load16k(Path.Combine(dir, f))).SelectMany(x => x).ToArray();
        var wav = new float[seconds * 16000];
        for (int i = 0; i < wav.Length; i++) wav[i] = parts[i % parts.Length];
        return wav;
    }

    private static string FindShared()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StepAudio2.Lab.sln"))) dir = dir.Parent;
        return Path.GetFullPath(Path.Combine(dir?.FullName ?? ".", "..", "shared", "audio"));
    }

    private static (double Median, double Min) Time(Action action, int runs, int warmup = 1)
    {
        for (int i = 0; i < warmup; i++) action();
        var times = new List<double>();
        for (int i = 0; i < runs; i++)
        {
            var sw = Stopwatch.StartNew();
            action();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        return (times[times.Count / 2], times[0]);
    }

    private static Dictionary<string, object?> Mel30s()
    {
        var wav = Speech(30);
        var (median, min) = Time(() => AudioInput.Prepare([wav]), runs: 10, warmup: 2);
        Console.Error.WriteLine($"mel_30s: {median:F1} ms (min {min:F1})");
        return new() { ["name"] = "mel_30s", ["ours_ms"] = median, ["ours_min_ms"] = min, ["detail"] = "30 s real speech, 2 chunks (25 s + 5 s), 128-bin log-mel" };
    }

    /// <summary>An in-memory checkpoint of random bf16 weights with the official keys and shapes.</summary>
    private sealed class RandomWeights : ITensorSource
    {
        private readonly Dictionary<string, Tensor> _t = new();
        private readonly List<TensorInfo> _infos = [];
        private readonly Random _rng = new(1234);

        public void Add(string name, params int[] shape)
        {
            long n = Tensor.CountElements(shape);
            var bits = new ushort[n];
            float scale = shape.Length >= 2 ? 1f / MathF.Sqrt(shape[1] * (shape.Length == 3 ? shape[2] : 1)) : 0.05f;
            bool norm = name.EndsWith("ln.weight") || name.EndsWith("norm.weight");
            for (long i = 0; i < n; i++)
                bits[i] = BFloat16.FromSingle(norm ? 1f + 0.05f * (float)(_rng.NextDouble() - 0.5) : scale * (float)(_rng.NextDouble() * 2 - 1) * 1.7f);
            var t = Tensor.FromBFloat16Bits(bits, shape);
            _t[name] = t;
            _infos.Add(new TensorInfo(name, DType.BF16, shape, t.ByteCount, "random"));
        }

        public string Path => "random-weights";
        public IReadOnlyList<TensorInfo> Tensors => _infos;
        public bool Contains(string name) => _t.ContainsKey(name);
        public Tensor Get(string name) => _t[name];
        public void Dispose() { }
    }

    private static Dictionary<string, object?> EncoderLayer()
    {
        var w = new RandomWeights();
        foreach (var key in RandomCheckpoint.EncoderBlockKeys("encoder.blocks.0")) w.Add(key, RandomCheckpoint.EncoderShapeOf(key, FullEncoder));
        var block = new ResidualAttentionBlock(new Weights(w), "encoder.blocks.0", 1280, 20);
        var rng = new Random(7);
        var x = Tensor.FromArray(Enumerable.Range(0, 1500 * 1280).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 1, 1500, 1280);
        var mask = AudioEncoder.PaddingMaskBias([3000], 3000);
        var (median, min) = Time(() => block.Forward(x, mask, null), runs: 5);
        Console.Error.WriteLine($"encoder_layer: {median:F1} ms (min {min:F1})");
        return new() { ["name"] = "encoder_layer", ["ours_ms"] = median, ["ours_min_ms"] = min, ["detail"] = "one encoder block, [1,1500,1280], 20 heads, bf16 weights used in place, f32 math" };
    }

    /// <summary>
    /// <c>--only encoder_profile</c> (not part of the default run): where one full-size encoder block's time goes on 25 s
    /// of input ([1, 1250, 1280], 20 heads, bf16 weights), op by op as <see cref="ResidualAttentionBlock.Forward"/> runs
    /// them, over a few blocks after a warm-up block: wall ms per block for each op type and the linears' GFLOP/s.
    /// </summary>
    private static Dictionary<string, object?> EncoderProfile()
    {
        const int blocks = 3, t = 1250, d = 1280, heads = 20, hd = d / heads;
        var w = new RandomWeights();
        for (int i = 0; i < blocks; i++)
            foreach (var key in RandomCheckpoint.EncoderBlockKeys($"encoder.blocks.{i}")) w.Add(key, RandomCheckpoint.EncoderShapeOf(key, FullEncoder));
        var weights = new Weights(w);
        var layers = Enumerable.Range(0, blocks).Select(i => new ResidualAttentionBlock(weights, $"encoder.blocks.{i}", d, heads)).ToArray();
        var rng = new Random(7);
        var x0 = Tensor.FromArray(Enumerable.Range(0, t * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 1, t, d);
        var mask = AudioEncoder.PaddingMaskBias([2 * t - 2], 2 * t);
        var timer = new OpTimer { Recording = false };
        var proc = Process.GetCurrentProcess();
        Tensor Timed(string name, Func<Tensor> f) => timer.Time(name, f);
        Tensor Block(ResidualAttentionBlock blk, Tensor x)
        {
            var a = blk.Attn;
            float scale = MathF.Pow(hd, -0.25f);
            var h = Timed("attn_ln", () => blk.AttnLn.Forward(x, null));
            var q = Timed("linear_qkv", () => a.Query.Forward(h, null));
            var k = Timed("linear_qkv", () => a.Key.Forward(h, null));
            var v = Timed("linear_qkv", () => a.Value.Forward(h, null));
            q = Timed("qk_scale", () => Ops.Multiply(q, scale)).Reshape(1, t, heads, hd).Permute(0, 2, 1, 3);
            k = Timed("qk_scale", () => Ops.Multiply(k, scale)).Reshape(1, t, heads, hd).Permute(0, 2, 1, 3);
            v = v.Reshape(1, t, heads, hd).Permute(0, 2, 1, 3);
            var o = Timed("sdpa", () => Ops.ScaledDotProductAttention(q, k, v, 1f, mask, causal: false));
            o = Timed("o_layout", () => o.Permute(0, 2, 1, 3).Reshape(1, t, d));
            var y = Timed("linear_out", () => a.Out.Forward(o, null));
            x = Timed("add", () => Ops.Add(x, y));
            h = Timed("mlp_ln", () => blk.MlpLn.Forward(x, null));
            h = Timed("linear_mlp0", () => blk.Mlp0.Forward(h, null));
            h = Timed("gelu", () => Ops.Gelu(h));
            h = Timed("linear_mlp2", () => blk.Mlp2.Forward(h, null));
            return Timed("add", () => Ops.Add(x, h));
        }
        Block(layers[0], x0); // warm-up: JIT, workspaces
        timer.Recording = true;
        long gc0 = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2);
        var pause0 = GC.GetTotalPauseDuration();
        // minflt, field 10 of /proc/self/stat (counted after the ")" that ends the command name)
        static long MinorFaults() => File.Exists("/proc/self/stat") ? long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[^1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7]) : 0;
        proc.Refresh();
        var sys0 = proc.PrivilegedProcessorTime; var user0 = proc.UserProcessorTime; long flt0 = MinorFaults();
        var sw = Stopwatch.StartNew();
        var x1 = x0;
        foreach (var blk in layers) x1 = Block(blk, x1);
        double totalMs = sw.Elapsed.TotalMilliseconds / blocks;
        proc.Refresh();
        double sysMs = (proc.PrivilegedProcessorTime - sys0).TotalMilliseconds / blocks, userMs = (proc.UserProcessorTime - user0).TotalMilliseconds / blocks;
        long faults = (MinorFaults() - flt0) / blocks;
        double pauseMs = (GC.GetTotalPauseDuration() - pause0).TotalMilliseconds / blocks;
        long gcs = GC.CollectionCount(0) + GC.CollectionCount(1) + GC.CollectionCount(2) - gc0;
        double linFlop = 2.0 * t * d * d * 4 + 2.0 * 2 * t * d * 4 * d, attFlop = 2.0 * 2 * t * t * d;
        var ops = timer.Entries.ToDictionary(e => e.Name, e => e.Entry.WallMs / blocks);
        var opsCpu = timer.Entries.ToDictionary(e => e.Name, e => e.Entry.CpuMs / blocks);
        Console.Error.WriteLine($"encoder_profile: {totalMs:F0} ms per block (x32 = {totalMs * 32 / 1000:F1} s), GC pauses {pauseMs:F0} ms/block ({gcs} collections), load {LoadAverage.Now()}");
        Console.Error.WriteLine($"  per block: user {userMs:F0} ms, sys {sysMs:F0} ms CPU, {faults} minor page faults");
        foreach (var (n, ms) in ops) Console.Error.WriteLine($"  {n,-12} {ms,8:F1} ms  {100 * ms / totalMs,5:F1} %   CPU {opsCpu[n],7:F1} ms");
        double linMs = ops.Where(p => p.Key.StartsWith("linear")).Sum(p => p.Value);
        Console.Error.WriteLine($"  linears {linFlop / linMs / 1e6:F0} GFLOP/s, sdpa {attFlop / ops["sdpa"] / 1e6:F0} GFLOP/s");
        return new() { ["name"] = "encoder_profile", ["block_ms"] = totalMs, ["gc_pause_ms"] = pauseMs, ["user_cpu_ms"] = userMs, ["sys_cpu_ms"] = sysMs, ["minor_faults"] = faults, ["ops_ms"] = ops, ["ops_cpu_ms"] = opsCpu };
    }

    private static Dictionary<string, object?> EncoderFull()
    {
        var sw = Stopwatch.StartNew();
        var w = new RandomWeights();
        var c = FullEncoder;
        foreach (var key in RandomCheckpoint.EncoderKeys(c)) w.Add(key, RandomCheckpoint.EncoderShapeOf(key, c));
        var encoder = new AudioEncoder(new Weights(w), c);
        double buildS = sw.Elapsed.TotalSeconds;
        long weightBytes = w.Tensors.Sum(t => t.ByteLength);

        var prepared = AudioInput.Prepare([Speech(25)]);
        var proc = Process.GetCurrentProcess();
        var cpu0 = proc.TotalProcessorTime;
        sw.Restart();
        var (output, lengths) = encoder.Forward(prepared.Batch.Mels, prepared.MelLengths);
        double runS = sw.Elapsed.TotalSeconds;
        proc.Refresh();
        double cpuS = (proc.TotalProcessorTime - cpu0).TotalSeconds; // both threads' CPU time: on a busy machine, wall time alone says little
        long peak = Diagnostics.ProcessMemory.PeakRssBytes();
        // a fingerprint of the output bits, so kernel changes that should not change results can be checked end to end
        string sha = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(output.ToFloatArray().AsSpan())))[..16];
        Console.Error.WriteLine($"encoder_full: output sha256 {sha}, process CPU {cpuS:F1} s, load {LoadAverage.Now()}");
        Console.Error.WriteLine($"encoder_full: 25 s of audio through 32 blocks in {runS:F1} s; output {Tensor.ShapeString(output.Shape)}; peak RSS {peak / 1e9:F2} GB (weights {weightBytes / 1e9:F2} GB bf16)");
        return new()
        {
            ["name"] = "encoder_full", ["ours_ms"] = runS * 1000, ["weights_build_s"] = buildS, ["peak_rss_bytes"] = peak,
            ["weight_bytes"] = weightBytes, ["output_shape"] = output.Shape, ["valid_frames"] = lengths[0], ["output_sha256_16"] = sha, ["cpu_s"] = cpuS,
            ["detail"] = "full-size encoder (32 blocks, 1280-d, 20 heads) on 25 s of real speech, random bf16 weights",
        };
    }
}
