using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// <c>decode-profile</c>: where a decode step's time goes on a real (e.g. full-size random) checkpoint. Runs the
/// Qwen2 decoder step op by op as <see cref="Qwen2Model.StepBatch"/> does (embed, per layer norm · q/k/v · attention ·
/// o · add · norm · gate/silu/up/mul/down · add, final norm, lm_head, logits to the host) and times every op: wall ms
/// and process CPU ms per token (CPU ÷ wall = busy cores), GB/s of the linears' weight bytes. Then the same number of
/// unprofiled steps through <see cref="StepAudio2Model.StepLogitsBatch"/> for the plain tok/s.
/// Usage: decode-profile --model DIR [--steps 24] [--warmup 4] [--batch 1] [--threads N] [--out file.json]
/// </summary>
internal static class DecodeProfile
{
    public static int Run(string[] args)
    {
        string? model = null, outPath = null;
        int steps = 24, warmup = 4, batch = 1;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--model": model = args[++i]; break;
                case "--steps": steps = int.Parse(args[++i]); break;
                case "--warmup": warmup = int.Parse(args[++i]); break;
                case "--batch": batch = int.Parse(args[++i]); break;
                case "--threads": Gemm.MaxThreads = int.Parse(args[++i]); break;
                case "--out": outPath = args[++i]; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}"); return 2;
            }
        }
        if (model is null) { Console.Error.WriteLine("decode-profile: --model DIR is required"); return 2; }
        string load0 = LoadAverage.Now();
        var config = StepAudio2Config.Load(model);
        using var checkpoint = ShardedCheckpoint.Open(model);
        var m = new StepAudio2Model(checkpoint, config);
        var c = config.Text;
        var proc = Process.GetCurrentProcess();
        var timer = new OpTimer();
        Tensor Timed(string name, Func<Tensor> f, long bytes = 0) => timer.Time(name, f, bytes);
        static long Bytes(Linear l) => l.Quantized?.ByteCount ?? l.Weight.ByteCount;
        Tensor Lin(string name, Linear l, Tensor x) => Timed(name, () => l.Apply(x), Bytes(l));

        var rng = new Random(5);
        var caches = Enumerable.Range(0, batch).Select(_ => new KvCache(c)).ToArray();
        int pos = 0;
        void Step()
        {
            var ids = Enumerable.Range(0, batch).Select(_ => rng.Next(0, 151000)).ToArray();
            var positions = Enumerable.Repeat(pos, batch).ToArray();
            var x = Timed("embed", () => m.Model.Embed(ids)).Reshape(1, batch, c.HiddenSize);
            var layerCaches = new LayerKvCache[batch];
            foreach (var (layer, li) in m.Model.Layers.Select((l, i) => (l, i)))
            {
                for (int r = 0; r < batch; r++) layerCaches[r] = caches[r].Layers[li];
                var a = layer.SelfAttn;
                var h = Timed("rms_norm", () => layer.InputLayernorm.Forward(x));
                var q = Lin("q_proj", a.QProj, h);
                var k = Lin("k_proj", a.KProj, h);
                var v = Lin("v_proj", a.VProj, h);
                var outs = new Tensor[batch];
                for (int r = 0; r < batch; r++)
                {
                    int rr = r;
                    outs[r] = Timed("attention", () => a.Attend(q.Slice(1, rr, 1), k.Slice(1, rr, 1), v.Slice(1, rr, 1), positions[rr], layerCaches[rr]));
                }
                var o = batch == 1 ? outs[0] : Timed("concat", () => Ops.Concatenate(outs, axis: 1));
                var att = Lin("o_proj", a.OProj, o);
                x = Timed("add", () => Ops.Add(x, att));
                var h2 = Timed("rms_norm", () => layer.PostAttentionLayernorm.Forward(x));
                var gate = Timed("silu", () => Ops.Silu(Lin("gate_proj", layer.Mlp.GateProj, h2)));
                var up = Lin("up_proj", layer.Mlp.UpProj, h2);
                var prod = Timed("multiply", () => Ops.Multiply(gate, up));
                var down = Lin("down_proj", layer.Mlp.DownProj, prod);
                x = Timed("add", () => Ops.Add(x, down));
            }
            var n = Timed("rms_norm", () => m.Model.Norm.Forward(x)).Reshape(batch, c.HiddenSize);
            _ = Timed("to_host", () => Ops.ToHost(Lin("lm_head", m.LmHead, n)));
            pos++;
        }

        for (int i = 0; i < warmup; i++) Step();
        timer.Clear();
        var swAll = Stopwatch.StartNew();
        var cpuAll = proc.TotalProcessorTime;
        for (int i = 0; i < steps; i++) Step();
        double profiledMs = swAll.Elapsed.TotalMilliseconds / steps;
        proc.Refresh();
        double profiledCpuMs = (proc.TotalProcessorTime - cpuAll).TotalMilliseconds / steps;

        // plain steps (no per-op timing) through the model's batched step, continuing the same caches
        var plainCpu0 = proc.TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < steps; i++)
        {
            var ids = Enumerable.Range(0, batch).Select(_ => rng.Next(0, 151000)).ToArray();
            _ = m.StepLogitsBatch(ids, Enumerable.Repeat(pos, batch).ToArray(), caches);
            pos++;
        }
        double plainMs = sw.Elapsed.TotalMilliseconds / steps;
        proc.Refresh();
        double plainCpuMs = (proc.TotalProcessorTime - plainCpu0).TotalMilliseconds / steps;
        string load1 = LoadAverage.Now();

        double totalBytes = timer.Entries.Sum(e => e.Entry.Bytes) / steps;
        Console.Error.WriteLine($"decode-profile {model}: batch {batch}, {Gemm.MaxThreads} threads, {steps} steps after {warmup}, load {load0} → {load1}");
        Console.Error.WriteLine($"{"op",-12} {"ms/step",9} {"cpu ms",9} {"cores",6} {"calls",6} {"GB/s",7} {"share",6}");
        var ops = new List<Dictionary<string, object>>();
        foreach (var (name, a) in timer.Entries)
        {
            double w = a.WallMs / steps, cpu = a.CpuMs / steps, gbps = a.Bytes / steps / (w * 1e6);
            Console.Error.WriteLine($"{name,-12} {w,9:F2} {cpu,9:F2} {cpu / w,6:F2} {a.Calls / steps,6} {(a.Bytes > 0 ? gbps.ToString("F2") : ""),7} {100 * w / profiledMs,5:F1}%");
            ops.Add(new() { ["op"] = name, ["ms_per_step"] = Math.Round(w, 3), ["cpu_ms_per_step"] = Math.Round(cpu, 3), ["calls_per_step"] = a.Calls / steps,
                ["bytes_per_step"] = a.Bytes / steps, ["gbps"] = a.Bytes > 0 ? Math.Round(gbps, 2) : 0 });
        }
        Console.Error.WriteLine($"profiled step {profiledMs:F1} ms (cpu {profiledCpuMs:F1} ms, {profiledCpuMs / profiledMs:F2} cores), {totalBytes / 1e9:F3} GB weights/step → {totalBytes / (profiledMs * 1e6):F2} GB/s");
        Console.Error.WriteLine($"plain step    {plainMs:F1} ms (cpu {plainCpuMs:F1} ms, {plainCpuMs / plainMs:F2} cores) → {1000.0 * batch / plainMs:F3} tok/s aggregate ({totalBytes / (plainMs * 1e6):F2} GB/s)");
        var doc = new Dictionary<string, object>
        {
            ["model"] = model, ["batch"] = batch, ["threads"] = Gemm.MaxThreads, ["steps"] = steps, ["loadavg_before"] = load0, ["loadavg_after"] = load1,
            ["weight_bytes_per_step"] = totalBytes, ["profiled_ms_per_step"] = Math.Round(profiledMs, 2), ["plain_ms_per_step"] = Math.Round(plainMs, 2),
            ["plain_cpu_ms_per_step"] = Math.Round(plainCpuMs, 2), ["tok_s"] = Math.Round(1000.0 * batch / plainMs, 3), ["ops"] = ops,
        };
        string json = JsonSerializer.Serialize(doc, new JsonSerializerOptions { WriteIndented = true });
        if (outPath is null) Console.WriteLine(json); else File.WriteAllText(outPath, json + "\n");
        return 0;
    }
}
