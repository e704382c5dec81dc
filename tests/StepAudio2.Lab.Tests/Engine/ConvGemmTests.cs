using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using Conv1dLayer = StepAudio2.Lab.Models.Nn.Conv1d;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The CPU backend's prepared convs (<see cref="ConvGemm"/>: weights packed once per weight tensor, used by Conv1d /
/// ConvTranspose1d whenever they apply) against a float64 direct convolution and against the backend's plain
/// explicit-im2col path (<c>UsePackedConvs = false</c>), and the vectorised sine / Snake
/// (<see cref="VectorTrig"/>) against float64; the conv layers also on the portable Vector128 path (<see cref="Gemm.ForcePath"/>).
/// </summary>
public sealed class ConvGemmTests
{
    // (B, Cin, Cout, K, stride, padding, dilation, T): Cout not a multiple of 6 or > one 144-row block, T' not a multiple
    // of 16 and past one 256-column chunk, Cin·K past one 256-deep block, HiFT's dilations and source_downs strides.
    public static IEnumerable<object[]> ConvCases() =>
    [
        [1, 3, 5, 3, 1, 1, 1, 20],
        [2, 7, 13, 3, 1, 5, 5, 37],
        [1, 18, 20, 30, 15, 7, 1, 300],
        [1, 18, 9, 6, 3, 1, 1, 100],
        [1, 40, 150, 7, 1, 3, 1, 290],
        [1, 24, 64, 11, 1, 15, 3, 530],
        [2, 16, 8, 3, 2, 1, 1, 33],
        [1, 300, 7, 1, 1, 0, 1, 17],
    ];

    [Theory]
    [MemberData(nameof(ConvCases))]
    public void Conv1dLayerMatchesFloat64AndTheGenericOp(int b, int cin, int cout, int k, int stride, int pad, int dil, int t)
        => CheckConv1d(b, cin, cout, k, stride, pad, dil, t);

    // The portable Vector128 tile (ARM64 NEON, x86 without AVX2) forced on this thread; the generic op it is compared
    // with bit for bit runs on the same path, so the shared k order is checked too.
    [Theory]
    [MemberData(nameof(ConvCases))]
    public void Conv1dLayerOnThePortablePath(int b, int cin, int cout, int k, int stride, int pad, int dil, int t)
        => OnPortablePath(() => CheckConv1d(b, cin, cout, k, stride, pad, dil, t));

    private static void OnPortablePath(Action run)
    {
        Gemm.ForcePath = GemmPath.Portable;
        try
        {
            Assert.True(ConvGemm.IsSupported);
            run();
        }
        finally { Gemm.ForcePath = null; }
    }

    private static void CheckConv1d(int b, int cin, int cout, int k, int stride, int pad, int dil, int t)
    {
        Assert.True(ConvGemm.IsSupported, "these tests run on a machine with hardware vectors (AVX2/FMA, NEON or SSE)");
        var rng = new Random(cin * 1000 + cout * 10 + k);
        var x = Rand(rng, b, cin, t);
        var w = Rand(rng, cout, cin, k);
        var bias = Rand(rng, cout);
        var layer = new Conv1dLayer("c", w, bias, stride, pad, dil);
        var y = layer.Forward(x);
        int tout = (t + 2 * pad - dil * (k - 1) - 1) / stride + 1;
        Assert.Equal(new[] { b, cout, tout }, y.Shape);

        var xs = x.ToFloatArray(); var ws = w.ToFloatArray(); var bs = bias.ToFloatArray(); var ys = y.ToFloatArray();
        for (int bi = 0; bi < b; bi++)
            for (int o = 0; o < cout; o++)
                for (int j = 0; j < tout; j++)
                {
                    double s = bs[o], mag = Math.Abs(bs[o]);
                    for (int ci = 0; ci < cin; ci++)
                        for (int kk = 0; kk < k; kk++)
                        {
                            int ti = j * stride + kk * dil - pad;
                            if ((uint)ti >= (uint)t) continue;
                            double p = (double)ws[(o * cin + ci) * k + kk] * xs[(bi * cin + ci) * t + ti];
                            s += p; mag += Math.Abs(p);
                        }
                    double got = ys[(bi * cout + o) * tout + j];
                    Assert.True(Math.Abs(got - s) <= 1e-6 * mag + 1e-30, $"y[{bi},{o},{j}] = {got}, float64 {s}");
                }
        // the same sums in the same order as the explicit-im2col GEMM of the generic op (bit for bit once T' > 4,
        // where that op leaves its GEMV path)
        var generic = OnPlain(() => Ops.Conv1d(x, w, bias, stride, pad, dil));
        if (tout > 4) Assert.Equal(generic, ys);
    }

    /// <summary>The CPU backend with its prepared (packed) convs off: the explicit-im2col / column GEMM paths.</summary>
    private static readonly CpuBackend Plain = new() { UsePackedConvs = false };

    private static float[] OnPlain(Func<Tensor> run)
    {
        using var _ = Ops.Use(Plain);
        return run().ToFloatArray();
    }

    [Fact]
    public void PackedWeightsArePreparedPerWeightTensor()
    {
        // two weights of one shape through the same backend: each conv uses its own packed copy (a cache keyed by the
        // weight, not by the shape), and a second call reuses the first call's packing with the same result
        var rng = new Random(3);
        var x = Rand(rng, 1, 12, 40);
        var w1 = Rand(rng, 10, 12, 3);
        var w2 = Rand(rng, 10, 12, 3);
        var y1 = Ops.Conv1d(x, w1, null, padding: 1).ToFloatArray();
        var y2 = Ops.Conv1d(x, w2, null, padding: 1).ToFloatArray();
        Assert.NotEqual(y1, y2);
        Assert.Equal(y1, Ops.Conv1d(x, w1, null, padding: 1).ToFloatArray());
        Assert.Equal(OnPlain(() => Ops.Conv1d(x, w2, null, padding: 1)), y2);
    }

    // (Cin, Cout, K, stride, padding, T): HiFT's three upsampling layers at small widths, plus a batch of two
    public static IEnumerable<object[]> TransposeCases() =>
    [
        [1, 16, 8, 16, 8, 4, 30],
        [1, 8, 7, 11, 5, 3, 300],
        [2, 5, 13, 7, 3, 2, 41],
        [1, 3, 2, 4, 1, 0, 9],
    ];

    [Theory]
    [MemberData(nameof(TransposeCases))]
    public void ConvTransposeLayerMatchesFloat64AndTheGenericOp(int b, int cin, int cout, int k, int stride, int pad, int t)
        => CheckConvTranspose(b, cin, cout, k, stride, pad, t);

    [Theory]
    [MemberData(nameof(TransposeCases))]
    public void ConvTransposeLayerOnThePortablePath(int b, int cin, int cout, int k, int stride, int pad, int t)
        => OnPortablePath(() => CheckConvTranspose(b, cin, cout, k, stride, pad, t));

    private static void CheckConvTranspose(int b, int cin, int cout, int k, int stride, int pad, int t)
    {
        var rng = new Random(cin * 77 + k);
        var x = Rand(rng, b, cin, t);
        var w = Rand(rng, cin, cout, k);
        var bias = Rand(rng, cout);
        var y = new ConvTranspose1d("u", w, bias, stride, pad).Forward(x);
        int tout = (t - 1) * stride - 2 * pad + k;
        Assert.Equal(new[] { b, cout, tout }, y.Shape);
        var xs = x.ToFloatArray(); var ws = w.ToFloatArray(); var bs = bias.ToFloatArray(); var ys = y.ToFloatArray();
        var want = new double[b * cout * tout];
        var mag = new double[want.Length];
        for (int bi = 0; bi < b; bi++)
            for (int o = 0; o < cout; o++)
            {
                for (int j = 0; j < tout; j++) { want[(bi * cout + o) * tout + j] = bs[o]; mag[(bi * cout + o) * tout + j] = Math.Abs(bs[o]); }
                for (int ci = 0; ci < cin; ci++)
                    for (int ti = 0; ti < t; ti++)
                        for (int kk = 0; kk < k; kk++)
                        {
                            int to = ti * stride + kk - pad;
                            if ((uint)to >= (uint)tout) continue;
                            double p = (double)xs[(bi * cin + ci) * t + ti] * ws[(ci * cout + o) * k + kk];
                            want[(bi * cout + o) * tout + to] += p;
                            mag[(bi * cout + o) * tout + to] += Math.Abs(p);
                        }
            }
        for (int i = 0; i < ys.Length; i++)
            Assert.True(Math.Abs(ys[i] - want[i]) <= 1e-6 * mag[i] + 1e-30, $"y[{i}] = {ys[i]}, float64 {want[i]}");
        if (t > 4) Assert.Equal(OnPlain(() => Ops.ConvTranspose1d(x, w, bias, stride, pad)), ys);
    }

    [Fact]
    public void VectorSineIsWithinAnUlpOfFloat64()
    {
        var rng = new Random(5);
        var xs = new List<float> { 0f, -0f, 1e-30f, -1e-8f, MathF.PI, -MathF.PI / 2, MathF.PI / 4, 3 * MathF.PI / 4, 1e5f, -99999.5f };
        for (int i = 0; i < 20000; i++) xs.Add((float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, rng.Next(-3, 6))));
        while (xs.Count % 8 != 0) xs.Add(0.5f);
        var v = xs.ToArray();
        double worst = 0;
        for (int i = 0; i < v.Length; i += 8)
        {
            var s = VectorTrig.Sin(System.Runtime.Intrinsics.Vector256.Create(v, i));
            for (int l = 0; l < 8; l++)
            {
                double exact = Math.Sin(v[i + l]);
                worst = Math.Max(worst, Math.Abs(s[l] - exact));
                Assert.True(Math.Abs(s[l] - exact) <= 2.5e-7, $"sin({v[i + l]:R}) = {s[l]:R}, float64 {exact:R}");
                if (v[i + l] == 0) Assert.Equal(BitConverter.SingleToInt32Bits(v[i + l]), BitConverter.SingleToInt32Bits(s[l])); // sign of zero kept
            }
        }
        Assert.True(worst > 0); // the polynomial ran (not a copy of the argument or of MathF.Sin for every lane)
        // beyond the reduction range, and for NaN / ±∞, the lanes go through MathF.Sin
        var big = System.Runtime.Intrinsics.Vector256.Create(3e6f, -1e7f, float.NaN, float.PositiveInfinity, 1f, 2f, 3f, 4f);
        var r = VectorTrig.Sin(big);
        for (int l = 0; l < 8; l++) Assert.Equal(MathF.Sin(big[l]), r[l]);
    }

    [Fact]
    public void SnakeMatchesFloat64InPlaceAndOutOfPlace()
    {
        var rng = new Random(9);
        var x = Enumerable.Range(0, 1003).Select(_ => (float)((rng.NextDouble() - 0.5) * 40)).ToArray();
        foreach (float alpha in new[] { 1f, 0.05f, 3.7f })
        {
            var y = new float[x.Length];
            VectorTrig.Snake(x, alpha, y);
            var inPlace = (float[])x.Clone();
            VectorTrig.Snake(inPlace, alpha, inPlace);
            Assert.Equal(y, inPlace);
            for (int i = 0; i < x.Length; i++)
            {
                double s = Math.Sin((double)x[i] * alpha), want = x[i] + s * s / (alpha + 1e-9);
                Assert.True(Math.Abs(y[i] - want) <= 2e-6 * (Math.Abs(x[i]) + 1 / alpha), $"snake({x[i]}, α={alpha}) = {y[i]}, float64 {want}");
            }
        }
    }

    private static Tensor Rand(Random rng, params int[] shape) =>
        Tensor.FromArray(Enumerable.Range(0, (int)Tensor.CountElements(shape)).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray(), shape);
}
