using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>The fused row kernels against the unfused engine ops and float64 references, and the thread-count GEMM entry points.</summary>
public sealed unsafe class RowKernelsTests
{
    private static float[] Random(int n, int seed, double lo, double hi)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();
    }

    [Theory]
    [InlineData(512, 1e-6f)]
    [InlineData(64, 1e-5f)]
    [InlineData(13, 1e-12f)] // tail without a full vector
    public void LayerNormRowMatchesTheEngineOpWithAffineAndModulation(int d, float eps)
    {
        const int rows = 7;
        var x = Random(rows * d, 1, -3, 5);
        var w = Random(d, 2, 0.5, 1.5);
        var b = Random(d, 3, -1, 1);
        var scale = Random(d, 4, -0.5, 0.5);
        var shift = Random(d, 5, -1, 1);
        var onePlus = scale.Select(s => s + 1f).ToArray();
        var reference = Ops.LayerNorm(Tensor.FromArray(x, rows, d), Tensor.FromArray(w, d), Tensor.FromArray(b, d), eps).ToFloatArray();
        var plain = Ops.LayerNorm(Tensor.FromArray(x, rows, d), null, null, eps).ToFloatArray();
        var y = new float[rows * d];
        var z = new float[rows * d];
        for (int r = 0; r < rows; r++)
        {
            RowKernels.LayerNorm(x.AsSpan(r * d, d), y.AsSpan(r * d, d), eps, w, b, default, default);
            RowKernels.LayerNorm(x.AsSpan(r * d, d), z.AsSpan(r * d, d), eps, default, default, onePlus, shift);
        }
        for (int i = 0; i < y.Length; i++)
        {
            Assert.True(Math.Abs(y[i] - reference[i]) <= 2e-6 * (1 + Math.Abs(reference[i])), $"affine [{i}]: {y[i]} vs {reference[i]}");
            float mod = plain[i] * onePlus[i % d] + shift[i % d];
            Assert.True(Math.Abs(z[i] - mod) <= 2e-6 * (1 + Math.Abs(mod)), $"modulated [{i}]: {z[i]} vs {mod}");
        }
        // in place gives the same values
        var inPlace = (float[])x.Clone();
        RowKernels.LayerNorm(inPlace.AsSpan(0, d), inPlace.AsSpan(0, d), eps, w, b, default, default);
        Assert.Equal(y.AsSpan(0, d).ToArray(), inPlace.AsSpan(0, d).ToArray());
    }

    [Fact]
    public void MomentsAreTheFloat64MeanAndInverseStd()
    {
        var x = Random(515, 9, 100, 101); // large mean, small spread: a one-pass float variance would lose it
        double mean = x.Average(v => (double)v), var = x.Sum(v => (v - mean) * (v - mean)) / x.Length;
        var (m, rstd) = RowKernels.Moments(x, 1e-6f);
        Assert.Equal((float)mean, m);
        Assert.Equal((float)(1 / Math.Sqrt(var + 1e-6f)), rstd, 6);
    }

    [Fact]
    public void MishMatchesAFloat64ReferenceOverTheWholeRange()
    {
        var x = Random(4000, 6, -30, 30).Concat([-100f, -87f, -20f, -1e-6f, 0f, 1e-6f, 19.99f, 20f, 20.01f, 88f, 89f, 1000f]).ToArray();
        var y = new float[x.Length];
        RowKernels.Mish(x, y);
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i], expected = v * Math.Tanh(v > 700 ? v : Math.Log(1 + Math.Exp(v)));
            // relative 1e−6, with an absolute floor of 1e−10 for the far tail (e^−30 ≈ 1e−13, where the vectorised exp
            // is only good to ~1e−3 relative); tanh's cancellation on tiny arguments (errors ~1e−6 absolute) still fails it
            Assert.True(Math.Abs(y[i] - expected) <= 1e-6 * Math.Abs(expected) + 1e-10, $"mish({x[i]}) = {y[i]}, expected {expected}");
        }
        var inPlace = (float[])x.Clone();
        RowKernels.Mish(inPlace, inPlace);
        Assert.Equal(y, inPlace);
    }

    [Fact]
    public void GatedAddRoundsTheProductThenTheSum()
    {
        var h = Random(37, 7, -2, 2);
        var y = Random(37, 8, -2, 2);
        var g = Random(37, 9, -2, 2);
        var expected = h.Select((v, i) => v + y[i] * g[i]).ToArray();
        RowKernels.GatedAdd(h, y, g);
        Assert.Equal(expected, h);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(1, 2)]
    [InlineData(7, 3)]
    [InlineData(1000, 2)]
    [InlineData(5, 1)]
    public void ForCoversEveryIndexOnce(int count, int threads)
    {
        var hits = new int[count];
        RowKernels.For(count, threads, (s, e) => { for (int i = s; i < e; i++) Interlocked.Increment(ref hits[i]); });
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Theory]
    [InlineData(350, 350, 64)]
    [InlineData(3, 20, 9)] // GEMV path
    [InlineData(37, 64, 350)]
    public void SingleThreadEntryPointsGiveTheSameBitsAsTheDefault(int m, int n, int k)
    {
        var a = Random(m * k, 1, -1, 1);
        var bNt = Random(n * k, 2, -1, 1);
        var bNn = Random(k * n, 3, -1, 1);
        var bias = Random(n, 4, -1, 1);
        float[] c1 = new float[m * n], c2 = new float[m * n], c3 = new float[m * n], c4 = new float[m * n];
        fixed (float* pa = a, pnt = bNt, pnn = bNn, pb = bias, p1 = c1, p2 = c2, p3 = c3, p4 = c4)
        {
            Gemm.SgemmNT(m, n, k, pa, k, pnt, k, p1, n, pb);
            Gemm.SgemmNTOn(1, m, n, k, pa, k, pnt, k, p2, n, pb);
            Gemm.SgemmNN(m, n, k, pa, k, pnn, n, p3, n);
            Gemm.SgemmNNOn(1, m, n, k, pa, k, pnn, n, p4, n);
        }
        if (m > 4) // the blocked GEMM sums each element in k order whatever the split; GEMV lanes may split differently
        {
            Assert.Equal(c1, c2);
            Assert.Equal(c3, c4);
        }
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double nt = bias[j], nn = 0;
                for (int p = 0; p < k; p++) { nt += (double)a[i * k + p] * bNt[j * k + p]; nn += (double)a[i * k + p] * bNn[p * n + j]; }
                Assert.True(Math.Abs(c2[i * n + j] - nt) <= 1e-5 * (1 + Math.Abs(nt)), $"NT [{i},{j}]");
                Assert.True(Math.Abs(c4[i * n + j] - nn) <= 1e-5 * (1 + Math.Abs(nn)), $"NN [{i},{j}]");
            }
    }
}
