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
/// turning N codes (default 100 = 4 s) with a P-token prompt (default 75 = 3 s) into mel. Runs the op-by-op path and the
/// fused path back to back in one process and reports seconds per CFM step (wall and CPU), the encoder, the total, peak
/// RSS, the speed-ups and the two paths' disagreement.
/// Usage: StepAudio2.Lab.Bench flow [--out file.json] [--codes N] [--prompt P] [--steps K] [--threads T] [--yaml flow.yaml] [--profile] [--fused-only]
/// </summary>
internal static class FlowBench
{
    public static int Run(string[] args)
    {
        string? outPath = null, yaml = null;
        int codes = 100, prompt = 75, steps = 10;
        bool profile = false, fusedOnly = false;
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
                case "--fused-only": fusedOnly = true; break; // the production path alone (its peak RSS), no JSON
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

        // Both paths in this process, back to back on the same inputs (the machine is shared: compare ratios of this run).
        // A small warm-up of each path first, so neither pays the JIT inside its timed run.
        string loadAvg = LoadAverage.Now();
        var dit = flow.Decoder.Estimator;
        if (fusedOnly)
        {
            var only = TimeGenerate(flow, codeIds, promptIds, promptMel, xvector, steps, "fused only");
            Console.Error.WriteLine($"fused only: step median {only.StepMedian:F2} s, cpu {only.StepCpuMedian:F2} s; peak RSS {Diagnostics.ProcessMemory.PeakRssBytes() / 1e9:F2} GB");
            return 0;
        }
        foreach (bool fused in new[] { false, true })
        {
            dit.UseFusedKernels = flow.Encoder.UseFusedKernels = fused;
            flow.Generate(codeIds[..4], promptIds[..2], Tensor.FromArray(new float[r * 2 * config.OutputSize], 1, r * 2, config.OutputSize), xvector, seed: 1, steps: 1);
        }
        dit.UseFusedKernels = flow.Encoder.UseFusedKernels = false;
        var before = TimeGenerate(flow, codeIds, promptIds, promptMel, xvector, steps, "op-by-op (before)");
        dit.UseFusedKernels = flow.Encoder.UseFusedKernels = true;
        var after = TimeGenerate(flow, codeIds, promptIds, promptMel, xvector, steps, "fused (after)");
        double melRel = RelL2(after.Mel.ToFloatArray(), before.Mel.ToFloatArray());
        var paired = PairedEstimator(flow, r * (codes + prompt), rounds: 3);
        long peak = Diagnostics.ProcessMemory.PeakRssBytes();
        var mel = after.Mel;
        bool finite = mel.ToFloatArray().All(float.IsFinite) && before.Mel.ToFloatArray().All(float.IsFinite);
        double audioS = codes / 25.0;
        Console.Error.WriteLine($"flow: step median {before.StepMedian:F2} s → {after.StepMedian:F2} s (×{before.StepMedian / after.StepMedian:F2}), " +
            $"step cpu median {before.StepCpuMedian:F2} s → {after.StepCpuMedian:F2} s (×{before.StepCpuMedian / after.StepCpuMedian:F2}), " +
            $"total {before.Total:F1} s → {after.Total:F1} s; paired estimator ×{paired.Ratio:F2}; mel rel-L2 new vs old {melRel:E2}; peak RSS {peak / 1e9:F2} GB");

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
            ["total_s"] = after.Total,
            ["encoder_and_rest_s"] = after.Total - after.Steps.Sum(),
            ["cfm_s"] = after.Steps.Sum(),
            ["step_s"] = after.Steps,
            ["step_median_s"] = after.StepMedian,
            ["step_cpu_s"] = after.StepCpu,
            ["step_cpu_median_s"] = after.StepCpuMedian,
            ["total_cpu_s"] = after.TotalCpu,
            ["loadavg_at_start"] = loadAvg,
            ["rtf"] = after.Total / audioS,
            ["peak_rss_bytes"] = peak,
            ["mel_shape"] = mel.Shape,
            ["mel_finite"] = finite,
            ["before"] = new Dictionary<string, object?>
            {
                ["path"] = "op-by-op DiT and encoder attention (UseFusedKernels = false): a fresh tensor per engine op",
                ["total_s"] = before.Total,
                ["encoder_and_rest_s"] = before.Total - before.Steps.Sum(),
                ["cfm_s"] = before.Steps.Sum(),
                ["step_s"] = before.Steps,
                ["step_median_s"] = before.StepMedian,
                ["step_cpu_s"] = before.StepCpu,
                ["step_cpu_median_s"] = before.StepCpuMedian,
                ["total_cpu_s"] = before.TotalCpu,
                ["loadavg_at_start"] = before.LoadAvg,
            },
            ["after_loadavg_at_start"] = after.LoadAvg,
            ["speedup_step_median_wall"] = before.StepMedian / after.StepMedian,
            ["speedup_step_median_cpu"] = before.StepCpuMedian / after.StepCpuMedian,
            ["speedup_total_wall"] = before.Total / after.Total,
            ["paired_estimator"] = new Dictionary<string, object?>
            {
                ["detail"] = "one estimator call (one CFM step, batch 2) alternating op-by-op and fused on the same input; per-round wall seconds",
                ["op_by_op_s"] = paired.Old,
                ["fused_s"] = paired.New,
                ["op_by_op_cpu_s"] = paired.OldCpu,
                ["fused_cpu_s"] = paired.NewCpu,
                ["median_ratio_wall"] = paired.Ratio,
                ["median_ratio_cpu"] = paired.CpuRatio,
                ["velocity_rel_l2"] = paired.RelL2,
            },
            ["mel_rel_l2_fused_vs_op_by_op"] = melRel,
            ["gemm_gflop_per_step"] = StepGflop(config, r * (codes + prompt)),
            ["detail"] = "full-size flow (flow.yaml shapes: conformer 6+4 layers at 512, DiT 16 blocks at 512, 8 heads × 64), random f32 weights " +
                         "in memory, CFG as a batch of two; N codes + P prompt tokens → 2(P+N) frames, mel of the last 2N. Top-level timings are " +
                         "the fused path; \"before\" is the op-by-op path run in the same process just before it",
        };
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json);
        return finite ? 0 : 1;
    }

    private sealed record GenerateTiming(List<double> Steps, List<double> StepCpu, double Total, double TotalCpu, string LoadAvg, Tensor Mel)
    {
        public double StepMedian => Median(Steps);
        public double StepCpuMedian => Median(StepCpu);
    }

    private static double Median(IEnumerable<double> xs)
    {
        var s = xs.OrderBy(x => x).ToList();
        return s.Count == 0 ? double.NaN : s.Count % 2 == 1 ? s[s.Count / 2] : 0.5 * (s[s.Count / 2 - 1] + s[s.Count / 2]);
    }

    private static GenerateTiming TimeGenerate(Flow flow, int[] codeIds, int[] promptIds, Tensor promptMel, Tensor xvector, int steps, string label)
    {
        var stepTimes = new List<double>();
        var stepCpu = new List<double>();
        var proc = Process.GetCurrentProcess();
        string loadAvg = LoadAverage.Now();
        var last = TimeSpan.Zero;
        proc.Refresh();
        var lastCpu = proc.TotalProcessorTime;
        var progress = new SyncProgress(p =>
        {
            proc.Refresh();
            var cpu = proc.TotalProcessorTime;
            stepTimes.Add((p.Elapsed - last).TotalSeconds);
            stepCpu.Add((cpu - lastCpu).TotalSeconds);
            last = p.Elapsed;
            lastCpu = cpu;
            Console.Error.WriteLine($"  {label} step {p.Step}/{p.Steps}: {stepTimes[^1]:F2} s wall, {stepCpu[^1]:F2} s cpu ({p.Frames} frames, batch 2)");
        });
        GC.Collect();
        proc.Refresh();
        var cpuStart = proc.TotalProcessorTime;
        var total = Stopwatch.StartNew();
        var mel = flow.Generate(codeIds, promptIds, promptMel, xvector, seed: 1, progress: progress, steps: steps);
        double totalS = total.Elapsed.TotalSeconds;
        proc.Refresh();
        double totalCpuS = (proc.TotalProcessorTime - cpuStart).TotalSeconds;
        Console.Error.WriteLine($"flow {label}: total {totalS:F2} s, encoder+rest {totalS - stepTimes.Sum():F2} s, median step {Median(stepTimes):F2} s wall / {Median(stepCpu):F2} s cpu");
        return new GenerateTiming(stepTimes, stepCpu, totalS, totalCpuS, loadAvg, mel);
    }

    private sealed record PairedTiming(List<double> Old, List<double> New, List<double> OldCpu, List<double> NewCpu, double Ratio, double CpuRatio, double RelL2);

    /// <summary>One estimator call per path per round, alternating, on the same random packed input; ratios per round, median.</summary>
    private static PairedTiming PairedEstimator(Flow flow, int frames, int rounds)
    {
        var dit = flow.Decoder.Estimator;
        int inCh = dit.Config.InChannels;
        var rng = new Random(11);
        var x = Enumerable.Range(0, 2 * frames * inCh).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var proc = Process.GetCurrentProcess();
        var oldS = new List<double>(); var newS = new List<double>(); var oldC = new List<double>(); var newC = new List<double>();
        var wallRatios = new List<double>(); var cpuRatios = new List<double>();
        double rel = double.NaN;
        for (int i = 0; i < rounds; i++)
        {
            Tensor? vOld = null, vNew = null;
            foreach (bool fused in new[] { false, true })
            {
                dit.UseFusedKernels = fused;
                GC.Collect();
                proc.Refresh();
                var c0 = proc.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                var v = dit.Forward(Tensor.FromArray(x, 2, frames, inCh).Slice(2, 0, 80).Permute(0, 2, 1).Contiguous(),
                    Tensor.FromArray(x, 2, frames, inCh).Slice(2, 80, 80).Permute(0, 2, 1).Contiguous(), [0.3f, 0.3f],
                    Tensor.FromArray(x.AsSpan(0, 160).ToArray(), 2, 80),
                    Tensor.FromArray(x, 2, frames, inCh).Slice(2, 240, 80).Permute(0, 2, 1).Contiguous());
                double wall = sw.Elapsed.TotalSeconds;
                proc.Refresh();
                double cpu = (proc.TotalProcessorTime - c0).TotalSeconds;
                (fused ? newS : oldS).Add(wall);
                (fused ? newC : oldC).Add(cpu);
                if (fused) vNew = v; else vOld = v;
            }
            wallRatios.Add(oldS[^1] / newS[^1]);
            cpuRatios.Add(oldC[^1] / newC[^1]);
            rel = RelL2(vNew!.ToFloatArray(), vOld!.ToFloatArray());
            Console.Error.WriteLine($"  paired round {i + 1}: op-by-op {oldS[^1]:F2} s ({oldC[^1]:F2} cpu), fused {newS[^1]:F2} s ({newC[^1]:F2} cpu), ×{wallRatios[^1]:F2} wall, ×{cpuRatios[^1]:F2} cpu, rel-L2 {rel:E2}");
        }
        dit.UseFusedKernels = true;
        return new PairedTiming(oldS, newS, oldC, newC, Median(wallRatios), Median(cpuRatios), rel);
    }

    private static double RelL2(float[] a, float[] e)
    {
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { double d = (double)a[i] - e[i]; num += d * d; den += (double)e[i] * e[i]; }
        return Math.Sqrt(num / den);
    }

    /// <summary>GEMM GFLOP of one CFM step (both CFG rows): per DiT block q/k/v/proj, MLP, two k3 convs and attention, plus in/out projections.</summary>
    private static double StepGflop(FlowConfig c, int frames)
    {
        var e = c.Decoder.Estimator;
        double n = 2.0 * frames, d = e.HiddenSize, inner = e.InnerDim, u = e.MlpHidden;
        double block = 2 * n * (3 * d * inner + inner * d + 2 * d * u + 2 * 3 * d * d) + 2 * 2 * 2.0 * frames * frames * inner;
        return (e.Depth * block + 2 * n * d * (e.InChannels + e.OutChannels)) / 1e9;
    }

    /// <summary>
    /// Where a CFM step goes: CPU and wall time of one estimator call (batch 2) on each path, the encoder alone, and the
    /// DiT's GEMMs alone at their shapes (16 blocks' worth), median of 5 — the rest of a fused step is non-GEMM overhead.
    /// </summary>
    private static unsafe int Profile(Flow flow, int frames)
    {
        var dit = flow.Decoder.Estimator;
        var e = dit.Config;
        int d = e.HiddenSize, n = 2 * frames, inner = e.InnerDim, u = e.MlpHidden, c = e.OutChannels;
        var rng = new Random(3);
        Tensor R(params int[] shape) => Tensor.FromArray(Enumerable.Range(0, (int)Tensor.CountElements(shape)).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), shape);
        var x = R(2, c, frames); var mu = R(2, c, frames); var cond = R(2, c, frames); var spk = R(2, c);
        var proc = Process.GetCurrentProcess();
        void Time(string name, Action a, int reps = 5)
        {
            a();
            var cpu = new List<double>();
            var wall = new List<double>();
            for (int i = 0; i < reps; i++)
            {
                proc.Refresh();
                var c0 = proc.TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                a();
                wall.Add(sw.Elapsed.TotalMilliseconds);
                proc.Refresh();
                cpu.Add((proc.TotalProcessorTime - c0).TotalMilliseconds);
            }
            Console.Error.WriteLine($"{name,-28} {Median(wall),9:F1} ms wall {Median(cpu),9:F1} ms cpu");
        }
        dit.UseFusedKernels = true;
        Time("estimator fused", () => dit.Forward(x, mu, [0.5f, 0.5f], spk, cond));
        dit.UseFusedKernels = false;
        Time("estimator op-by-op", () => dit.Forward(x, mu, [0.5f, 0.5f], spk, cond), 3);
        dit.UseFusedKernels = true;
        var tokens = R(1, frames / flow.Config.TokenMelRatio, flow.Config.InputSize);
        Time("encoder fused", () => flow.Encoder.Forward(tokens), 3);
        flow.Encoder.UseFusedKernels = false;
        Time("encoder op-by-op", () => flow.Encoder.Forward(tokens), 3);
        flow.Encoder.UseFusedKernels = true;

        (int M, int N, int K, int Count)[] gemms =
        [
            (n, 3 * inner, d, 1), (n, d, inner, 1), (n, d, 3 * d, 2), (n, u, d, 1), (n, d, u, 1),
        ];
        var bufA = new float[n * Math.Max(u, 3 * d)];
        var bufB = new float[Math.Max(u, 3 * inner) * Math.Max(u, 3 * d)];
        var bufC = new float[n * Math.Max(u, 3 * inner)];
        var sc = new float[frames * frames];
        Time("DiT GEMMs ×16 blocks", () =>
        {
            fixed (float* pa = bufA, pb = bufB, pc = bufC, ps = sc)
                for (int blk = 0; blk < e.Depth; blk++)
                {
                    foreach (var (m, nn, k, count) in gemms)
                        for (int i = 0; i < count; i++) Gemm.SgemmNT(m, nn, k, pa, k, pb, k, pc, nn);
                    for (int h = 0; h < 2 * e.NumHeads; h++) // attention q·kᵀ and p·v per (row, head)
                    {
                        Gemm.SgemmNT(frames, frames, e.HeadDim, pa, e.HeadDim, pb, e.HeadDim, ps, frames);
                        Gemm.SgemmNN(frames, e.HeadDim, frames, ps, frames, pb, e.HeadDim, pc, e.HeadDim);
                    }
                }
        });
        Console.Error.WriteLine($"GEMM work per step: {StepGflop(flow.Config, frames):F1} GFLOP");
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

    /// <summary>Random f32 weights under every flow.pt key of docs/model.md §7.13 with the shapes <paramref name="c"/> implies.</summary>
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
