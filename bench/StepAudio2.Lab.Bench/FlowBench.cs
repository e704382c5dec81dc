using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// Full-size flow benchmark: the shapes of the real token2wav/flow.yaml (6+4 conformer layers at 512, DiT 16 blocks at
/// 512, 10 Euler steps with CFG as a batch of two) with random f32 weights built in memory under the official keys,
/// turning N codes (default 100 = 4 s) with a P-token prompt (default 75 = 3 s) into mel. Reports seconds per CFM step,
/// the encoder, the total and peak RSS.
/// Usage: StepAudio2.Lab.Bench flow [--out file.json] [--codes N] [--prompt P] [--steps K] [--threads T] [--yaml flow.yaml]
/// </summary>
internal static class FlowBench
{
    public static int Run(string[] args)
    {
        string? outPath = null, yaml = null;
        int codes = 100, prompt = 75, steps = 10;
        bool profile = false;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out": outPath = args[++i]; break;
                case "--codes": codes = int.Parse(args[++i]); break;
                case "--prompt": prompt = int.Parse(args[++i]); break;
                case "--steps": steps = int.Parse(args[++i]); break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--yaml": yaml = args[++i]; break;
                case "--profile": profile = true; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        yaml ??= Path.Combine(FindRepo(), "..", "shared", "models", "step-audio-2-mini", "token2wav", "flow.yaml");
        yaml = Path.GetFullPath(yaml);
        var config = FlowConfig.Load(yaml);

        var build = Stopwatch.StartNew();
        var weights = RandomFlowWeights(config);
        var flow = Flow.Load(weights, config);
        double buildS = build.Elapsed.TotalSeconds;
        Console.Error.WriteLine($"flow: {weights.Tensors.Count} random f32 tensors ({weights.Bytes / 1e6:F0} MB) built and loaded in {buildS:F1} s");

        if (profile) return Profile(flow, config.TokenMelRatio * (codes + prompt));
        var rng = new Random(7);
        var codeIds = Enumerable.Range(0, codes).Select(_ => rng.Next(config.VocabSize)).ToArray();
        var promptIds = Enumerable.Range(0, prompt).Select(_ => rng.Next(config.VocabSize)).ToArray();
        int r = config.TokenMelRatio;
        var promptMel = Tensor.FromArray(Enumerable.Range(0, r * prompt * config.OutputSize).Select(_ => (float)(rng.NextDouble() * 8 - 10)).ToArray(), 1, r * prompt, config.OutputSize);
        var xvector = Tensor.FromArray(Enumerable.Range(0, config.SpkEmbedDim).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 1, config.SpkEmbedDim);

        var stepTimes = new List<double>();
        var stepCpu = new List<double>();
        var proc = Process.GetCurrentProcess();
        string loadAvg = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
        var last = TimeSpan.Zero;
        var lastCpu = proc.TotalProcessorTime;
        var progress = new SyncProgress(p =>
        {
            proc.Refresh();
            var cpu = proc.TotalProcessorTime;
            stepTimes.Add((p.Elapsed - last).TotalSeconds);
            stepCpu.Add((cpu - lastCpu).TotalSeconds);
            last = p.Elapsed;
            lastCpu = cpu;
            Console.Error.WriteLine($"  step {p.Step}/{p.Steps}: {stepTimes[^1]:F2} s wall, {stepCpu[^1]:F2} s cpu ({p.Frames} frames, batch 2)");
        });
        proc.Refresh();
        var cpuStart = proc.TotalProcessorTime;
        var total = Stopwatch.StartNew();
        var mel = flow.Generate(codeIds, promptIds, promptMel, xvector, seed: 1, progress: progress, steps: steps);
        double totalS = total.Elapsed.TotalSeconds;
        proc.Refresh();
        double totalCpuS = (proc.TotalProcessorTime - cpuStart).TotalSeconds;
        double cfmS = stepTimes.Sum(), encoderS = totalS - cfmS;
        long peak = Diagnostics.ProcessMemory.PeakRssBytes();
        bool finite = mel.ToFloatArray().All(float.IsFinite);
        double audioS = codes / 25.0;
        var sorted = stepTimes.OrderBy(x => x).ToList();
        Console.Error.WriteLine($"flow: total {totalS:F2} s for {audioS:F1} s of audio (RTF {totalS / audioS:F2}), encoder+rest {encoderS:F2} s, " +
            $"median step {sorted[sorted.Count / 2]:F2} s, cpu {totalCpuS:F1} s, peak RSS {peak / 1e9:F2} GB, mel {Tensor.ShapeString(mel.Shape)}{(finite ? "" : " (non-finite values!)")}");

        var result = new Dictionary<string, object?>
        {
            ["suite"] = "flow",
            ["backend"] = Ops.Backend.Describe(),
            ["threads"] = Gemm.MaxThreads,
            ["logical_cores"] = Environment.ProcessorCount,
            ["config"] = yaml,
            ["codes"] = codes,
            ["prompt_tokens"] = prompt,
            ["frames"] = r * (codes + prompt),
            ["cfm_steps"] = steps,
            ["audio_seconds"] = audioS,
            ["weights_build_s"] = buildS,
            ["weight_bytes"] = weights.Bytes,
            ["total_s"] = totalS,
            ["encoder_and_rest_s"] = encoderS,
            ["cfm_s"] = cfmS,
            ["step_s"] = stepTimes,
            ["step_median_s"] = sorted[sorted.Count / 2],
            ["step_cpu_s"] = stepCpu,
            ["total_cpu_s"] = totalCpuS,
            ["loadavg_at_start"] = loadAvg,
            ["rtf"] = totalS / audioS,
            ["peak_rss_bytes"] = peak,
            ["mel_shape"] = mel.Shape,
            ["mel_finite"] = finite,
            ["detail"] = "full-size flow (flow.yaml shapes: conformer 6+4 layers at 512, DiT 16 blocks at 512, 8 heads × 64), random f32 weights " +
                         "in memory, CFG as a batch of two; N codes + P prompt tokens → 2(P+N) frames, mel of the last 2N",
        };
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json);
        return finite ? 0 : 1;
    }

    /// <summary>CPU seconds of each part of one DiT block on [2, T, 512] (median of 5), to see where a CFM step goes.</summary>
    private static int Profile(Flow flow, int frames)
    {
        var block = flow.Decoder.Estimator.Blocks[0];
        int d = flow.Config.Decoder.Estimator.HiddenSize;
        var rng = new Random(3);
        var x = Tensor.FromArray(Enumerable.Range(0, 2 * frames * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 2, frames, d);
        var c = Tensor.FromArray(Enumerable.Range(0, 2 * d).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 2, d);
        var proc = Process.GetCurrentProcess();
        void Time(string name, Action a)
        {
            a();
            var cpu = new List<double>();
            var wall = new List<double>();
            for (int i = 0; i < 5; i++)
            {
                proc.Refresh();
                var c0 = proc.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                a();
                wall.Add(sw.Elapsed.TotalMilliseconds);
                proc.Refresh();
                cpu.Add((proc.TotalProcessorTime - c0).TotalMilliseconds);
            }
            cpu.Sort(); wall.Sort();
            Console.Error.WriteLine($"{name,-12} {wall[2],8:F1} ms wall {cpu[2],8:F1} ms cpu");
        }
        Time("block", () => block.Forward(Tensor.FromArray(x.ToFloatArray(), x.Shape), c));
        Time("attn", () => block.Attn.Forward(x));
        Time("conv", () => block.Conv.Forward(x));
        Time("conv1", () => block.Conv.Conv1.Forward(x));
        Time("mlp", () => block.MlpFc2.Forward(Ops.GeluApprox(block.MlpFc1.Forward(x))));
        Time("fc1", () => block.MlpFc1.Forward(x));
        Time("gelu", () => Ops.GeluApprox(block.MlpFc1.Forward(x)));
        Time("mish", () => Ops.Mish(x));
        Time("layernorm", () => Ops.LayerNorm(x, null, null, 1e-6f));
        Time("to_q", () => block.Attn.ToQ.Forward(x));
        var q = Tensor.FromArray(x.ToFloatArray(), 2, 8, frames, d / 8);
        Time("sdpa", () => Ops.ScaledDotProductAttention(q, q, q, 0.125f));
        return 0;
    }

    private sealed class SyncProgress(Action<FlowProgress> report) : IProgress<FlowProgress>
    {
        public void Report(FlowProgress value) => report(value);
    }

    private static string FindRepo()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "StepAudio2.Lab.sln"))) dir = dir.Parent;
        return dir?.FullName ?? Directory.GetCurrentDirectory();
    }

    /// <summary>Random f32 weights under every flow.pt key of spec §7.13 with the shapes <paramref name="c"/> implies.</summary>
    internal static RandomF32Weights RandomFlowWeights(FlowConfig c)
    {
        var w = new RandomF32Weights(1234);
        int d = c.Encoder.OutputSize, mel = c.OutputSize, u = c.Encoder.LinearUnits, h = c.Encoder.AttentionHeads;
        void Lin(string k, int o, int i, bool bias = true) { w.Add(k + ".weight", o, i); if (bias) w.Add(k + ".bias", o); }
        void Ln(string k, int n) { w.AddNorm(k + ".weight", n); w.Add(k + ".bias", n); }
        void Conv(string k, int o, int i, int kk) { w.Add(k + ".weight", o, i, kk); w.Add(k + ".bias", o); }
        void Layer(string k)
        {
            foreach (var m in new[] { "linear_q", "linear_k", "linear_v", "linear_out" }) Lin($"{k}.self_attn.{m}", d, d);
            Lin($"{k}.self_attn.linear_pos", d, d, bias: false);
            w.Add($"{k}.self_attn.pos_bias_u", h, d / h);
            w.Add($"{k}.self_attn.pos_bias_v", h, d / h);
            Lin($"{k}.feed_forward.w_1", u, d);
            Lin($"{k}.feed_forward.w_2", d, u);
            Ln($"{k}.norm_mha", d);
            Ln($"{k}.norm_ff", d);
        }

        w.Add("input_embedding.weight", c.VocabSize, c.InputSize);
        Lin("spk_embed_affine_layer", mel, c.SpkEmbedDim);
        Lin("encoder.embed.out.0", d, c.InputSize);
        Ln("encoder.embed.out.1", d);
        Conv("encoder.pre_lookahead_layer.conv1", d, d, c.Encoder.PreLookaheadLen + 1);
        Conv("encoder.pre_lookahead_layer.conv2", d, d, 3);
        for (int i = 0; i < c.Encoder.NumBlocks; i++) Layer($"encoder.encoders.{i}");
        Conv("encoder.up_layer.conv", d, d, 2 * c.Encoder.UpStride + 1);
        Lin("encoder.up_embed.out.0", d, d);
        Ln("encoder.up_embed.out.1", d);
        for (int i = 0; i < c.Encoder.NumUpBlocks; i++) Layer($"encoder.up_encoders.{i}");
        Ln("encoder.after_norm", d);
        Lin("encoder_proj", mel, d);

        var e = c.Decoder.Estimator;
        int hd = e.HiddenSize, inner = e.InnerDim;
        const string p = "decoder.estimator";
        Lin($"{p}.t_embedder.mlp.0", hd, e.FrequencyEmbeddingSize);
        Lin($"{p}.t_embedder.mlp.2", hd, hd);
        Lin($"{p}.in_proj", hd, e.InChannels);
        for (int b = 0; b < e.Depth; b++)
        {
            string k = $"{p}.blocks.{b}";
            foreach (var m in new[] { "to_q", "to_k", "to_v" }) Lin($"{k}.attn.{m}", inner, hd);
            Ln($"{k}.attn.q_norm", e.HeadDim);
            Ln($"{k}.attn.k_norm", e.HeadDim);
            Lin($"{k}.attn.proj", hd, inner);
            Lin($"{k}.mlp.fc1", e.MlpHidden, hd);
            Lin($"{k}.mlp.fc2", hd, e.MlpHidden);
            Conv($"{k}.conv.block.1", hd, hd, 3);
            Ln($"{k}.conv.block.3", hd);
            Conv($"{k}.conv.block.6", hd, hd, 3);
            Lin($"{k}.adaLN_modulation.1", 9 * hd, hd);
        }
        Lin($"{p}.final_layer.adaLN_modulation.1", 2 * hd, hd);
        Lin($"{p}.final_layer.linear", e.OutChannels, hd);
        return w;
    }

    /// <summary>An in-memory checkpoint of random f32 tensors (uniform, scaled by 1/√fan-in; norm weights near 1).</summary>
    internal sealed class RandomF32Weights(int seed) : ITensorSource
    {
        private readonly Dictionary<string, Tensor> _t = new(StringComparer.Ordinal);
        private readonly List<TensorInfo> _infos = [];
        private readonly Random _rng = new(seed);

        public long Bytes { get; private set; }

        public void Add(string name, params int[] shape)
        {
            var v = new float[Tensor.CountElements(shape)];
            int fanIn = shape.Length >= 2 ? shape[1] * (shape.Length == 3 ? shape[2] : 1) : 16;
            float scale = 1.7f / MathF.Sqrt(fanIn);
            for (long i = 0; i < v.Length; i++) v[i] = scale * (float)(_rng.NextDouble() * 2 - 1);
            Put(name, Tensor.FromArray(v, shape));
        }

        public void AddNorm(string name, int n)
        {
            var v = new float[n];
            for (int i = 0; i < n; i++) v[i] = 1f + 0.1f * (float)(_rng.NextDouble() - 0.5);
            Put(name, Tensor.FromArray(v, n));
        }

        private void Put(string name, Tensor t)
        {
            _t[name] = t;
            _infos.Add(new TensorInfo(name, DType.F32, t.Shape, t.ByteCount, "random"));
            Bytes += t.ByteCount;
        }

        public string Path => "random-flow-weights";
        public IReadOnlyList<TensorInfo> Tensors => _infos;
        public bool Contains(string name) => _t.ContainsKey(name);
        public Tensor Get(string name) => _t[name];
        public void Dispose() { }
    }
}
