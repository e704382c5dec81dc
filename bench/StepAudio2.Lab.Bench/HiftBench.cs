using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// Full-size HiFT benchmark (docs/model.md §7.10 defaults: base 512 → 256/128/64, upsample 8/5/3, nine Snake ResBlocks, source
/// path, iSTFT) with random f32 weights built in memory under hift.pt's keys, on T mel frames (default 200 = 4 s).
/// Times every decoder module twice per repetition, interleaved so both see the same load on a shared machine:
/// "old" = the generic engine ops (<see cref="Ops.Conv1d"/> with an explicit im2col and a transpose,
/// <see cref="Ops.ConvTranspose1d"/> — the CPU backend with its packed convs off —, scalar <see cref="MathF.Sin"/> Snake) and "new" = the modules'
/// own Forward (packed-weight implicit-im2col GEMM, vectorised Snake). Both read the same folded weights; the bench
/// checks the two waveforms agree and that the module-by-module "new" chain equals <see cref="Hift.Decode"/>.
/// Usage: StepAudio2.Lab.Bench hift [--out file.json] [--frames T] [--reps R] [--threads N]
/// </summary>
internal static class HiftBench
{
    public static int Run(string[] args)
    {
        string? outPath = null;
        int frames = 200, reps = 3;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out": outPath = args[++i]; break;
                case "--frames": frames = int.Parse(args[++i]); break;
                case "--reps": reps = int.Parse(args[++i]); break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--micro": return Micro();
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        string loadStart = LoadAverage.Now();
        var build = Stopwatch.StartNew();
        var weights = RandomHiftWeights(new HiftConfig());
        var hift = Hift.Load(weights);
        Console.Error.WriteLine($"hift: {weights.Tensors.Count} random f32 tensors ({weights.Bytes / 1e6:F0} MB) built and loaded in {build.Elapsed.TotalSeconds:F1} s");

        var rng = new Random(11);
        var mel = Tensor.FromArray(Enumerable.Range(0, 80 * frames).Select(_ => (float)(rng.NextDouble() * 8 - 10)).ToArray(), 1, 80, frames);
        var noise = hift.Source.SampleNoise(1, frames, 5);

        var oldT = new Dictionary<string, List<double>>();
        var newT = new Dictionary<string, List<double>>();
        var oldC = new Dictionary<string, List<double>>();
        var newC = new Dictionary<string, List<double>>();
        float[]? oldWav = null, newWav = null;
        var forwardMs = new List<double>();
        double decodeMs = 0;
        for (int r = 0; r <= reps; r++) // r = 0 warms up (JIT, workspaces) and is not counted
        {
            var to = new Timer(r == 0 ? null : oldT, r == 0 ? null : oldC);
            oldWav = Decode(hift, mel, noise, legacy: true, to).ToFloatArray();
            var tn = new Timer(r == 0 ? null : newT, r == 0 ? null : newC);
            newWav = Decode(hift, mel, noise, legacy: false, tn).ToFloatArray();
            var fw = Stopwatch.StartNew();
            hift.Forward(mel, noise);
            if (r > 0) forwardMs.Add(fw.Elapsed.TotalMilliseconds);
            Console.Error.WriteLine($"rep {r}: old {to.TotalMs / 1000:F2} s, new {tn.TotalMs / 1000:F2} s, Hift.Forward {fw.Elapsed.TotalSeconds:F2} s");
        }
        var sw = Stopwatch.StartNew();
        var wav = hift.Forward(mel, noise).ToFloatArray();
        decodeMs = sw.Elapsed.TotalMilliseconds;
        double maxDiff = MaxAbsDiff(oldWav!, newWav!), chainDiff = MaxAbsDiff(newWav!, wav);
        double rms = Math.Sqrt(wav.Select(v => (double)v * v).Average());
        bool finite = wav.All(float.IsFinite);

        var modules = new List<Dictionary<string, object>>();
        Console.Error.WriteLine($"{"module",-28} {"old ms",10} {"new ms",10} {"old/new",8} {"old cpu",10} {"new cpu",10} {"old/new",8}");
        foreach (var name in oldT.Keys)
        {
            double o = Median(oldT[name]), n = Median(newT[name]), oc = oldC[name].Sum(), nc = newC[name].Sum();
            modules.Add(new() { ["module"] = name, ["old_ms"] = Math.Round(o, 2), ["new_ms"] = Math.Round(n, 2), ["speedup"] = Math.Round(o / n, 2),
                ["old_cpu_ms_sum"] = Math.Round(oc, 1), ["new_cpu_ms_sum"] = Math.Round(nc, 1), ["cpu_ratio"] = Math.Round(oc / Math.Max(nc, 1e-3), 2) });
            Console.Error.WriteLine($"{name,-28} {o,10:F1} {n,10:F1} {o / n,8:F2} {oc,10:F0} {nc,10:F0} {oc / Math.Max(nc, 1e-3),8:F2}");
        }
        double oldCpu = oldC.Values.Sum(v => v.Sum()), newCpu = newC.Values.Sum(v => v.Sum());
        Console.Error.WriteLine($"cpu seconds over all reps: old {oldCpu / 1000:F2}, new {newCpu / 1000:F2}, ratio {oldCpu / newCpu:F2}");
        double oldTotal = Median(oldT.Values.First().Select((_, i) => oldT.Values.Sum(v => v[i])).ToList());
        double newTotal = Median(newT.Values.First().Select((_, i) => newT.Values.Sum(v => v[i])).ToList());
        Console.Error.WriteLine($"{"total (source + decode)",-28} {oldTotal,10:F1} {newTotal,10:F1} {oldTotal / newTotal,8:F2}");
        Console.Error.WriteLine($"Hift.Forward median {Median(forwardMs):F0} ms (old/Forward {oldTotal / Median(forwardMs):F2}), one more call {decodeMs:F0} ms; max |old − new| = {maxDiff:E2}, max |chain − Forward| = {chainDiff:E2}, rms {rms:F4}");

        var result = new Dictionary<string, object>
        {
            ["suite"] = "hift",
            ["weights"] = "random f32 in memory, hift.pt keys and full shapes (HiFTGenerator defaults: base 512, ups 8/5/3, cond 512)",
            ["frames"] = frames,
            ["audio_seconds"] = frames * 480 / 24000.0,
            ["threads"] = Gemm.MaxThreads,
            ["reps"] = reps,
            ["loadavg_at_start"] = loadStart,
            ["loadavg_at_end"] = LoadAverage.Now(),
            ["old_total_ms"] = Math.Round(oldTotal, 1),
            ["new_total_ms"] = Math.Round(newTotal, 1),
            ["speedup"] = Math.Round(oldTotal / newTotal, 2),
            ["old_cpu_s_all_reps"] = Math.Round(oldCpu / 1000, 2),
            ["new_cpu_s_all_reps"] = Math.Round(newCpu / 1000, 2),
            ["cpu_ratio"] = Math.Round(oldCpu / newCpu, 2),
            ["forward_ms"] = Math.Round(Median(forwardMs), 1),
            ["speedup_forward"] = Math.Round(oldTotal / Median(forwardMs), 2),
            ["rtf_forward"] = Median(forwardMs) / 1000 / (frames * 480 / 24000.0),
            ["max_abs_diff_old_vs_new_wav"] = maxDiff,
            ["max_abs_diff_chain_vs_forward_wav"] = chainDiff,
            ["wav_rms"] = rms,
            ["wav_finite"] = finite,
            ["modules"] = modules,
            ["detail"] = "per module: median over reps of wall ms; old and new run alternately in one process (same load). " +
                         "old = generic Ops path as before this change (module by module); new conv tile is 6x32 AVX-512 where present (6x16 AVX2 otherwise); forward_ms = Hift.Forward (source + decode through Ops, " +
                         "ResBlocks as the backend's SnakeResBlock) timed in the same reps; new = module by module through the layers' packed implicit-im2col GEMM conv, GEMM+overlap-add " +
                         "conv-transpose, vectorised Snake. 'misc.*' = leaky relu, pad, adds, mean of the 3 resblocks.",
        };
        var json = JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json);
        return finite && maxDiff < 1e-3 && chainDiff == 0 ? 0 : 1;
    }

    /// <summary>
    /// One resblock conv shape per stage, the layer (implicit im2col) against <see cref="Gemm.SgemmNN"/> on a prebuilt
    /// explicit im2col of the same product (cols building not timed), interleaved: GFLOP/s by wall and by CPU time.
    /// </summary>
    private static unsafe int Micro()
    {
        var proc = Process.GetCurrentProcess();
        foreach (var (c, k, d, t) in new[] { (256, 3, 1, 1600), (256, 11, 5, 1600), (128, 7, 3, 8000), (64, 11, 5, 24001), (64, 3, 1, 24001) })
        {
            var rng = new Random(1);
            var x = Tensor.FromArray(Enumerable.Range(0, c * t).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray(), 1, c, t);
            var w = Tensor.FromArray(Enumerable.Range(0, c * c * k).Select(_ => (float)(rng.NextDouble() - 0.5) * 0.1f).ToArray(), c, c, k);
            var layer = new Models.Nn.Conv1d("m", w, null, 1, d * (k - 1) / 2, d);
            int kk = c * k, pad = d * (k - 1) / 2;
            var cols = new float[(long)kk * t];
            var xs = x.ToFloatArray();
            for (int ci = 0; ci < c; ci++)
                for (int kq = 0; kq < k; kq++)
                    for (int j = 0; j < t; j++)
                    {
                        int ti = j + kq * d - pad;
                        cols[(long)(ci * k + kq) * t + j] = (uint)ti < (uint)t ? xs[ci * t + ti] : 0f;
                    }
            var ws = w.ToFloatArray();
            var y = new float[(long)c * t];
            double flop = 2.0 * c * kk * t;
            var lw = new List<double>(); var lc = new List<double>(); var gw = new List<double>(); var gc = new List<double>();
            for (int r = 0; r < 6; r++)
            {
                proc.Refresh(); var c0 = proc.TotalProcessorTime; var sw = Stopwatch.StartNew();
                layer.Forward(x);
                double ms = sw.Elapsed.TotalMilliseconds; proc.Refresh();
                if (r > 0) { lw.Add(ms); lc.Add((proc.TotalProcessorTime - c0).TotalMilliseconds); }
                proc.Refresh(); c0 = proc.TotalProcessorTime; sw.Restart();
                fixed (float* pw = ws, pcols = cols, py = y) Gemm.SgemmNN(c, t, kk, pw, kk, pcols, t, py, t);
                ms = sw.Elapsed.TotalMilliseconds; proc.Refresh();
                if (r > 0) { gw.Add(ms); gc.Add((proc.TotalProcessorTime - c0).TotalMilliseconds); }
            }
            var sz = Stopwatch.StartNew(); int g0 = GC.CollectionCount(2);
            for (int r = 0; r < 5; r++) Tensor.Zeros(DType.F32, 1, c, t);
            Console.Error.WriteLine($"  zeros {sz.Elapsed.TotalMilliseconds / 5:F2} ms; conv {Median(lw):F1} ms, gemm {Median(gw):F1} ms; gen2 GCs {GC.CollectionCount(2) - g0}");
            Console.Error.WriteLine($"C={c} K={k} d={d} T={t}: conv layer {flop / Median(lw) / 1e6:F0} GFLOP/s wall, {flop / Median(lc) / 1e6:F0} per cpu-s; " +
                                    $"SgemmNN on explicit cols {flop / Median(gw) / 1e6:F0} GFLOP/s wall, {flop / Median(gc) / 1e6:F0} per cpu-s");
        }
        return 0;
    }

    /// <summary>Hift.Forward (source + decode) module by module, timing each under its trace path.</summary>
    private static Tensor Decode(Hift h, Tensor mel, Tensor noise, bool legacy, Timer t)
    {
        var c = h.Config;
        var f0 = t.Time("hift.f0_predictor", () => legacy ? LegacyF0(h.F0Predictor, mel) : h.F0Predictor.Forward(mel));
        var s = t.Time("hift.m_source", () => h.Source.Forward(f0, noise));
        int samples = mel.Shape[2] * c.SamplesPerFrame;
        var sStft = t.Time("hift.source_stft", () => h.Stft.Forward(s.Contiguous().Reshape(1, samples)));
        var x = t.Time("hift.conv_pre", () => Conv(h.ConvPre, mel, legacy));
        int nk = c.ResblockKernels.Length;
        for (int i = 0; i < h.Ups.Count; i++)
        {
            var xi = x;
            x = t.Time($"misc.{i}", () => Ops.LeakyRelu(xi, c.LeakySlope));
            var up = h.Ups[i];
            xi = x;
            x = t.Time($"hift.ups.{i}", () => legacy ? OnPlain(() => Ops.ConvTranspose1d(xi, up.Weight, up.Bias, up.Stride, up.Padding)) : up.Forward(xi));
            if (i == h.Ups.Count - 1) { xi = x; x = t.Time($"misc.{i}", () => Ops.Pad(xi, [(0, 0), (0, 0), (1, 0)], PadMode.Reflect)); }
            int ii = i;
            var si = t.Time($"hift.source_downs.{i}", () => Conv(h.SourceDowns[ii], sStft, legacy));
            si = t.Time($"hift.source_resblocks.{i}", () => ResBlock(h.SourceResblocks[ii], si, legacy));
            xi = x;
            x = t.Time($"misc.{i}", () => Ops.Add(xi, si));
            Tensor? xs = null;
            for (int j = 0; j < nk; j++)
            {
                var rb = h.Resblocks[i * nk + j];
                xi = x;
                var y = t.Time($"hift.resblocks.{i * nk + j}", () => ResBlock(rb, xi, legacy));
                xs = xs is null ? y : t.Time($"misc.{i}", () => Ops.Add(xs, y));
            }
            x = t.Time($"misc.{i}", () => Divide(xs!, nk));
        }
        var xl = x;
        x = t.Time("hift.conv_post", () => Conv(h.ConvPost, Ops.LeakyRelu(xl, 0.01f), legacy));
        return t.Time("hift.istft", () => Synthesize(h, x));
    }

    private static Tensor LegacyF0(F0Predictor p, Tensor mel)
    {
        var x = mel;
        foreach (var conv in p.Condnet) x = Ops.Elu(Conv(conv, x, true), 1f);
        x = Ops.Abs(p.Classifier.Forward(x.Transpose().Contiguous()));
        return x.Reshape(x.Shape[0], x.Shape[1]);
    }

    // as Hift.Decode: an element-wise division (not a multiply by 1/n), so the chain matches Forward bit for bit
    private static Tensor Divide(Tensor x, int n) => Ops.Divide(x, Tensor.FromArray([(float)n], 1));

    /// <summary>The CPU backend without its prepared (packed) convs: the generic explicit-im2col paths.</summary>
    private static readonly CpuBackend Plain = new() { UsePackedConvs = false };

    private static Tensor OnPlain(Func<Tensor> f)
    {
        using var _ = Ops.Use(Plain);
        return f();
    }

    private static Tensor Conv(Models.Nn.Conv1d m, Tensor x, bool legacy) =>
        legacy ? OnPlain(() => Ops.Conv1d(x, m.Weight, m.Bias, m.Stride, m.Padding, m.Dilation, m.Groups)) : m.Forward(x);

    private static Tensor ResBlock(HiftResBlock b, Tensor x, bool legacy)
    {
        if (!legacy) return b.Forward(x);
        for (int j = 0; j < b.Convs1.Count; j++)
        {
            var y = LegacySnake(x, b.Alpha1[j].ToFloatArray());
            y = Conv(b.Convs1[j], y, true);
            y = LegacySnake(y, b.Alpha2[j].ToFloatArray());
            y = Conv(b.Convs2[j], y, true);
            x = Ops.Add(y, x);
        }
        return x;
    }

    /// <summary>The Snake HiFT used before: scalar MathF.Sin, one thread, a new array per call.</summary>
    private static Tensor LegacySnake(Tensor x, float[] alpha)
    {
        var src = x.ToFloatArray();
        int c = x.Shape[1], t = x.Shape[2];
        var dst = new float[src.Length];
        for (int b = 0; b < x.Shape[0]; b++)
            for (int ch = 0; ch < c; ch++)
            {
                float a = alpha[ch], inv = 1f / (a + 1e-9f);
                int o = (b * c + ch) * t;
                for (int i = 0; i < t; i++)
                {
                    float v = src[o + i], s = MathF.Sin(v * a);
                    dst[o + i] = v + inv * (s * s);
                }
            }
        return Tensor.FromArray(dst, x.Shape);
    }

    private static Tensor Synthesize(Hift h, Tensor x) => h.Synthesize(x);

    /// <summary>hift.pt's keys at full size, plain (weight norm already folded) weights; Snake α = 1 ± 5 % (init is 1).</summary>
    internal static FlowBench.RandomF32Weights RandomHiftWeights(HiftConfig c)
    {
        var w = new FlowBench.RandomF32Weights(4321);
        const int mel = 80, baseCh = 512, cond = 512, spec = 18;
        void Conv(string k, int o, int i, int kk) { w.Add(k + ".weight", o, i, kk); w.Add(k + ".bias", o); }
        void Res(string k, int ch, int kk)
        {
            for (int j = 0; j < 3; j++)
            {
                Conv($"{k}.convs1.{j}", ch, ch, kk);
                Conv($"{k}.convs2.{j}", ch, ch, kk);
                w.AddNorm($"{k}.activations1.{j}.alpha", ch);
                w.AddNorm($"{k}.activations2.{j}.alpha", ch);
            }
        }
        Conv("conv_pre", baseCh, mel, 7);
        for (int i = 0; i < 5; i++) Conv($"f0_predictor.condnet.{2 * i}", cond, i == 0 ? mel : cond, 3);
        w.Add("f0_predictor.classifier.weight", 1, cond);
        w.Add("f0_predictor.classifier.bias", 1);
        w.Add("m_source.l_linear.weight", 1, c.Harmonics);
        w.Add("m_source.l_linear.bias", 1);
        int cin = baseCh, n = c.UpsampleRates.Length;
        for (int i = 0; i < n; i++)
        {
            int ch = cin / 2, u = c.UpsampleRates[i];
            w.Add($"ups.{i}.weight", cin, ch, c.UpsampleKernels[i]);
            w.Add($"ups.{i}.bias", ch);
            int stride = 1;
            for (int j = i + 1; j < n; j++) stride *= c.UpsampleRates[j];
            Conv($"source_downs.{i}", ch, spec, stride == 1 ? 1 : 2 * stride);
            Res($"source_resblocks.{i}", ch, c.SourceResblockKernels[i]);
            for (int j = 0; j < c.ResblockKernels.Length; j++) Res($"resblocks.{i * c.ResblockKernels.Length + j}", ch, c.ResblockKernels[j]);
            cin = ch;
            _ = u;
        }
        Conv("conv_post", spec, cin, 7);
        return w;
    }

    private sealed class Timer(Dictionary<string, List<double>>? into, Dictionary<string, List<double>>? cpuInto)
    {
        private static readonly Process Proc = Process.GetCurrentProcess();
        private readonly Dictionary<string, double> _rep = new();
        public double TotalMs { get; private set; }

        public T Time<T>(string name, Func<T> f)
        {
            Proc.Refresh();
            var c0 = Proc.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            var r = f();
            double ms = sw.Elapsed.TotalMilliseconds;
            Proc.Refresh();
            double cpu = (Proc.TotalProcessorTime - c0).TotalMilliseconds;
            TotalMs += ms;
            if (cpuInto is not null)
            {
                if (!cpuInto.TryGetValue(name, out var cl)) cpuInto[name] = cl = [];
                if (!_rep.ContainsKey(name)) cl.Add(cpu); else cl[^1] += cpu;
            }
            bool firstInRep = !_rep.ContainsKey(name);
            _rep[name] = _rep.GetValueOrDefault(name) + ms;
            if (into is not null)
            {
                if (!into.TryGetValue(name, out var list)) into[name] = list = [];
                if (firstInRep) list.Add(ms); else list[^1] += ms;
            }
            return r;
        }
    }

    private static double Median(List<double> v)
    {
        var s = v.OrderBy(x => x).ToList();
        return s.Count % 2 == 1 ? s[s.Count / 2] : (s[s.Count / 2 - 1] + s[s.Count / 2]) / 2;
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        if (a.Length != b.Length) return double.PositiveInfinity;
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs((double)a[i] - b[i]));
        return m;
    }

}
