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

    [Theory]
    [InlineData(false, 1)]
    [InlineData(true, 1)]
    [InlineData(false, 2)]
    [InlineData(true, 3)]
    public void BlockedAttentionGivesTheBitsOfThePerHeadProducts(bool causal, int threads)
    {
        // Past a million multiply-adds, without kept scores, the attention runs a block of query rows at a time over keys
        // and values packed once per head, on head views with their row strides, and writes [B, T, H, Dv]. Keeping the
        // scores takes the per-head [T, T] path; both must give the same bits on every GEMM path. 130 queries cross the
        // 120-row block; heads are views of [B, T, H·D] projections (row stride H·D), two query heads per key head.
        var cpu = new CpuBackend();
        var rnd = new Random(23);
        Tensor R(params int[] s)
        {
            var a = new float[s.Aggregate(1, (x, y) => x * y)];
            for (int i = 0; i < a.Length; i++) a[i] = (float)(rnd.NextDouble() * 2 - 1);
            return Tensor.FromArray(a, s);
        }
        const int b = 2, hq = 4, hkv = 2, tq = 130, tk = 150, d = 40, dv = 24;
        var q = R(b, tq, hq, d).Permute(0, 2, 1, 3);
        var k = R(b, tk, hkv, d).Permute(0, 2, 1, 3);
        var v = R(b, tk, hkv, dv).Permute(0, 2, 1, 3);
        var mask = R(b, 1, 1, tk);
        int saved = Gemm.MaxThreads;
        try
        {
            Gemm.MaxThreads = threads;
            foreach (var path in new[] { Gemm.BestPath, Gemm.BestPath >= GemmPath.Avx2 ? GemmPath.Avx2 : GemmPath.Portable, GemmPath.Portable }.Distinct())
            {
                Gemm.ForcePath = path;
                try
                {
                    var blocked = cpu.ScaledDotProductAttention(q, k, v, 0.3f, mask, causal, null);
                    var scores = Tensor.FromArray(new float[b * hq * tq * tk], b, hq, tq, tk);
                    var perHead = cpu.ScaledDotProductAttention(q, k, v, 0.3f, mask, causal, scores);
                    Assert.Equal(new[] { b, hq, tq, dv }, blocked.Shape.ToArray());
                    var expected = perHead.ToFloatArray();
                    Assert.All(expected, x => Assert.True(float.IsFinite(x)));
                    Assert.Equal(expected, blocked.ToFloatArray());
                }
                finally { Gemm.ForcePath = null; }
            }
        }
        finally { Gemm.MaxThreads = saved; }
    }
}
