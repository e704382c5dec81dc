using CsCheck;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Reference;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// Every <see cref="IBackend"/> op of the reference backend against the CPU backend on random inputs: contiguous and
/// strided/permuted views (device views on the reference side, the same host views on the CPU side), bf16 weights,
/// broadcasting and empty dimensions. Data-movement ops must agree exactly; arithmetic within float32 rounding.
/// The results of the reference backend are device tensors and are read only through <see cref="IBackend.ToHost"/>.
/// </summary>
public sealed class ReferenceBackendTests
{
    private readonly CpuBackend _cpu = new();
    private readonly ReferenceBackend _ref = new();
    private readonly Random _rng = new(1234);

    private Tensor Rand(params int[] shape)
    {
        var v = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < v.Length; i++) v[i] = (float)(_rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(v, shape);
    }

    private static Tensor Bf16(Tensor f32) => f32.To(DType.BF16);

    /// <summary>The same view of one base tensor on both backends: a host view for CPU, a device view for reference.</summary>
    private (Tensor Cpu, Tensor Ref) Both(Tensor hostBase, Func<Tensor, Tensor>? view = null)
    {
        view ??= t => t;
        var dev = _ref.FromHost(hostBase);
        var r = view(dev);
        Assert.False(r.IsHost);
        return (view(hostBase), r);
    }

    /// <summary>A permuted (non-contiguous) view holding a tensor of <paramref name="shape"/>: the base is stored with its
    /// last two axes swapped.</summary>
    private (Tensor Cpu, Tensor Ref) Strided(params int[] shape)
    {
        var swapped = (int[])shape.Clone();
        (swapped[^1], swapped[^2]) = (swapped[^2], swapped[^1]);
        var pair = Both(Rand(swapped), t => t.Transpose());
        Assert.False(pair.Ref.IsContiguous);
        return pair;
    }

    private void Same(Tensor cpu, Tensor reference, double tol, string what = "")
    {
        Assert.False(reference.IsHost);
        Assert.IsType<ReferenceStorage>(reference.Storage);
        var host = _ref.ToHost(reference);
        Assert.Equal(cpu.Shape, host.Shape);
        var e = cpu.ToDoubleArray();
        var a = host.ToDoubleArray();
        double num = 0, den = 0, maxAbs = 0, scale = 0;
        for (int i = 0; i < e.Length; i++)
        {
            if (double.IsNaN(e[i]) || double.IsNaN(a[i])) { Assert.True(double.IsNaN(e[i]) && double.IsNaN(a[i]), $"{what}: NaN at {i}"); continue; }
            if (double.IsInfinity(e[i]) || double.IsInfinity(a[i])) { Assert.Equal(e[i], a[i]); continue; }
            double d = a[i] - e[i];
            num += d * d; den += e[i] * e[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
            scale = Math.Max(scale, Math.Abs(e[i]));
        }
        if (tol == 0) { Assert.True(maxAbs == 0, $"{what}: max abs {maxAbs:E2}, expected bit-equal results"); return; }
        double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
        Assert.True(rel <= tol && maxAbs <= 20 * tol * Math.Max(1, scale), $"{what}: rel-L2 {rel:E2}, max abs {maxAbs:E2} (tolerance {tol:E1})");
    }

    // ------------------------------------------------------------------------------------------------ linear algebra

    [Fact]
    public void MatmulBatchedBroadcastAndStrided()
    {
        var (a, ra) = Both(Rand(2, 3, 5, 7));
        var (b, rb) = Both(Rand(2, 3, 7, 4));
        Same(_cpu.Matmul(a, b), _ref.Matmul(ra, rb), 1e-6, "batched");
        var (w, rw) = Both(Rand(7, 6)); // one b for every batch
        Same(_cpu.Matmul(a, w), _ref.Matmul(ra, rw), 1e-6, "broadcast b");
        var (sa, rsa) = Strided(3, 5, 7);
        var (sb, rsb) = Strided(3, 7, 2);
        Same(_cpu.Matmul(sa, sb), _ref.Matmul(rsa, rsb), 1e-6, "strided");
        Assert.Throws<ArgumentException>(() => _ref.Matmul(ra, _ref.FromHost(Rand(2, 3, 6, 4))));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LinearWithF32AndBf16WeightsAndStridedInput(bool bf16)
    {
        var w = Rand(9, 16);
        if (bf16) w = Bf16(w);
        var bias = Rand(9);
        var (x, rx) = Both(Rand(2, 5, 16));
        Same(_cpu.Linear(x, w, bias), _ref.Linear(rx, w, bias), 1e-6, "contiguous");
        Same(_cpu.Linear(x, w, null), _ref.Linear(rx, w, null), 1e-6, "no bias");
        var (sx, rsx) = Strided(4, 16);
        Same(_cpu.Linear(sx, w, bias), _ref.Linear(rsx, w, bias), 1e-6, "strided input");
        var (ex, rex) = Both(Rand(0, 16)); // no rows
        Same(_cpu.Linear(ex, w, bias), _ref.Linear(rex, w, bias), 0, "empty");
        Assert.Throws<ArgumentException>(() => _ref.Linear(_ref.FromHost(Rand(2, 15)), w, bias));
        Assert.Throws<ArgumentException>(() => _ref.Linear(rx, Tensor.FromArray(new int[16], 1, 16), null));
    }

    [Theory]
    [InlineData(1, 0, 1, 1, false)]
    [InlineData(2, 1, 1, 1, false)]
    [InlineData(1, 2, 2, 1, true)]
    [InlineData(1, 1, 1, 2, false)]
    [InlineData(1, 3, 1, 6, true)] // depthwise
    [InlineData(3, 2, 1, 3, false)]
    public void Conv1dStridePaddingDilationGroups(int stride, int padding, int dilation, int groups, bool bf16)
    {
        int cin = 6, cout = 6, k = 3;
        var w = Rand(cout, cin / groups, k);
        if (bf16) w = Bf16(w);
        var bias = Rand(cout);
        var (x, rx) = Both(Rand(2, cin, 17));
        Same(_cpu.Conv1d(x, w, bias, stride, padding, dilation, groups), _ref.Conv1d(rx, w, bias, stride, padding, dilation, groups), 1e-6, "batched");
        var (ux, rux) = Both(Rand(cin, 11)); // unbatched [C, T]
        Same(_cpu.Conv1d(ux, w, null, stride, padding, dilation, groups), _ref.Conv1d(rux, w, null, stride, padding, dilation, groups), 1e-6, "unbatched");
        var (sx, rsx) = Both(Rand(2, 13, cin), t => t.Permute(0, 2, 1)); // [B, T, C] stored, viewed as [B, C, T]
        Same(_cpu.Conv1d(sx, w, bias, stride, padding, dilation, groups), _ref.Conv1d(rsx, w, bias, stride, padding, dilation, groups), 1e-6, "strided");
    }

    [Fact]
    public void Conv1dPropertyAgainstTheCpuBackend()
    {
        // random geometry: the CPU's im2col + packed GEMM against the definition, f32 and bf16 weights
        Gen.Select(Gen.Int[1, 3], Gen.Int[0, 3], Gen.Int[1, 3], Gen.Int[1, 5], Gen.Int[0, 2], Gen.Int[1, 24], Gen.Bool).Sample(
            (stride, padding, dilation, k, groupsLog, t, bf16) =>
            {
                int groups = 1 << groupsLog, cin = 2 * groups, cout = 3 * groups;
                if (t + 2 * padding - dilation * (k - 1) - 1 < 0) return; // no output: rejected by both, tested above
                var cpu = new CpuBackend();
                var reference = new ReferenceBackend();
                var rng = new Random(stride * 1000 + padding * 100 + dilation * 10 + k + t * 7 + groupsLog);
                Tensor R(params int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Tensor.CountElements(s)).Select(_ => (float)rng.NextDouble() - 0.5f).ToArray(), s);
                var x = R(2, cin, t);
                var w = bf16 ? R(cout, cin / groups, k).To(DType.BF16) : R(cout, cin / groups, k);
                var b = R(cout);
                var expected = cpu.Conv1d(x, w, b, stride, padding, dilation, groups).ToFloatArray();
                var actual = reference.ToHost(reference.Conv1d(reference.FromHost(x), w, b, stride, padding, dilation, groups)).ToFloatArray();
                Assert.Equal(expected.Length, actual.Length);
                for (int i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5f, $"element {i}: {expected[i]} vs {actual[i]}");
            }, iter: 150);
    }

    [Fact]
    public void Conv1dRejectsBadShapes()
    {
        var rx = _ref.FromHost(Rand(1, 6, 4));
        Assert.Throws<ArgumentException>(() => _ref.Conv1d(rx, Rand(4, 5, 3), null, 1, 0, 1, 1)); // channels disagree
        Assert.Throws<ArgumentException>(() => _ref.Conv1d(rx, Rand(4, 6, 9), null, 1, 0, 1, 1)); // output length ≤ 0
    }

    [Theory]
    [InlineData(1, 0, 0, 1)]
    [InlineData(2, 1, 0, 1)]
    [InlineData(3, 1, 1, 1)]
    [InlineData(5, 2, 0, 1)]
    [InlineData(2, 0, 1, 2)]
    public void ConvTranspose1d(int stride, int padding, int outputPadding, int dilation)
    {
        var w = Rand(4, 3, 4);
        var bias = Rand(3);
        var (x, rx) = Both(Rand(2, 4, 9));
        Same(_cpu.ConvTranspose1d(x, w, bias, stride, padding, outputPadding, dilation),
            _ref.ConvTranspose1d(rx, w, bias, stride, padding, outputPadding, dilation), 1e-6, "batched");
        var (sx, rsx) = Strided(4, 7);
        Same(_cpu.ConvTranspose1d(sx, Bf16(w), null, stride, padding, outputPadding, dilation),
            _ref.ConvTranspose1d(rsx, Bf16(w), null, stride, padding, outputPadding, dilation), 1e-6, "unbatched strided bf16");
    }

    [Fact]
    public void AvgPool1d()
    {
        var (x, rx) = Both(Rand(2, 3, 11));
        Same(_cpu.AvgPool1d(x, 2, 2), _ref.AvgPool1d(rx, 2, 2), 1e-7);
        Same(_cpu.AvgPool1d(x, 3, 1), _ref.AvgPool1d(rx, 3, 1), 1e-7);
        var (sx, rsx) = Strided(3, 8);
        Same(_cpu.AvgPool1d(sx, 4, 3), _ref.AvgPool1d(rsx, 4, 3), 1e-7);
    }

    // ------------------------------------------------------------------------------------------------ normalisation

    [Fact]
    public void LayerNormAndRmsNorm()
    {
        var w = Rand(24); var b = Rand(24);
        var (x, rx) = Both(Scaled(Rand(3, 5, 24), 3f, 0.5f));
        Same(_cpu.LayerNorm(x, w, b, 1e-5f), _ref.LayerNorm(rx, w, b, 1e-5f), 1e-6, "affine");
        Same(_cpu.LayerNorm(x, null, null, 1e-6f), _ref.LayerNorm(rx, null, null, 1e-6f), 1e-6, "no affine");
        Same(_cpu.RmsNorm(x, w, 1e-6f), _ref.RmsNorm(rx, w, 1e-6f), 1e-6, "rms");
        Same(_cpu.RmsNorm(x, Bf16(w), 1e-6f), _ref.RmsNorm(rx, Bf16(w), 1e-6f), 1e-6, "rms bf16 weight");
        var (sx, rsx) = Strided(6, 24);
        Same(_cpu.LayerNorm(sx, w, b, 1e-5f), _ref.LayerNorm(rsx, w, b, 1e-5f), 1e-6, "strided");
        Same(_cpu.RmsNorm(sx, w, 1e-6f), _ref.RmsNorm(rsx, w, 1e-6f), 1e-6, "strided rms");
        Assert.Throws<ArgumentException>(() => _ref.RmsNorm(rx, Rand(23), 1e-6f));
    }

    private static Tensor Scaled(Tensor x, float scale, float shift) => Tensor.FromArray(x.ToFloatArray().Select(v => v * scale + shift).ToArray(), x.Shape);

    // ------------------------------------------------------------------------------------------------ element-wise

    [Fact]
    public void EveryUnaryOp()
    {
        var (x, rx) = Both(Scaled(Rand(4, 33), 4f, 0f));
        var (px, rpx) = Both(Scaled(Rand(4, 33), 2f, 2.5f)); // positive, for log and sqrt
        var (sx, rsx) = Strided(5, 6);
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            bool positive = op is UnaryOp.Log or UnaryOp.Sqrt;
            float alpha = op is UnaryOp.LeakyRelu ? 0.1f : op is UnaryOp.Elu ? 1.3f : 0f;
            double tol = op is UnaryOp.Gelu or UnaryOp.GeluTanh or UnaryOp.Mish or UnaryOp.Silu or UnaryOp.Sigmoid or UnaryOp.Elu or UnaryOp.Tanh ? 2e-6 : 1e-6;
            Same(_cpu.Unary(op, positive ? px : x, alpha), _ref.Unary(op, positive ? rpx : rx, alpha), tol, op.ToString());
            if (!positive) Same(_cpu.Unary(op, sx, alpha), _ref.Unary(op, rsx, alpha), tol, op + " strided");
        }
    }

    [Fact]
    public void GeluIsTheExactErfForm()
    {
        // against the definition in double: 0.5·x·(1 + erf(x/√2))
        var xs = Enumerable.Range(-400, 801).Select(i => i / 50f).ToArray();
        var y = _ref.ToHost(_ref.Unary(UnaryOp.Gelu, Tensor.FromArray(xs, xs.Length), 0)).ToFloatArray();
        for (int i = 0; i < xs.Length; i++)
        {
            double exact = 0.5 * xs[i] * (1 + MathNet.Numerics.SpecialFunctions.Erf(xs[i] / Math.Sqrt(2)));
            Assert.True(Math.Abs(y[i] - exact) <= 1e-7 * Math.Max(1, Math.Abs(exact)), $"gelu({xs[i]}) = {y[i]}, exact {exact}");
        }
    }

    [Fact]
    public void BinaryOpsBroadcastOverAnyAxes()
    {
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            var (a, ra) = Both(Rand(2, 3, 4));
            var (b, rb) = Both(Scaled(Rand(2, 3, 4), 1f, op == BinaryOp.Divide ? 3f : 0f));
            Same(_cpu.Binary(op, a, b), _ref.Binary(op, ra, rb), 0, op + " same shape");
            var (row, rrow) = Both(Scaled(Rand(4), 1f, 3f));
            Same(_cpu.Binary(op, a, row), _ref.Binary(op, ra, rrow), 0, op + " trailing row");
            var (col, rcol) = Both(Scaled(Rand(2, 1, 1), 1f, 3f));
            Same(_cpu.Binary(op, col, a), _ref.Binary(op, rcol, ra), 0, op + " leading column");
            var (sa, rsa) = Strided(3, 4);
            var (mid, rmid) = Both(Scaled(Rand(3, 1), 1f, 3f));
            Same(_cpu.Binary(op, sa, mid), _ref.Binary(op, rsa, rmid), 0, op + " strided and middle axis");
        }
        var (e, re) = Both(Rand(0, 4));
        var (r4, rr4) = Both(Rand(4));
        Same(_cpu.Binary(BinaryOp.Add, e, r4), _ref.Binary(BinaryOp.Add, re, rr4), 0, "empty");
        Assert.Throws<ArgumentException>(() => _ref.Binary(BinaryOp.Add, _ref.FromHost(Rand(2, 3)), _ref.FromHost(Rand(4))));
    }

    [Fact]
    public void BinaryPropertyAgainstTheCpuBackend()
    {
        // random shapes that broadcast: each axis of b is either a's size or 1; b may drop leading axes
        Gen.Select(Gen.Int[1, 4].Array[1, 4], Gen.Int[0, 3], Gen.Int[0, 15], Gen.Int[0, 5]).Sample((shape, drop, onesMask, opIndex) =>
        {
            var op = (BinaryOp)opIndex;
            int keep = Math.Max(0, shape.Length - Math.Min(drop, shape.Length - 1));
            var bShape = shape[(shape.Length - keep)..].Select((d, i) => (onesMask >> i & 1) == 1 ? 1 : d).ToArray();
            var cpu = new CpuBackend();
            var reference = new ReferenceBackend();
            var rng = new Random(shape.Sum() * 31 + onesMask);
            Tensor R(int[] s) => Tensor.FromArray(Enumerable.Range(0, (int)Tensor.CountElements(s)).Select(_ => (float)rng.NextDouble() + 0.5f).ToArray(), s);
            var a = R(shape); var b = R(bShape);
            var expected = cpu.Binary(op, a, b).ToFloatArray();
            var actual = reference.ToHost(reference.Binary(op, reference.FromHost(a), b)).ToFloatArray();
            Assert.Equal(expected, actual);
        }, iter: 200);
    }

    [Fact]
    public void ScaleSoftmaxAndMaskedRows()
    {
        var (x, rx) = Both(Scaled(Rand(3, 7, 10), 5f, 0f));
        Same(_cpu.Scale(x, 0.37f, -1.5f), _ref.Scale(rx, 0.37f, -1.5f), 0, "scale");
        Same(_cpu.Softmax(x), _ref.Softmax(rx), 1e-6, "softmax");
        var (sx, rsx) = Strided(4, 9);
        Same(_cpu.Softmax(sx), _ref.Softmax(rsx), 1e-6, "strided softmax");
        var masked = Tensor.FromArray([float.NegativeInfinity, float.NegativeInfinity, 1f, float.NegativeInfinity], 2, 2);
        Same(_cpu.Softmax(masked), _ref.Softmax(masked), 0, "a fully masked row is NaN");
    }

    // ------------------------------------------------------------------------------------------------ attention

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void AttentionGqaMaskCausalAndScores(bool causal, bool withMask)
    {
        int b = 2, hq = 4, hkv = 2, tq = 3, tk = 7, d = 8;
        var (q, rq) = Both(Rand(b, tq, hq, d), t => t.Permute(0, 2, 1, 3)); // [B, T, H, D] → [B, H, T, D] strided
        // K/V: the first tk rows of a longer cache buffer (a view, as a KV cache is read)
        var (k, rk) = Both(Rand(b, hkv, 12, d), t => t.Slice(2, 0, tk));
        var (v, rv) = Both(Rand(b, hkv, 12, d), t => t.Slice(2, 0, tk));
        Tensor? mask = withMask ? Scaled(Rand(1, 1, tq, tk), 2f, 0f) : null;
        var cs = Tensor.Zeros(DType.F32, b, hq, tq, tk);
        var rs = _ref.Zeros(DType.F32, [b, hq, tq, tk]);
        Same(_cpu.ScaledDotProductAttention(q, k, v, 0.35f, mask, causal, cs), _ref.ScaledDotProductAttention(rq, rk, rv, 0.35f, mask, causal, rs), 2e-6, "output");
        Same(cs, rs, 1e-6, "scores");
        var keyMask = Scaled(Rand(b, 1, 1, tk), 1f, 0f); // per-key mask broadcast over heads and queries
        Same(_cpu.ScaledDotProductAttention(q, k, v, 0.35f, keyMask, causal, null), _ref.ScaledDotProductAttention(rq, rk, rv, 0.35f, keyMask, causal, null), 2e-6, "key mask");
    }

    // ------------------------------------------------------------------------------------------------ indexing, shape

    [Fact]
    public void TakeF32AndBf16Tables()
    {
        var table = Rand(10, 6);
        int[] ids = [3, 0, 9, 3];
        Same(_cpu.Take(table, ids), _ref.Take(table, ids), 0, "f32");
        Same(_cpu.Take(Bf16(table), ids), _ref.Take(Bf16(table), ids), 0, "bf16");
        Same(_cpu.Take(table, []), _ref.Take(table, []), 0, "no ids");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ref.Take(table, [10]));
        Assert.Throws<ArgumentOutOfRangeException>(() => _ref.Take(table, [-1]));
    }

    [Theory]
    [InlineData(4, 32)]
    [InlineData(8, 64)]
    [InlineData(3, 32)]
    [InlineData(2, 128)]
    [InlineData(6, 64)]
    [InlineData(5, 32)]
    public void QuantizedMatmulAndTake(int bits, int groupSize)
    {
        var w = Rand(12, 256);
        var q = AffineQuantizer.Quantize(Bf16(w), bits, groupSize);
        var bias = Rand(12);
        var (x, rx) = Both(Rand(3, 256));
        Same(_cpu.QuantizedMatmul(x, q, bias), _ref.QuantizedMatmul(rx, q, bias), 1e-6, "matmul");
        // the definition: dequantise, then an ordinary product
        var dq = AffineQuantizer.Dequantize(q);
        Same(_cpu.Linear(x, dq, bias), _ref.QuantizedMatmul(rx, q, bias), 1e-6, "dequantised");
        int[] ids = [0, 11, 5];
        Same(_cpu.QuantizedTake(q, ids), _ref.QuantizedTake(q, ids), 0, "take");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ref.QuantizedTake(q, [12]));
    }

    [Theory]
    [InlineData(PadMode.Constant)]
    [InlineData(PadMode.Reflect)]
    [InlineData(PadMode.Replicate)]
    public void PadEveryMode(PadMode mode)
    {
        (int, int)[] pads = [(0, 0), (1, 2), (3, 2)];
        var (x, rx) = Both(Rand(2, 4, 5));
        Same(_cpu.Pad(x, pads, mode, 0.25f), _ref.Pad(rx, pads, mode, 0.25f), 0, "contiguous");
        var (sx, rsx) = Strided(2, 4, 5);
        Same(_cpu.Pad(sx, pads, mode, -1f), _ref.Pad(rsx, pads, mode, -1f), 0, "strided");
        if (mode == PadMode.Reflect) Assert.Throws<ArgumentException>(() => _ref.Pad(rx, [(0, 0), (0, 0), (5, 0)], mode, 0));
    }

    [Fact]
    public void ConcatenateAlongEveryAxisWithViewsAndEmptyParts()
    {
        var (a, ra) = Both(Rand(2, 3, 4));
        var (sa, rsa) = Strided(2, 3, 4);
        for (int axis = -1; axis < 3; axis++)
            Same(_cpu.Concatenate([a, sa, a], axis), _ref.Concatenate([ra, rsa, ra], axis), 0, $"axis {axis}");
        var (e, re) = Both(Rand(2, 0, 4));
        Same(_cpu.Concatenate([e, a], 1), _ref.Concatenate([re, ra], 1), 0, "empty part");
        Assert.Throws<ArgumentException>(() => _ref.Concatenate([ra, _ref.FromHost(Rand(2, 3, 5))], 1));
    }

    [Fact]
    public void ReduceEveryOpAndAxis()
    {
        var (x, rx) = Both(Rand(3, 4, 5));
        var (sx, rsx) = Strided(3, 4, 5);
        foreach (var op in Enum.GetValues<ReduceOp>())
            for (int axis = 0; axis < 3; axis++)
                foreach (bool keep in new[] { false, true })
                {
                    double tol = op is ReduceOp.Max or ReduceOp.Min ? 0 : 1e-6;
                    Same(_cpu.Reduce(op, x, axis, keep), _ref.Reduce(op, rx, axis, keep), tol, $"{op} axis {axis} keep {keep}");
                    Same(_cpu.Reduce(op, sx, axis, keep), _ref.Reduce(op, rsx, axis, keep), tol, $"{op} axis {axis} keep {keep} strided");
                }
        var (e, re) = Both(Rand(3, 0, 2));
        Same(_cpu.Reduce(ReduceOp.Sum, e, 1, false), _ref.Reduce(ReduceOp.Sum, re, 1, false), 0, "sum over an empty axis");
    }

    [Fact]
    public void ArgmaxFirstMaximumAndTopKTies()
    {
        var x = Tensor.FromArray([1f, 5f, 5f, 2f, -1f, -3f, -1f, -2f, 0f, 0f, 0f, 0f], 3, 4);
        Assert.Equal(_cpu.Argmax(x), _ref.Argmax(_ref.FromHost(x)));
        Assert.Equal(new[] { 1, 0, 0 }, _ref.Argmax(x));
        var (r, rr) = Both(Rand(5, 40));
        Assert.Equal(_cpu.Argmax(r), _ref.Argmax(rr));
        var (s, rs) = Strided(6, 7);
        Assert.Equal(_cpu.Argmax(s), _ref.Argmax(rs));
        float[] v = [0.5f, 2f, -1f, 2f, 0.5f, 3f, 2f];
        var (cv, ci) = _cpu.TopK(v, 4);
        var (rv, ri) = _ref.TopK(v, 4);
        Assert.Equal(cv, rv);
        Assert.Equal(ci, ri);
        Assert.Equal(new[] { 5, 1, 3, 6 }, ri);
        Assert.Equal(_cpu.TopK(v, 99).Indices, _ref.TopK(v, 99).Indices);
        var many = Enumerable.Range(0, 20000).Select(i => (float)(i * 7919 % 101)).ToArray(); // many ties, full order
        Assert.Equal(_cpu.TopK(many, many.Length).Indices, _ref.TopK(many, many.Length).Indices);
    }

    // ------------------------------------------------------------------------------------------------ place and small ops

    [Fact]
    public void ContiguousCastAndSliceUpdate()
    {
        var (sx, rsx) = Strided(3, 4, 5);
        var c = _ref.Contiguous(rsx);
        Assert.True(c.IsContiguous);
        Same(sx.Contiguous(), c, 0, "contiguous");
        Same(sx.To(DType.BF16), _ref.Cast(rsx, DType.BF16), 0, "cast to bf16 (round to nearest even)");
        Same(sx.To(DType.F16), _ref.Cast(rsx, DType.F16), 0, "cast to f16");
        var ints = Tensor.FromArray(new[] { 3, -7, 1 << 20 }, 3);
        Same(ints.To(DType.F32), _ref.Cast(ints, DType.F32), 0, "i32 to f32");
        var f = Scaled(Rand(6), 9f, 0f);
        Same(f.To(DType.I32), _ref.Cast(f, DType.I32), 0, "f32 to i32 truncates");
        // reshape-with-copy and To() of a device tensor go through the backend
        Same(sx.Reshape(12, 5), rsx.Reshape(12, 5), 0, "reshape of a view");
        Same(sx.To(DType.BF16), rsx.To(DType.BF16), 0, "To");

        // a KV-cache-like append along axis 2, and a write through a strided destination view
        var cache = _ref.Zeros(DType.F32, [1, 2, 8, 3]);
        var host = Tensor.Zeros(DType.F32, 1, 2, 8, 3);
        var step = Rand(1, 2, 2, 3);
        _cpu.SliceUpdate(host, step, 2, 5);
        _ref.SliceUpdate(cache, step, 2, 5);
        Same(host, cache, 0, "append");
        var (st, rst) = Strided(1, 2, 3, 3);
        _cpu.SliceUpdate(host, st, 2, 0);
        _ref.SliceUpdate(cache, rst, 2, 0);
        Same(host, cache, 0, "strided source");
        var src = Rand(1, 1, 2, 3); // through a permuted destination view: [1, 8, 2, 3], rows 7..7
        _cpu.SliceUpdate(host.Permute(0, 2, 1, 3), src, 1, 7);
        _ref.SliceUpdate(cache.Permute(0, 2, 1, 3), src, 1, 7);
        Same(host, cache, 0, "strided destination");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ref.SliceUpdate(cache, step, 2, 7));
        Assert.Throws<ArgumentException>(() => _ref.SliceUpdate(cache, Rand(1, 2, 2, 4), 2, 0));
        Assert.Throws<ArgumentException>(() => _ref.SliceUpdate(host, step, 2, 0)); // a host destination is not this backend's
    }

    [Fact]
    public void RopeCumsumRepeatWhereClampSnake()
    {
        var (x, rx) = Both(Rand(2, 3, 5, 8));
        Same(_cpu.Rope(x, 0, 10000f), _ref.Rope(rx, 0, 10000f), 1e-6, "rope");
        Same(_cpu.Rope(x, 37, 1e6f), _ref.Rope(rx, 37, 1e6f), 1e-6, "rope offset");
        var (sx, rsx) = Both(Rand(2, 5, 3, 8), t => t.Permute(0, 2, 1, 3));
        Same(_cpu.Rope(sx, 4, 1e6f), _ref.Rope(rsx, 4, 1e6f), 1e-6, "rope strided");

        for (int axis = 0; axis < 4; axis++) Same(_cpu.Cumsum(x, axis), _ref.Cumsum(rx, axis), 0, $"cumsum axis {axis}");
        Same(_cpu.Cumsum(sx, -2), _ref.Cumsum(rsx, -2), 0, "cumsum strided");

        for (int axis = 0; axis < 4; axis++) Same(_cpu.Repeat(x, axis, 3), _ref.Repeat(rx, axis, 3), 0, $"repeat axis {axis}");
        Same(_cpu.Repeat(sx, 1, 2), _ref.Repeat(rsx, 1, 2), 0, "repeat strided");

        var cond = Tensor.FromArray([true, false, true], 3, 1);
        var (a, ra) = Both(Rand(3, 4));
        var (b, rb) = Both(Rand(4));
        Same(_cpu.Where(cond, a, b), _ref.Where(cond, ra, rb), 0, "where bool");
        var fcond = Tensor.FromArray([0f, 2f, 0f, -1f], 4);
        Same(_cpu.Where(fcond, a, b), _ref.Where(fcond, ra, rb), 0, "where float");

        Same(_cpu.Clamp(x, -0.3f, 0.4f), _ref.Clamp(rx, -0.3f, 0.4f), 0, "clamp");

        var alpha = Scaled(Rand(3), 1f, 1.5f);
        var (t3, rt3) = Both(Scaled(Rand(2, 3, 50), 6f, 0f));
        Same(_cpu.Snake(t3, alpha), _ref.Snake(rt3, alpha), 1e-6, "snake");
        var (t2, rt2) = Strided(3, 20);
        Same(_cpu.Snake(t2, alpha), _ref.Snake(rt2, alpha), 1e-6, "snake [C, T] strided");
        Assert.Throws<ArgumentException>(() => _ref.Snake(rt3, Rand(4)));
    }
}
