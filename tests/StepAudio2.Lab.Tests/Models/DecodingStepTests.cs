using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>
/// The decoding step (<see cref="Qwen2Model.StepBatch"/>: the fused capabilities AddRmsNorm, LinearGroup, RopeAppend,
/// SwiGlu) computes what the traced op-by-op forward computes, bit for bit on the CPU backend, on the tiny checkpoint.
/// </summary>
public sealed class DecodingStepTests
{
    [Fact]
    public void TheFusedStepGivesTheBitsOfTheOpByOpForward()
    {
        string tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var checkpoint = Fixtures.OpenCheckpoint(tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(tiny));
        var qwen = model.Model;
        int[] prompt = [151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30];
        var plain = new KvCache(qwen.Config);
        var fused = new KvCache(qwen.Config);
        // prefill (n > 1 always takes the op-by-op path), then three decoding steps on each cache
        var h0 = qwen.Forward(qwen.Embed(prompt), 0, plain);
        Assert.Equal(h0.ToFloatArray(), qwen.Forward(qwen.Embed(prompt), 0, fused).ToFloatArray());
        int[] next = [9707, 11, 1879];
        for (int i = 0; i < next.Length; i++)
        {
            int pos = prompt.Length + i;
            var viaOps = qwen.Forward(qwen.Embed([next[i]]), pos, plain, new Trace()); // traced: layer by layer, op by op
            var viaStep = qwen.Forward(qwen.Embed([next[i]]), pos, fused);               // untraced one token: the fused step
            Assert.Equal([1, qwen.Config.HiddenSize], viaStep.Shape);
            Assert.Equal(viaOps.ToFloatArray(), viaStep.ToFloatArray());
        }
        Assert.Equal(plain.Length, fused.Length);
    }

    [Fact]
    public void AddRmsNormRefusesBroadcastingNamingBothShapes()
    {
        var e = Assert.Throws<ArgumentException>(() => Ops.AddRmsNorm(Tensor.Zeros(DType.F32, 1, 2, 8), Tensor.Zeros(DType.F32, 1, 1, 8), Tensor.Zeros(DType.F32, 8), 1e-6f));
        Assert.Contains("[1, 2, 8]", e.Message);
        Assert.Contains("[1, 1, 8]", e.Message);
    }

    [Fact]
    public void ReserveAndCommitRefuseBadCountsNamingThem()
    {
        var cache = new LayerKvCache(kvHeads: 2, headDim: 4);
        cache.Reserve(3);
        cache.Commit(3);
        var e = Assert.Throws<InvalidOperationException>(() => cache.Commit(100));
        Assert.Contains("capacity 64", e.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Commit(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Reserve(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Reserve(int.MaxValue));
        Assert.Equal(3, cache.Length);
        // a fresh cache hands out its buffers even for zero positions
        var (k, v) = new LayerKvCache(kvHeads: 2, headDim: 4).Reserve(0);
        Assert.Equal([1, 2, 64, 4], k.Shape);
        Assert.Equal(k.Shape, v.Shape);
    }
}
