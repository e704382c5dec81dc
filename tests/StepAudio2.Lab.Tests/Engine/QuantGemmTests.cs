using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The fused quantized kernels (GEMV for m ≤ 4, panel GEMM above) on every instruction path this machine has — AVX-512,
/// AVX2, the portable Vector128 path and the scalar one, forced through <see cref="QuantGemm.ForcePath"/> (what a
/// machine without AVX2/AVX-512, or an ARM64 one, runs) — against a scalar dequantise-then-matmul oracle in float64.
/// </summary>
public sealed class QuantGemmTests
{
    public static TheoryData<int, int> Formats()
    {
        var data = new TheoryData<int, int>();
        foreach (int bits in QuantizedWeight.SupportedBits)
            foreach (int gs in QuantizedWeight.SupportedGroupSizes)
                data.Add(bits, gs);
        return data;
    }

    private static IEnumerable<QuantPath> Paths() =>
        Enum.GetValues<QuantPath>().Where(p => p <= QuantGemm.BestPath);

    [Theory]
    [MemberData(nameof(Formats))]
    public void EveryPathMatchesTheDequantisedOracle(int bits, int groupSize)
    {
        const int n = 37, k = 384;
        var rng = new Random(bits * 1000 + groupSize);
        var wf = RandomMatrix(rng, n, k, bf16: true);
        var q = AffineQuantizer.Quantize(wf, bits, groupSize);
        var deq = AffineQuantizer.Dequantize(q).AsSpan<float>().ToArray();
        var bias = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (float)(rng.NextDouble() - 0.5)).ToArray(), n);
        foreach (int m in new[] { 1, 2, 3, 4, 7, 19 })
        {
            var x = RandomMatrix(rng, m, k, bf16: false);
            var expected = Oracle(x.AsSpan<float>().ToArray(), deq, bias.ToFloatArray(), m, n, k, out var scale);
            foreach (var path in Paths())
            {
                QuantGemm.ForcePath = path;
                try
                {
                    var y = Ops.QuantizedLinear(x, q, bias).AsSpan<float>().ToArray();
                    for (int i = 0; i < y.Length; i++)
                        Assert.True(Math.Abs(y[i] - expected[i]) <= 2e-6 * scale[i] + 1e-6,
                            $"{path} bits {bits} group {groupSize} m {m} [{i / n}, {i % n}]: {y[i]} vs {expected[i]} (Σ|x·w| {scale[i]:G3})");
                }
                finally { QuantGemm.ForcePath = null; }
            }
        }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(3)]
    public void PrefillGivesTheBitsOfTheF32GemmOverTheDequantisedWeight(int bits)
    {
        // The SIMD prefill packs A once and multiplies it by tiles of dequantised rows; every element must come out as the
        // f32 GEMM over the dequantised matrix computes it: n = 100 crosses a 96-row tile, k = 640 three KC blocks,
        // m = 250 two MC blocks of the AVX-512 tile, m = 5 is the smallest GEMM (m ≤ 4 takes the GEMV).
        const int n = 100, k = 640;
        var rng = new Random(bits);
        var q = AffineQuantizer.Quantize(RandomMatrix(rng, n, k, bf16: true), bits, 64);
        var deq = AffineQuantizer.Dequantize(q);
        var bias = Tensor.FromArray(Enumerable.Range(0, n).Select(i => (float)(rng.NextDouble() - 0.5)).ToArray(), n);
        foreach (var gemmPath in new[] { Gemm.BestPath, Gemm.BestPath >= GemmPath.Avx2 ? GemmPath.Avx2 : Gemm.BestPath }.Distinct())
            foreach (int m in new[] { 5, 19, 89, 250 })
            {
                var x = RandomMatrix(rng, m, k, bf16: false);
                Gemm.ForcePath = gemmPath;
                try
                {
                    var expected = Ops.Linear(x, deq, bias).ToFloatArray();
                    foreach (var path in Paths().Where(p => p >= QuantPath.Avx2))
                    {
                        QuantGemm.ForcePath = path;
                        try { Assert.Equal(expected, Ops.QuantizedLinear(x, q, bias).ToFloatArray()); }
                        finally { QuantGemm.ForcePath = null; }
                    }
                }
                finally { Gemm.ForcePath = null; }
            }
    }

    [Fact]
    public void LlmWidthsOnEveryPath()
    {
        // k = 3584/18944-like widths (several 128-groups, odd row counts) through GEMV and GEMM on each path
        var rng = new Random(7);
        foreach (var (n, k) in new[] { (67, 1152), (9, 2432), (13, 8832) }) // the last: k > 8192 takes the chunked row-tile GEMV
            foreach (int bits in new[] { 4, 8 })
            {
                var q = AffineQuantizer.Quantize(RandomMatrix(rng, n, k, bf16: true), bits, 64);
                var deq = AffineQuantizer.Dequantize(q).AsSpan<float>().ToArray();
                foreach (int m in new[] { 1, 4, 6 })
                {
                    var x = RandomMatrix(rng, m, k, bf16: false);
                    var expected = Oracle(x.AsSpan<float>().ToArray(), deq, null, m, n, k, out var scale);
                    foreach (var path in Paths())
                    {
                        QuantGemm.ForcePath = path;
                        try
                        {
                            var y = Ops.QuantizedLinear(x, q).AsSpan<float>().ToArray();
                            for (int i = 0; i < y.Length; i++)
                                Assert.True(Math.Abs(y[i] - expected[i]) <= 2e-6 * scale[i] + 1e-6, $"{path} bits {bits} [{n}x{k}] m {m} at {i}: {y[i]} vs {expected[i]}");
                        }
                        finally { QuantGemm.ForcePath = null; }
                    }
                }
            }
    }

    [Fact]
    public void ThreadedGemvEqualsOneThreadBitForBitAndTheOracle()
    {
        // large enough for the worker team (GemvTeam: many row chunks claimed dynamically): every row is computed whole by
        // one thread, so the split must not change a bit; k = 8832 takes the chunked row-tile walk with tile prefetching
        var rng = new Random(11);
        int saved = Gemm.MaxThreads;
        try
        {
            foreach (var (n, k, gs) in new[] { (301, 1024, 64), (41, 8832, 64), (97, 2048, 128), (130, 1024, 32) })
                foreach (int bits in new[] { 4, 8 })
                {
                    var q = AffineQuantizer.Quantize(RandomMatrix(rng, n, k, bf16: true), bits, gs);
                    var deq = AffineQuantizer.Dequantize(q).AsSpan<float>().ToArray();
                    foreach (int m in new[] { 1, 2, 4 })
                    {
                        var x = RandomMatrix(rng, m, k, bf16: false);
                        var expected = Oracle(x.AsSpan<float>().ToArray(), deq, null, m, n, k, out var scale);
                        foreach (var path in Paths())
                        {
                            QuantGemm.ForcePath = path;
                            try
                            {
                                Gemm.MaxThreads = 1;
                                var one = Ops.QuantizedLinear(x, q).AsSpan<float>().ToArray();
                                Gemm.MaxThreads = 3;
                                var three = Ops.QuantizedLinear(x, q).AsSpan<float>().ToArray();
                                Assert.Equal(one, three);
                                for (int i = 0; i < one.Length; i++)
                                    Assert.True(Math.Abs(one[i] - expected[i]) <= 2e-6 * scale[i] + 1e-6, $"{path} bits {bits} group {gs} [{n}x{k}] m {m} at {i}: {one[i]} vs {expected[i]}");
                            }
                            finally { QuantGemm.ForcePath = null; }
                        }
                    }
                }
        }
        finally { Gemm.MaxThreads = saved; }
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    [InlineData(3)]
    public void TakeDequantisesRowsExactly(int bits)
    {
        var rng = new Random(bits);
        var q = AffineQuantizer.Quantize(RandomMatrix(rng, 50, 128, bf16: true), bits, 32);
        var deq = AffineQuantizer.Dequantize(q).AsSpan<float>().ToArray();
        int[] ids = [3, 49, 0, 3];
        foreach (var path in Paths())
        {
            QuantGemm.ForcePath = path;
            try
            {
                var rows = Ops.Take(q, ids).AsSpan<float>().ToArray();
                for (int i = 0; i < ids.Length; i++)
                    Assert.Equal(deq.AsSpan(ids[i] * 128, 128).ToArray(), rows.AsSpan(i * 128, 128).ToArray());
            }
            finally { QuantGemm.ForcePath = null; }
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Take(q, [50]));
    }

    [Fact]
    public void WrongInputWidthIsRefusedWithBothShapes()
    {
        var q = AffineQuantizer.Quantize(Tensor.Zeros(DType.F32, 8, 64), 4, 32);
        var e = Assert.Throws<ArgumentException>(() => Ops.QuantizedLinear(Tensor.Zeros(DType.F32, 2, 32), q));
        Assert.Contains("[2, 32]", e.Message);
        Assert.Contains("64", e.Message);
    }

    internal static Tensor RandomMatrix(Random rng, int rows, int cols, bool bf16)
    {
        var v = new float[rows * cols];
        for (int i = 0; i < v.Length; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * (1 + 3 * (i % 7 == 0 ? 1 : 0)));
        var t = Tensor.FromArray(v, rows, cols);
        return bf16 ? t.To(DType.BF16) : t;
    }

    /// <summary>float64 x·deqᵀ (+ bias) and Σ|x·w| per output (the scale of f32 rounding).</summary>
    private static double[] Oracle(float[] x, float[] w, float[]? bias, int m, int n, int k, out double[] scale)
    {
        var y = new double[m * n];
        scale = new double[m * n];
        for (int r = 0; r < m; r++)
            for (int j = 0; j < n; j++)
            {
                double s = bias?[j] ?? 0, a = Math.Abs(bias?[j] ?? 0);
                for (int i = 0; i < k; i++) { double p = (double)x[r * k + i] * w[j * k + i]; s += p; a += Math.Abs(p); }
                y[r * n + j] = s;
                scale[r * n + j] = a;
            }
        return y;
    }
}
