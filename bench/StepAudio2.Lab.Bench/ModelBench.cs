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
        sw.Restart();
        var (output, lengths) = encoder.Forward(prepared.Batch.Mels, prepared.MelLengths);
        double runS = sw.Elapsed.TotalSeconds;
        long peak = Diagnostics.ProcessMemory.PeakRssBytes();
        Console.Error.WriteLine($"encoder_full: 25 s of audio through 32 blocks in {runS:F1} s; output {Tensor.ShapeString(output.Shape)}; peak RSS {peak / 1e9:F2} GB (weights {weightBytes / 1e9:F2} GB bf16)");
        return new()
        {
            ["name"] = "encoder_full", ["ours_ms"] = runS * 1000, ["weights_build_s"] = buildS, ["peak_rss_bytes"] = peak,
            ["weight_bytes"] = weightBytes, ["output_shape"] = output.Shape, ["valid_frames"] = lengths[0],
            ["detail"] = "full-size encoder (32 blocks, 1280-d, 20 heads) on 25 s of real speech, random bf16 weights",
        };
    }
}
