using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>The CPU backend's scaled-dot-product attention runs one (batch, head) per worker with single-threaded products;
/// its result must not depend on the thread count (the values themselves are checked against PyTorch in OpsTests).</summary>
public sealed class CpuAttentionTests
{
    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void AttentionDoesNotDependOnThreadCount(bool causal, bool keepScores)
    {
        // Every product sums in k order whatever its thread count and every row pass is per row, so 1, 2 and 3 threads
        // (12 batch·head pairs over 1, 2 or 3 workers, grouped heads, key mask) give the same bits.
        var cpu = new CpuBackend();
        var rnd = new Random(17);
        Tensor R(params int[] s)
        {
            var a = new float[s.Aggregate(1, (x, y) => x * y)];
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rnd.NextDouble() * 2 - 1);
            return Tensor.FromArray(a, s);
        }
        var q = R(2, 6, 40, 16);
        var k = R(2, 3, 45, 16);
        var v = R(2, 3, 45, 8);
        var mask = R(2, 1, 1, 45);
        int saved = Gemm.MaxThreads;
        try
        {
            (float[] Out, float[]? Scores) Run(int threads)
            {
                Gemm.MaxThreads = threads;
                var s = keepScores ? Tensor.FromArray(new float[2 * 6 * 40 * 45], 2, 6, 40, 45) : null;
                var o = cpu.ScaledDotProductAttention(q, k, v, 0.35f, mask, causal, s).ToFloatArray();
                return (o, s?.ToFloatArray());
            }
            var one = Run(1);
            Assert.All(one.Out, x => Assert.True(float.IsFinite(x)));
            foreach (int threads in new[] { 2, 3 })
            {
                var other = Run(threads);
                Assert.Equal(one.Out, other.Out);
                Assert.Equal(one.Scores, other.Scores);
            }
        }
        finally { Gemm.MaxThreads = saved; }
    }
}
