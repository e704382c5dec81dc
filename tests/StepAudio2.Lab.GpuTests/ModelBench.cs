using System.Diagnostics;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.GpuTests;

/// <summary>One full-size model run on the device: the real model classes (<see cref="StepAudio2Model"/>: AudioEncoder,
/// Adaptor, Qwen2, lm_head) with random weights at the real shapes, timed stage by stage.</summary>
public sealed record ModelBenchResult(string Name, string Backend, string Weights, double AudioSeconds, double EncoderAdaptorMs,
    int PromptTokens, double PrefillMs, int DecodeTokens, double DecodeTokPerS, double MsPerToken, double DecodeWeightGB, double EffectiveGBs,
    double AsrDeviceGiB, double PeakDeviceGiB, double DeviceUsedGiB, double OpsPerToken, double TransfersPerToken, double LoadSeconds,
    double HostMsPerToken, double SyncWaitMsPerToken);

/// <summary>token2wav on the device: flow (10 CFM steps with CFG) + HiFT on N codes, best of a few runs.</summary>
public sealed record Token2WavBenchResult(string Backend, int Codes, int PromptTokens, double AudioSeconds, double FlowMs, double HiftMs, double TotalMs,
    double RealTimeFactor, double PeakDeviceGiB);

/// <summary>
/// The full-size benchmarks of issue 16 through the model code itself (not a stand-in): encoder + adaptor on 25 s of
/// real speech (a clip repeated), prefill of a 500-token prompt, greedy decoding with the KV cache on the device, the
/// device memory of the whole ASR path; bf16 weights and int4 (MLX affine, group 64, <c>decoder-head8</c>: embeddings
/// and lm_head at 8 bits). Weights come from <see cref="RandomCheckpointSource"/>; each timing is the best of
/// <c>repeats</c> after a warm-up run (kernels loaded, weights uploaded, cuBLAS heuristics cached), the device
/// synchronised before the clock stops.
/// </summary>
public static class ModelBench
{
    public static ModelBenchResult Run(string modelDir, string wav, CudaBackend backend, bool int4, int prompt, int steps, TextWriter log, int repeats = 3)
    {
        var device = backend.Device;
        var load = Stopwatch.StartNew();
        var (source, model) = Build(modelDir, int4, backend);
        using var _ = source;
        double loadS = load.Elapsed.TotalSeconds;
        string name = int4 ? "int4-g64-head8" : "bf16";
        log.WriteLine($"model {name}: {source.Tensors.Count} tensors made in memory, model built in {loadS:F1} s");

        // ---- encoder + adaptor on 25 s (one chunk: the official chunking cuts at 25 s)
        var speech = AudioInput.Load16k(wav);
        var samples = new float[LogMelFrontend.ChunkSamples];
        for (int i = 0; i < samples.Length; i++) samples[i] = speech[i % speech.Length];
        var mel = LogMelFrontend.Compute(samples);
        var batch = LogMelFrontend.Batch([mel]);
        var melLengths = batch.Lengths.ToInt64Array().Select(l => (int)l).ToArray();
        device.ResetPeak();
        double encMs = Best(repeats + 1, backend, () => model.EncodeAudio(batch.Mels, melLengths));
        log.WriteLine($"model {name}: encoder + adaptor on 25 s ({mel.Shape[1]} mel frames) {encMs:F1} ms");
        if (Environment.GetEnvironmentVariable("STEPLAB_PROFILE_ENCODER") == "1")
        {
            // one more pass inside a profiler range (ncu --profile-from-start off records only it)
            device.ProfilerRange(true);
            model.EncodeAudio(batch.Mels, melLengths);
            device.ProfilerRange(false);
        }

        // ---- prefill of a prompt of random text ids, then greedy decoding
        var rng = new Random(11);
        var ids = Enumerable.Range(0, prompt).Select(_ => rng.Next(151_000)).ToArray();
        KvCache cache = null!;
        Tensor logits = null!;
        double prefillMs = Best(repeats + 1, backend, () =>
        {
            cache = new KvCache(model.Config.Text);
            logits = model.LastLogits(model.EmbedPrompt(ids, null, []), 0, cache);
        });
        // four untimed decoding steps first (as the PyTorch side's one): the step's code paths are compiled on first use
        int pos = prompt;
        for (int i = 0; i < 4; i++)
            logits = model.LastLogits(model.EmbedPrompt([LogitsProcessor.ArgMax(logits.AsSpan<float>())], null, []), pos++, cache);
        backend.Stats.Reset();
        double wait0 = device.SyncWaitSeconds;
        var sw = Stopwatch.StartNew();
        // STEPLAB_PROFILE_STEPS=n: the last n steps inside a profiler range (ncu --profile-from-start off records only them)
        int profiled = int.TryParse(Environment.GetEnvironmentVariable("STEPLAB_PROFILE_STEPS"), out int ps) ? Math.Clamp(ps, 0, steps) : 0;
        for (int i = 0; i < steps; i++)
        {
            if (profiled > 0 && i == steps - profiled) device.ProfilerRange(true);
            int next = LogitsProcessor.ArgMax(logits.AsSpan<float>());
            logits = model.LastLogits(model.EmbedPrompt([next], null, []), pos++, cache);
        }
        if (profiled > 0) device.ProfilerRange(false);
        double secs = sw.Elapsed.TotalSeconds;
        double waitMs = (device.SyncWaitSeconds - wait0) * 1000 / steps; // host waiting for the device, per token
        double tokS = steps / secs;
        double opsPerToken = (double)backend.Stats.Ops / steps, transfers = (double)backend.Stats.Transfers / steps;
        // bytes streamed per decode step: every weight of the decoder and lm_head once (not the embedding table, one row)
        double weightBytes = source.Tensors.Where(t => t.Name.StartsWith("model.layers.", StringComparison.Ordinal) || t.Name.StartsWith("lm_head.", StringComparison.Ordinal) || t.Name == "model.norm.weight")
            .Sum(t => (double)t.ByteLength);
        double asrGiB = device.LiveBytes / (double)(1L << 30), peakGiB = device.PeakLiveBytes / (double)(1L << 30);
        var (free, total) = device.MemoryInfo();
        var r = new ModelBenchResult(name, backend.Name, name, LogMelFrontend.ChunkSamples / 16000.0, encMs, prompt, prefillMs, steps, tokS, 1000 / tokS,
            weightBytes / 1e9, weightBytes * tokS / 1e9, asrGiB, peakGiB, (total - free) / (double)(1L << 30), opsPerToken, transfers, loadS,
            1000 / tokS - waitMs, waitMs);
        log.WriteLine($"model {name}: prefill {prompt} tokens {prefillMs:F1} ms; decode {tokS:F1} tok/s ({1000 / tokS:F2} ms/token, {r.EffectiveGBs:F0} GB/s of " +
            $"{weightBytes / 1e9:F2} GB weights per token); device memory live {asrGiB:F2} GiB, peak {peakGiB:F2} GiB, used {r.DeviceUsedGiB:F2} GiB; " +
            $"{opsPerToken:F0} ops and {transfers:F1} transfers per token; host busy {r.HostMsPerToken:F2} ms and waiting for the device {waitMs:F2} ms per token");
        return r;
    }

    /// <summary>The full-size model from random weights made on all cores: bf16, or int4 with the <c>decoder-head8</c>
    /// recipe (decoder linears 4-bit, embeddings and lm_head 8-bit, group 64). Every key and shape is asserted.</summary>
    public static (RandomCheckpointSource Source, StepAudio2Model Model) Build(string modelDir, bool int4, Engine.IBackend backend)
    {
        var source = new RandomCheckpointSource(modelDir, int4 ? new QuantizeOptions(4, 64, "decoder-head8") : null);
        source.MakeAll();
        return (source, new StepAudio2Model(source, source.Config, backend));
    }

    /// <summary>token2wav of the bench input (codes, prompt tokens, prompt mel, x-vector) written by
    /// <c>bench/make_token2wav_bench.py</c> on the device, from its random full-size flow.pt / hift.pt.</summary>
    public static Token2WavBenchResult Token2Wav(string dir, CudaBackend backend, TextWriter log, int repeats = 3)
    {
        using var t2w = Models.Token2Wav.Token2Wav.Load(Path.Combine(dir, "token2wav"), promptModels: false, backend: backend);
        using var inputs = SafetensorsFile.Open(Path.Combine(dir, "inputs.safetensors"));
        var codes = inputs.Get("input.codes").ToInt64Array().Select(c => (int)c).ToArray();
        var promptTokens = inputs.Get("input.prompt_tokens").ToInt64Array().Select(c => (int)c).ToArray();
        var promptMel = inputs.Get("input.prompt_mel");
        var xvector = inputs.Get("input.xvector");
        backend.Device.ResetPeak();
        Token2WavResult? best = null;
        for (int r = 0; r <= repeats; r++) // the first run is the warm-up
        {
            var result = t2w.Generate(codes, promptTokens, promptMel, xvector, seed: 0);
            if (r > 0 && (best is null || result.Total < best.Total)) best = result;
        }
        var b = best!;
        var res = new Token2WavBenchResult(backend.Name, codes.Length, promptTokens.Length, b.AudioSeconds, b.FlowTime.TotalMilliseconds, b.HiftTime.TotalMilliseconds,
            b.Total.TotalMilliseconds, b.RealTimeFactor, backend.Device.PeakLiveBytes / (double)(1L << 30));
        log.WriteLine($"token2wav {backend.Name}: {codes.Length} codes → {b.AudioSeconds:F2} s of audio: flow {res.FlowMs:F1} ms + HiFT {res.HiftMs:F1} ms = {res.TotalMs:F1} ms (RTF {res.RealTimeFactor:F4}); peak {res.PeakDeviceGiB:F2} GiB");
        return res;
    }

    /// <summary>Best wall time in ms of <paramref name="runs"/> − 1 runs after one warm-up, the device synchronised.</summary>
    private static double Best(int runs, CudaBackend backend, Action work)
    {
        double best = double.MaxValue;
        for (int r = 0; r < runs; r++)
        {
            backend.Synchronize();
            var sw = Stopwatch.StartNew();
            work();
            backend.Synchronize();
            if (r > 0) best = Math.Min(best, sw.Elapsed.TotalMilliseconds);
        }
        return best;
    }
}
