using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.GpuTests;

/// <summary>One op case: the CUDA result against the CPU backend's on the same random inputs.</summary>
public sealed record OpResult(string Op, string Precision, double MaxAbs, double RelL2, double Tolerance, bool Passed, string? Error);

/// <summary>
/// Every <see cref="IBackend"/> op of <see cref="CudaBackend"/> against <see cref="CpuBackend"/>: random inputs made on
/// the host, uploaded with <see cref="IBackend.FromHost"/> for the device, results downloaded and compared (rel-L2 and
/// max |Δ|, tolerance printed per case).
/// </summary>
public sealed class OpChecks(CudaBackend gpu, TextWriter log)
{
    private readonly CpuBackend _cpu = new();
    private Random _rng = new(1234);
    private readonly List<OpResult> _results = [];
    public IReadOnlyList<OpResult> Results => _results;

    private Tensor Rand(params int[] shape)
    {
        var data = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(_rng.NextDouble() * 2 - 1);
        return Tensor.FromArray(data, shape);
    }

    private Tensor Positive(params int[] shape)
    {
        var data = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < data.Length; i++) data[i] = (float)(_rng.NextDouble() * 2 + 0.05);
        return Tensor.FromArray(data, shape);
    }

    private static double RelL2(float[] a, float[] e, out double maxAbs)
    {
        double num = 0, den = 0; maxAbs = 0;
        for (int i = 0; i < a.Length; i++)
        {
            double d = (double)a[i] - e[i];
            if (float.IsNaN(a[i]) != float.IsNaN(e[i])) return double.PositiveInfinity;
            if (float.IsNaN(e[i]) || (float.IsInfinity(e[i]) && a[i] == e[i])) continue;
            num += d * d; den += (double)e[i] * e[i]; maxAbs = Math.Max(maxAbs, Math.Abs(d));
        }
        return den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
    }

    /// <summary>Runs <paramref name="run"/> on both backends (inputs placed by the given function) and compares.</summary>
    private void Check(string op, Func<IBackend, Func<Tensor, Tensor>, Tensor> run, double tol, CudaBackend? on = null)
    {
        var g = on ?? gpu;
        string prec = g.Precision.ToString().ToLowerInvariant();
        // inputs made inside a case come from the same random stream for both backends
        int seed = _rng.Next();
        try
        {
            _rng = new Random(seed);
            var expected = run(_cpu, t => t);
            _rng = new Random(seed);
            var actual = g.ToHost(run(g, t => g.FromHost(t)));
            if (!expected.Shape.SequenceEqual(actual.Shape))
                throw new InvalidOperationException($"shape {Tensor.ShapeString(actual.Shape)} != cpu {Tensor.ShapeString(expected.Shape)}");
            double rel = RelL2(actual.ToFloatArray(), expected.ToFloatArray(), out double maxAbs);
            Add(new OpResult(op, prec, maxAbs, rel, tol, rel <= tol, null));
        }
        catch (Exception e)
        {
            Add(new OpResult(op, prec, double.NaN, double.NaN, tol, false, $"{e.GetType().Name}: {e.Message}"));
        }
    }

    private void CheckExact(string op, Func<IBackend, Func<Tensor, Tensor>, int[]> run)
    {
        int seed = _rng.Next();
        try
        {
            _rng = new Random(seed);
            var e = run(_cpu, t => t);
            _rng = new Random(seed);
            var a = run(gpu, t => gpu.FromHost(t));
            bool same = e.SequenceEqual(a);
            Add(new OpResult(op, "exact", same ? 0 : 1, same ? 0 : 1, 0, same, same ? null : $"gpu [{string.Join(",", a.Take(8))}] cpu [{string.Join(",", e.Take(8))}]"));
        }
        catch (Exception ex) { Add(new OpResult(op, "exact", double.NaN, double.NaN, 0, false, $"{ex.GetType().Name}: {ex.Message}")); }
    }

    private void Add(OpResult r)
    {
        _results.Add(r);
        log.WriteLine($"{(r.Passed ? "ok  " : "FAIL")} {r.Op,-44} {r.Precision,-5} rel-L2 {r.RelL2,10:E2}  max|Δ| {r.MaxAbs,10:E2}  tol {r.Tolerance:E0}{(r.Error is null ? "" : "  " + r.Error)}");
    }

    public void RunAll(CudaBackend bf16)
    {
        const double F = 1e-5; // float32 tier: the CPU backend's own parity bound
        var a = Rand(2, 3, 37, 64); var b = Rand(2, 3, 64, 29); var b2 = Rand(64, 29);
        Check("matmul batched", (k, P) => k.Matmul(P(a), P(b)), F);
        Check("matmul broadcast b", (k, P) => k.Matmul(P(a), P(b2)), F);

        var x5 = Rand(5, 200); var w = Rand(96, 200); var bias = Rand(96);
        Check("linear f32 w, bias", (k, P) => k.Linear(P(x5), w, bias), F);
        var wb = Rand(300, 256).To(DType.BF16); var x1 = Rand(1, 256); var x7 = Rand(7, 256); var bb = Rand(300);
        var wOdd = Rand(40, 250).To(DType.BF16); var xOdd = Rand(1, 250);
        foreach (var g in new[] { gpu, bf16 })
        {
            double t = g.Precision == CudaPrecision.Bf16 ? 1e-2 : F;
            Check("linear bf16 w, 1 row (gemv)", (k, P) => k.Linear(P(x1), wb, bb), t, g);
            Check("linear bf16 w, 7 rows (gemm)", (k, P) => k.Linear(P(x7), wb, null), t, g);
            Check("linear bf16 w, K=250 (scalar gemv)", (k, P) => k.Linear(P(xOdd), wOdd, null), t, g);
            Check("linear f32 w, 3-d input", (k, P) => k.Linear(P(Rand(2, 3, 200)), w, bias), t, g);
        }

        // the decoder's fused capabilities (IBackend.SwiGlu / AddRmsNorm / LinearGroup) against the CPU backend's op-by-op
        // bodies: one-row bf16 and 4/8-bit kernels, and the composed fallback (several rows, fp32 mode)
        var lq = new LinearWeights(Rand(64, 256).To(DType.BF16), null, Rand(64));
        var lk = new LinearWeights(Rand(16, 256).To(DType.BF16), null, Rand(16));
        var lv = new LinearWeights(Rand(24, 256).To(DType.BF16), null, null);
        var lg = new LinearWeights(Rand(300, 256).To(DType.BF16), null, null);
        var lu = new LinearWeights(Rand(300, 256).To(DType.BF16), null, Rand(300));
        // (a bf16 source keeps scales and biases in bf16, as MLX's converter does: the kernels then read them as packed pairs)
        LinearWeights Q(int bits, int group, int n, bool withBias, bool bf16Source = false)
        {
            var qw = AffineQuantizer.Quantize(bf16Source ? Rand(n, 256).To(DType.BF16) : Rand(n, 256), bits, group);
            return new(qw.Weight, qw, withBias ? Rand(n) : null);
        }
        var (q4g, q4u, q8g, q8u) = (Q(4, 64, 200, false), Q(4, 64, 200, true), Q(8, 128, 72, false), Q(8, 128, 72, false));
        var (q4a, q4b, q4c) = (Q(4, 32, 64, true), Q(4, 32, 16, true), Q(4, 32, 16, true));
        var (p4g, p4u, p8a, p8b) = (Q(4, 64, 200, false, true), Q(4, 64, 200, true, true), Q(8, 64, 40, true, true), Q(8, 64, 8, false, true));
        foreach (var g in new[] { gpu, bf16 })
        {
            Check("linear_group bf16 q/k/v, 1 row", (k, P) => k.Concatenate(k.LinearGroup(P(x1), [lq, lk, lv]), 1), F, g);
            Check("linear_group bf16 q/k/v, 3 rows", (k, P) => k.Concatenate(k.LinearGroup(P(Rand(1, 3, 256)), [lq, lk, lv]), 2), g == bf16 ? 1e-2 : F, g);
            Check("linear_group 4-bit g32 x3 + bias, 1 row", (k, P) => k.Concatenate(k.LinearGroup(P(x1), [q4a, q4b, q4c]), 1), F, g);
            Check("linear_group single 8-bit, 1 row", (k, P) => k.LinearGroup(P(x1), [q8g])[0], F, g);
            Check("swiglu bf16, 1 row", (k, P) => k.SwiGlu(P(Rand(1, 1, 256)), lg, lu), F, g);
            Check("swiglu bf16, 2 rows", (k, P) => k.SwiGlu(P(Rand(1, 2, 256)), lg, lu), g == bf16 ? 1e-2 : F, g);
            Check("swiglu 4-bit g64, 1 row", (k, P) => k.SwiGlu(P(x1), q4g, q4u), F, g);
            Check("swiglu 8-bit g128, 1 row", (k, P) => k.SwiGlu(P(x1), q8g, q8u), F, g);
            Check("swiglu 4-bit g64 bf16 scales (packed), 1 row", (k, P) => k.SwiGlu(P(x1), p4g, p4u), F, g);
            Check("linear_group 8-bit g64 bf16 scales (packed) x2, 1 row", (k, P) => k.Concatenate(k.LinearGroup(P(x1), [p8a, p8b]), 1), F, g);
        }
        Check("quantized_matmul 4-bit g64 bf16 scales (packed), 3 rows", (k, P) => k.QuantizedMatmul(P(Rand(3, 256)), p4u.Quantized!, null), F);
        Check("quantized_take 8-bit g64 bf16 scales (packed)", (k, P) => k.QuantizedTake(p8a.Quantized!, [39, 2, 2]), F);
        // RoPE + KV append: the rotated q, and the caches after two appends (a 3-position prefill, then one decode step)
        var rq = Rand(1, 3, 8 * 16); var rk = Rand(1, 3, 2 * 16); var rv = Rand(1, 3, 2 * 16);
        var rq1 = Rand(1, 1, 8 * 16); var rk1 = Rand(1, 1, 2 * 16); var rv1 = Rand(1, 1, 2 * 16);
        Tensor RopeAppendCase(IBackend k, Func<Tensor, Tensor> P, int part)
        {
            var kc = P(Tensor.Zeros(DType.F32, 1, 2, 10, 16)); var vc = P(Tensor.Zeros(DType.F32, 1, 2, 10, 16));
            var q0 = k.RopeAppend(P(rq), P(rk), P(rv), 8, 4, 1e6f, kc, vc);
            var q1 = k.RopeAppend(P(rq1), P(rk1), P(rv1), 8, 7, 1e6f, kc, vc);
            return part switch { 0 => k.Concatenate([q0, q1], 1), 1 => kc, _ => vc };
        }
        Check("rope_append q", (k, P) => RopeAppendCase(k, P, 0), 0);
        Check("rope_append k cache", (k, P) => RopeAppendCase(k, P, 1), 0);
        Check("rope_append v cache", (k, P) => RopeAppendCase(k, P, 2), 0);
        var xr = Rand(1, 2, 3584); var rr = Rand(1, 2, 3584); var wr = Rand(3584);
        Check("add_rms_norm sum", (k, P) => k.AddRmsNorm(P(xr), P(rr), wr, 1e-6f).Sum, F);
        Check("add_rms_norm normed", (k, P) => k.AddRmsNorm(P(xr), P(rr), wr, 1e-6f).Normed, F);

        var xc = Rand(2, 16, 50); var wc = Rand(24, 16, 3); var bc = Rand(24);
        Check("conv1d k3 pad1", (k, P) => k.Conv1d(P(xc), wc, bc, 1, 1, 1, 1), F);
        Check("conv1d k3 stride2 dil2 pad2", (k, P) => k.Conv1d(P(xc), wc, null, 2, 2, 2, 1), F);
        Check("conv1d 1x1", (k, P) => k.Conv1d(P(xc), Rand(8, 16, 1), bc.Slice(0, 0, 8), 1, 0, 1, 1), F);
        Check("conv1d depthwise groups=16", (k, P) => k.Conv1d(P(xc), Rand(16, 1, 5), Rand(16), 1, 2, 1, 16), F);
        Check("conv1d groups=4", (k, P) => k.Conv1d(P(xc), Rand(8, 4, 3), null, 1, 1, 1, 4), F);
        Check("conv1d unbatched", (k, P) => k.Conv1d(P(Rand(16, 30)), wc, bc, 1, 1, 1, 1), F);
        Check("conv_transpose1d s2 p1", (k, P) => k.ConvTranspose1d(P(Rand(2, 8, 20)), Rand(8, 6, 4), Rand(6), 2, 1, 0, 1), F);
        Check("conv_transpose1d s3 op1 dil2", (k, P) => k.ConvTranspose1d(P(Rand(1, 8, 11)), Rand(8, 5, 3), null, 3, 0, 1, 2), F);
        Check("avg_pool1d", (k, P) => k.AvgPool1d(P(Rand(3, 4, 21)), 4, 3), F);

        var xn = Rand(6, 7, 1280);
        Check("layer_norm affine", (k, P) => k.LayerNorm(P(xn), Rand(1280), Rand(1280), 1e-5f), F);
        Check("layer_norm plain", (k, P) => k.LayerNorm(P(Rand(9, 64)), null, null, 1e-6f), F);
        Check("rms_norm", (k, P) => k.RmsNorm(P(Rand(5, 3584)), Rand(3584), 1e-6f), F);
        Check("softmax", (k, P) => k.Softmax(P(Rand(11, 1000))), F);

        var xu = Rand(4, 333);
        foreach (UnaryOp op in Enum.GetValues<UnaryOp>())
        {
            var input = op is UnaryOp.Log or UnaryOp.Sqrt ? Positive(4, 333) : xu;
            Check($"unary {op}", (k, P) => k.Unary(op, P(input), 0.2f), F);
        }
        Check("clamp", (k, P) => k.Clamp(P(xu), -0.3f, 0.4f), F);
        Check("scale + shift", (k, P) => k.Scale(P(xu), 1.7f, -0.25f), F);
        var ba = Rand(4, 5, 6); var bsame = Rand(4, 5, 6); var bcast = Rand(5, 1);
        foreach (BinaryOp op in Enum.GetValues<BinaryOp>())
        {
            var rhs = op == BinaryOp.Divide ? Positive(4, 5, 6) : bsame;
            Check($"binary {op} same shape", (k, P) => k.Binary(op, P(ba), P(rhs)), F);
            Check($"binary {op} broadcast", (k, P) => k.Binary(op, P(ba), P(op == BinaryOp.Divide ? Positive(5, 1) : bcast)), F);
        }
        var cond = Tensor.FromArray(Enumerable.Range(0, 6).Select(i => i % 2 == 0).ToArray(), 1, 6);
        Check("where bool cond broadcast", (k, P) => k.Where(P(cond), P(Rand(4, 5, 6)), P(Rand(5, 1))), F);
        Check("snake", (k, P) => k.Snake(P(Rand(2, 8, 100)), Positive(8)), F);
        Check("rope offset 7", (k, P) => k.Rope(P(Rand(1, 4, 6, 64)), 7, 1e6f), F);
        Check("rope offset 3000 (decode)", (k, P) => k.Rope(P(Rand(1, 28, 1, 128)), 3000, 1e6f), F);
        Check("cumsum axis 1", (k, P) => k.Cumsum(P(Rand(3, 50, 4)), 1), F);
        Check("repeat axis 1 x3", (k, P) => k.Repeat(P(Rand(2, 5, 7)), 1, 3), F);

        // attention: GQA, additive mask, causal with a KV-cache view, scores capture
        var q = Rand(2, 8, 5, 32); var kk = Rand(2, 2, 9, 32); var vv = Rand(2, 2, 9, 32); var mask = Rand(1, 1, 5, 9);
        Check("sdpa gqa mask", (k, P) => k.ScaledDotProductAttention(P(q), P(kk), P(vv), 0.17f, P(mask), false, null), F);
        Check("sdpa causal", (k, P) => k.ScaledDotProductAttention(P(q), P(kk), P(vv), 0.17f, null, true, null), F);
        Check("sdpa scores capture", (k, P) =>
        {
            var scores = k is CpuBackend ? Tensor.Zeros(DType.F32, 2, 8, 5, 9) : k.Zeros(DType.F32, [2, 8, 5, 9]);
            k.ScaledDotProductAttention(P(q), P(kk), P(vv), 0.17f, P(mask), true, scores);
            return scores;
        }, F);
        var cacheK = Rand(1, 4, 64, 128); var cacheV = Rand(1, 4, 64, 128); var q1 = Rand(1, 28, 1, 128);
        Check("sdpa decode on cache view", (k, P) => k.ScaledDotProductAttention(P(q1), P(cacheK).Slice(2, 0, 37), P(cacheV).Slice(2, 0, 37), 0.088f, null, true, null), F);
        // attn_decode: one split, several splits joined by attn_combine (split-K), a few causal rows, other head sizes
        var longK = Rand(1, 4, 800, 128); var longV = Rand(1, 4, 800, 128);
        Check("sdpa decode 700 keys (split-K)", (k, P) => k.ScaledDotProductAttention(P(q1), P(longK).Slice(2, 0, 700), P(longV).Slice(2, 0, 700), 0.088f, null, true, null), F);
        Check("sdpa decode 3 causal rows, 300 keys", (k, P) => k.ScaledDotProductAttention(P(Rand(1, 8, 3, 64)), P(longK.Slice(3, 0, 64).Contiguous()).Slice(2, 0, 300), P(longV.Slice(3, 0, 64).Contiguous()).Slice(2, 0, 300), 0.125f, null, true, null), F);
        Check("sdpa decode 16 causal rows, 40 keys (empty split)", (k, P) => k.ScaledDotProductAttention(P(Rand(1, 4, 16, 32)), P(Rand(1, 2, 40, 32)), P(Rand(1, 2, 40, 32)), 0.17f, null, true, null), F);
        Check("sdpa mask 40 rows x 1250 keys (softmax in registers)", (k, P) => k.ScaledDotProductAttention(P(Rand(1, 4, 40, 64)), P(Rand(1, 4, 1250, 64)), P(Rand(1, 4, 1250, 64)), 0.125f, P(Rand(1, 1, 40, 1250)), false, null), F);
        Check("sdpa mask 2 rows x 9000 keys (softmax loop)", (k, P) => k.ScaledDotProductAttention(P(Rand(1, 1, 2, 16)), P(Rand(1, 1, 9000, 16)), P(Rand(1, 1, 9000, 16)), 0.25f, P(Rand(1, 1, 2, 9000)), false, null), F);
        Check("sdpa decode 9000 keys (64-key chunks, 141 splits)", (k, P) => k.ScaledDotProductAttention(P(Rand(1, 4, 1, 32)), P(Rand(1, 2, 9000, 32)), P(Rand(1, 2, 9000, 32)), 0.17f, null, true, null), F);
        // heads of a projection [B, T, H, D] viewed as [B, H, T, D] (the encoder's layout): Q, K, V read in place by the GEMMs
        var projQ = Rand(2, 40, 4, 32); var projK = Rand(2, 40, 4, 32); var projV = Rand(2, 40, 4, 32);
        Check("sdpa strided head views, batch 2, mask", (k, P) => k.ScaledDotProductAttention(P(projQ).Permute(0, 2, 1, 3), P(projK).Permute(0, 2, 1, 3), P(projV).Permute(0, 2, 1, 3), 0.17f, P(Rand(2, 1, 1, 40)), false, null), F);
        Check("sdpa strided head views, batch 1, causal", (k, P) => k.ScaledDotProductAttention(P(projQ.Slice(0, 0, 1)).Permute(0, 2, 1, 3), P(projK.Slice(0, 0, 1)).Permute(0, 2, 1, 3), P(projV.Slice(0, 0, 1)).Permute(0, 2, 1, 3), 0.17f, null, true, null), F);
        Check("sdpa decode d=20 non-causal batch 2", (k, P) => k.ScaledDotProductAttention(P(Rand(2, 6, 2, 20)), P(Rand(2, 3, 270, 20)), P(Rand(2, 3, 270, 20)), 0.2f, null, false, null), F);
        Check("sdpa batch-2 cache view", (k, P) => k.ScaledDotProductAttention(P(Rand(2, 8, 3, 16)), P(Rand(2, 2, 20, 16)).Slice(2, 0, 11), P(Rand(2, 2, 20, 16)).Slice(2, 0, 11), 0.25f, null, true, null), F);

        var table = Rand(50, 24); var tableBf = Rand(50, 24).To(DType.BF16); int[] ids = [3, 0, 49, 7, 7];
        Check("take f32", (k, P) => k.Take(table, ids), F);
        Check("take bf16", (k, P) => k.Take(tableBf, ids), F);

        var qw4 = AffineQuantizer.Quantize(Rand(64, 256), 4, 64);
        var qw3 = AffineQuantizer.Quantize(Rand(40, 128), 3, 32);
        var qw8 = AffineQuantizer.Quantize(Rand(33, 256), 8, 128);
        Check("quantized_matmul 4-bit g64 1 row", (k, P) => k.QuantizedMatmul(P(Rand(1, 256)), qw4, Rand(64)), F);
        Check("quantized_matmul 4-bit g64 3 rows", (k, P) => k.QuantizedMatmul(P(Rand(3, 256)), qw4, null), F);
        Check("quantized_matmul 3-bit g32 1 row", (k, P) => k.QuantizedMatmul(P(Rand(1, 128)), qw3, null), F);
        Check("quantized_matmul 8-bit g128 2 rows", (k, P) => k.QuantizedMatmul(P(Rand(2, 256)), qw8, null), F);
        Check("quantized_matmul 8-bit g128 1 row", (k, P) => k.QuantizedMatmul(P(Rand(1, 256)), qw8, Rand(33)), F);
        var qw4b = AffineQuantizer.Quantize(Rand(300, 3584), 4, 64);
        Check("quantized_matmul 4-bit g64 1 row, k 3584", (k, P) => k.QuantizedMatmul(P(Rand(1, 3584)), qw4b, null), F);
        var qwWide = AffineQuantizer.Quantize(Rand(37, 18944), 4, 64); var xWide = Rand(1, 18944);
        Check("quantized_matmul 4-bit g64 1 row, 37 x 18944 (K slices)", (k, P) => k.QuantizedMatmul(P(xWide), qwWide, null), F);
        var wWide = Rand(37, 18944).To(DType.BF16);
        Check("linear bf16 w, 1 row, 37 x 18944 (K slices)", (k, P) => k.Linear(P(xWide), wWide, null), 1e-5, bf16);
        Check("quantized_take 3-bit", (k, P) => k.QuantizedTake(qw3, [1, 39, 0]), F);
        // the lane-interleaved layout of 4/8-bit matrices (qpack_lanes): a tail block of 4L < 128 words (k 2080: 260
        // 4-bit words), 8-bit group 32, the prefill dequantisation and the embedding take reading it, an unaligned x row
        var qw4t = AffineQuantizer.Quantize(Rand(45, 2080), 4, 32);
        var qw8t = AffineQuantizer.Quantize(Rand(19, 2080), 8, 32);
        Check("quantized_matmul 4-bit g32 1 row, k 2080 (tail block)", (k, P) => k.QuantizedMatmul(P(Rand(1, 2080)), qw4t, null), F);
        Check("quantized_matmul 8-bit g32 1 row, k 2080 (tail block)", (k, P) => k.QuantizedMatmul(P(Rand(1, 2080)), qw8t, Rand(19)), F);
        Check("quantized_matmul 4-bit g32 5 rows, k 2080 (dequantised)", (k, P) => k.QuantizedMatmul(P(Rand(5, 2080)), qw4t, null), F);
        Check("quantized_matmul 4-bit g64 1 unaligned row (x copied)", (k, P) => k.QuantizedMatmul(P(Rand(2, 257)).Slice(1, 1, 256).Slice(0, 1, 1), qw4, null), F);
        Check("quantized_take 8-bit g32 (lanes)", (k, P) => k.QuantizedTake(qw8t, [18, 0, 7]), F);
        Check("quantized_take 4-bit g64 (lanes)", (k, P) => k.QuantizedTake(qw4, [63, 1]), F);

        var xp = Rand(2, 3, 10);
        foreach (PadMode m in Enum.GetValues<PadMode>())
            Check($"pad {m}", (k, P) => k.Pad(P(xp), [(0, 0), (1, 2), (3, 4)], m, 0.5f), F);
        Check("concatenate axis 1", (k, P) => k.Concatenate([P(Rand(2, 3, 4)), P(Rand(2, 5, 4)), P(Rand(2, 1, 4))], 1), F);
        Check("concatenate permuted part", (k, P) => k.Concatenate([P(Rand(4, 3)).Permute(1, 0), P(Rand(2, 4))], 0), F);
        foreach (ReduceOp op in Enum.GetValues<ReduceOp>())
            Check($"reduce {op} axis 1", (k, P) => k.Reduce(op, P(Rand(3, 17, 5)), 1, op == ReduceOp.Mean), F);
        CheckExact("argmax rows", (k, P) => k.Argmax(P(Rand(4, 158720 / 16))));
        CheckExact("argmax ties first", (k, P) => k.Argmax(P(Tensor.FromArray(new float[] { 1, 3, 3, 2, 3 }, 1, 5))));

        // place and layout
        Check("contiguous of permuted view", (k, P) => k.Contiguous(P(Rand(3, 4, 5)).Permute(2, 0, 1)), 0);
        Check("cast f32→bf16→f32", (k, P) => k.Cast(k.Cast(P(Rand(7, 9)), DType.BF16), DType.F32), 0);
        Check("cast bf16 strided view→f32", (k, P) => k.Cast(P(Rand(6, 8).To(DType.BF16)).Permute(1, 0), DType.F32), 0);
        Check("from/to host i64 round trip", (k, P) => k.Cast(P(Tensor.FromArray(new long[] { -3, 0, 9, 1L << 40 }, 2, 2)), DType.F32), 0);
        Check("slice_update kv append", (k, P) =>
        {
            var dst = P(Tensor.Zeros(DType.F32, 1, 4, 16, 8));
            k.SliceUpdate(dst, P(Rand(1, 4, 3, 8)), 2, 5);
            k.SliceUpdate(dst, P(Rand(1, 4, 1, 8)), 2, 8);
            return dst;
        }, 0);
        Check("zeros", (k, P) => k.Zeros(DType.F32, [3, 5]), 0);
    }
}
