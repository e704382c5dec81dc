using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// The DiT's fused kernels (<see cref="Dit.UseFusedKernels"/>, the default) against its op-by-op composition on the tiny
/// flow of reference-data/make_flow.py (and the same for the encoder's relative-position attention): the two agree far inside the f32 tier, with per-row times that differ (so each
/// CFG row gets its own modulation), and the op-by-op path, the benchmark's baseline, still matches the Python dump.
/// </summary>
public sealed class FlowFusedTests(ITestOutputHelper output)
{
    private static string Token2WavDir => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");

    // an instance of its own: these tests flip UseFusedKernels, which the shared instance of FlowTests must not see
    private static readonly Lazy<Flow> OwnFlow = new(() => Flow.Load(Token2WavDir));

    private static Tensor Rand(int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var v = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(v, shape);
    }

    [Theory]
    [InlineData(2, 64, 0.25f, 0.8f)]
    [InlineData(2, 7, 0f, 1f)] // fewer frames than a GEMM tile
    [InlineData(1, 33, 0.5f, 0.5f)]
    public void FusedEstimatorMatchesTheOpByOpComposition(int batch, int frames, float t0, float t1)
    {
        var dit = OwnFlow.Value.Decoder.Estimator;
        int c = dit.Config.OutChannels;
        var x = Rand(1, batch, c, frames);
        var mu = Rand(2, batch, c, frames);
        var cond = Rand(3, batch, c, frames);
        var spks = Rand(4, batch, c);
        float[] t = batch == 2 ? [t0, t1] : [t0];
        Tensor fused, opByOp;
        lock (OwnFlow)
        {
            dit.UseFusedKernels = false;
            opByOp = dit.Forward(x, mu, t, spks, cond);
            dit.UseFusedKernels = true;
            fused = dit.Forward(x, mu, t, spks, cond);
        }
        double rel = FlowTests.RelL2(fused, opByOp, "velocity");
        output.WriteLine($"fused vs op-by-op rel-L2 {rel:E3}");
        Assert.True(rel <= 1e-6, $"fused vs op-by-op rel-L2 {rel:E3}");

        // the rows really are modulated apart: swapping the times changes a row's velocity
        if (batch == 2 && t0 != t1)
        {
            var swapped = dit.Forward(x, mu, [t1, t0], spks, cond);
            Assert.True(FlowTests.RelL2(swapped, fused, "swapped times") > 1e-3);
        }
    }

    // Each block alone, with f32 weights (as loaded) and with bf16 copies of them (read in place by the fused GEMMs, widened
    // by Linear's own path in the composition): the backend's fused DitBlock against Composite.DitBlock, per CFG row.
    [Theory]
    [InlineData(false, 2, 19)]
    [InlineData(true, 2, 19)]
    [InlineData(true, 1, 5)]
    public void FusedDitBlockMatchesCompositeWithF32AndBf16Weights(bool bf16, int batch, int frames)
    {
        var dit = OwnFlow.Value.Decoder.Estimator;
        int d = dit.Config.HiddenSize;
        foreach (var (block, i) in dit.Blocks.Select((b, i) => (b, i)))
        {
            var w = block.Weights;
            if (bf16)
            {
                static Tensor B(Tensor t) => t.To(DType.BF16);
                w = w with { ToQ = B(w.ToQ), ToK = B(w.ToK), ToV = B(w.ToV), Proj = B(w.Proj), Fc1 = B(w.Fc1), Fc2 = B(w.Fc2) };
            }
            var h = Rand(10 + i, batch, frames, d);
            var m = Ops.Multiply(Rand(20 + i, batch, 9 * d), 0.5f);
            var fused = Ops.DitBlock(h, m, w);
            var plain = Composite.DitBlock(h, m, w);
            double rel = FlowTests.RelL2(fused, plain, $"block {i}");
            output.WriteLine($"block {i} ({(bf16 ? "bf16" : "f32")} weights, B={batch}, T={frames}): fused vs composite rel-L2 {rel:E3}");
            Assert.True(rel <= 1e-6, $"block {i}: fused vs composite rel-L2 {rel:E3}");
            Assert.True(FlowTests.RelL2(fused, h, "residual") > 1e-3); // the block did change h
        }
    }

    [Fact]
    public void FusedRelPositionAttentionMatchesComposite()
    {
        var attn = OwnFlow.Value.Encoder.Encoders[0].SelfAttn;
        int t = 23, d = attn.Heads * attn.HeadDim;
        var q = Rand(31, 1, t, d); var k = Rand(32, 1, t, d); var v = Rand(33, 1, t, d); var p = Rand(34, 2 * t - 1, d);
        var u = Rand(35, attn.Heads, attn.HeadDim); var bv = Rand(36, attn.Heads, attn.HeadDim);
        var fused = Ops.RelPositionAttention(q, k, v, p, u, bv, attn.Heads);
        var plain = Composite.RelPositionAttention(q, k, v, p, u, bv, attn.Heads);
        double rel = FlowTests.RelL2(fused, plain, "rel-position attention");
        output.WriteLine($"rel-position attention fused vs composite rel-L2 {rel:E3}");
        Assert.True(rel <= 1e-6, $"rel-L2 {rel:E3}");
    }

    [Fact]
    public void FusedEncoderAttentionMatchesTheOpByOpCompositionAndTheDump()
    {
        var enc = OwnFlow.Value.Encoder;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var emb = dump.Get("flow.input_embedding");
        Tensor fused, opByOp;
        lock (OwnFlow)
        {
            enc.UseFusedKernels = false;
            Assert.False(enc.UseFusedKernels);
            opByOp = enc.Forward(emb);
            enc.UseFusedKernels = true;
            fused = enc.Forward(emb);
        }
        double rel = FlowTests.RelL2(fused, opByOp, "encoder");
        output.WriteLine($"encoder fused vs op-by-op rel-L2 {rel:E3}");
        Assert.True(rel <= 1e-6, $"encoder fused vs op-by-op rel-L2 {rel:E3}");
        foreach (var (name, y) in new[] { ("fused", fused), ("op-by-op", opByOp) })
        {
            double r = FlowTests.RelL2(y, dump.Get("flow.encoder"), name);
            output.WriteLine($"{name} flow.encoder rel-L2 {r:E3}");
            Assert.True(r <= 1e-5, $"{name} flow.encoder rel-L2 {r:E3}");
        }
    }

    [Fact]
    public void BothPathsMatchThePythonDumpAtEveryStep()
    {
        var flow = OwnFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var codes = dump.Get("input.codes").ToInt64Array().Select(v => (int)v).ToArray();
        var prompt = dump.Get("input.prompt_tokens").ToInt64Array().Select(v => (int)v).ToArray();
        foreach (bool fused in new[] { false, true })
        {
            var trace = new Trace();
            Tensor mel;
            lock (OwnFlow)
            {
                flow.Decoder.Estimator.UseFusedKernels = flow.Encoder.UseFusedKernels = fused;
                mel = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), dump.Get("input.noise"), trace: trace);
                flow.Decoder.Estimator.UseFusedKernels = flow.Encoder.UseFusedKernels = true;
            }
            foreach (var name in Enumerable.Range(0, 10).Select(k => $"flow.decoder.estimator.step.{k}")
                         .Concat(["flow.encoder.encoders.0", "flow.encoder.up_encoders.1", "flow.encoder", "flow.decoder"]))
            {
                double rel = FlowTests.RelL2(trace[name], dump.Get(name), name);
                output.WriteLine($"{(fused ? "fused" : "op-by-op")} {name} rel-L2 {rel:E3}");
                Assert.True(rel <= 1e-5, $"{(fused ? "fused" : "op-by-op")} {name}: rel-L2 {rel:E3}");
            }
            Assert.True(FlowTests.RelL2(mel, dump.Get("flow"), "flow") <= 1e-5);
        }
    }
}
