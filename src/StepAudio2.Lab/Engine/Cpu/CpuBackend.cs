using System.Numerics.Tensors;
using System.Runtime.Intrinsics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// The default backend: float32 activations in managed memory, <see cref="TensorPrimitives"/> for element-wise work and
/// reductions, <see cref="Gemm"/> (packed Vector256/FMA kernels, both cores) for every matrix product. bf16 weights are
/// read in place from their (mapped) storage.
/// </summary>
public sealed unsafe partial class CpuBackend : IBackend
{
    public string Name => "cpu";

    public BackendStats Stats { get; } = new();

    public string Describe()
    {
        string simd = Avx512F.IsSupported ? "AVX-512" : Avx2.IsSupported && Fma.IsSupported ? "AVX2+FMA" : Avx.IsSupported ? "AVX" : "scalar";
        return $"cpu backend, {simd}, {Gemm.MaxThreads} threads";
    }

    // ------------------------------------------------------------------------------------------------ helpers

    private static Tensor F32(Tensor x) => x.DType == DType.F32 && x.IsContiguous ? x : x.To(DType.F32);

    /// <summary>
    /// An f32 [B, H, T, D] tensor whose rows are contiguous ([T, D] blocks with row stride D) kept as it is, whatever its
    /// batch and head strides: a view of the first T rows of a larger KV-cache buffer is used in place, not copied.
    /// </summary>
    private static Tensor RowsF32(Tensor x) =>
        x.DType == DType.F32 && x.Rank == 4 && x.Strides[3] == 1 && x.Strides[2] == x.Shape[3] ? x : F32(x);
    private static Tensor New(params int[] shape) => Tensor.Zeros(DType.F32, shape);
    private static float* Ptr(Tensor t) => (float*)(t.Storage.Pointer + t.Offset * sizeof(float));
    private static Span<float> Out(Tensor t) => t.AsWritableSpan<float>();

    private static float[]? BiasArray(Tensor? bias, int n, string op)
    {
        if (bias is null) return null;
        if (bias.ElementCount != n) throw new ArgumentException($"{op}: bias has {bias.ElementCount} elements, expected {n}");
        return bias.ToFloatArray();
    }

    private static void CheckWeight(Tensor w, string op)
    {
        if (w.DType is not (DType.F32 or DType.BF16)) throw new ArgumentException($"{op}: weight dtype {w.DType.ShortName()} not supported (f32 or bf16)");
        if (!w.IsContiguous) throw new ArgumentException($"{op}: weight must be contiguous");
    }

    /// <summary>C[m,n] = A[m,k]·Wᵀ (+bias) with W [n,k] f32 or bf16, used in place.</summary>
    private static void LinearInto(float* a, int m, int k, int lda, Tensor w, float* bias, float* c, int ldc, bool accumulate = false)
    {
        int n = w.Shape[0];
        if (w.DType == DType.BF16)
            Gemm.GemmBf16NT(m, n, k, a, lda, (ushort*)(w.Storage.Pointer + w.Offset * 2), k, c, ldc, bias, accumulate);
        else
            Gemm.SgemmNT(m, n, k, a, lda, (float*)(w.Storage.Pointer + w.Offset * 4), k, c, ldc, bias, accumulate);
    }

    // ------------------------------------------------------------------------------------------------ linear algebra

    public Tensor Matmul(Tensor a, Tensor b)
    {
        a = F32(a); b = F32(b);
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"matmul needs rank ≥ 2, got {Tensor.ShapeString(a.Shape)} and {Tensor.ShapeString(b.Shape)}");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k) throw new ArgumentException($"matmul: inner dims differ: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}");
        int batchA = (int)(a.ElementCount / ((long)m * k)), batchB = (int)(b.ElementCount / ((long)k * n));
        if (batchB != 1 && batchB != batchA) throw new ArgumentException($"matmul: batch dims differ: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}");
        var shape = a.Shape.ToArray();
        shape[^1] = n;
        var c = New(shape);
        float* pa = Ptr(a), pb = Ptr(b), pc = Ptr(c);
        for (int i = 0; i < batchA; i++)
            Gemm.SgemmNN(m, n, k, pa + (long)i * m * k, k, pb + (batchB == 1 ? 0 : (long)i * k * n), n, pc + (long)i * m * n, n);
        GC.KeepAlive(a); GC.KeepAlive(b); // raw pointers above do not keep the storages alive
        return c;
    }

    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        CheckWeight(weight, "linear");
        x = F32(x);
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {Tensor.ShapeString(weight.Shape)}");
        int n = weight.Shape[0], k = weight.Shape[1];
        if (x.Shape[^1] != k) throw new ArgumentException($"linear: input {Tensor.ShapeString(x.Shape)} does not end in {k} (weight {Tensor.ShapeString(weight.Shape)})");
        int m = (int)(x.ElementCount / Math.Max(k, 1));
        var shape = x.Shape.ToArray();
        shape[^1] = n;
        var y = New(shape);
        var b = BiasArray(bias, n, "linear");
        fixed (float* pb = b)
            LinearInto(Ptr(x), m, k, k, weight, pb, Ptr(y), n);
        GC.KeepAlive(x); GC.KeepAlive(weight); // raw pointers above do not keep the storages alive
        return y;
    }

    public Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        CheckWeight(weight, "conv1d");
        if (PackedConv1d(x, weight, bias, stride, padding, dilation, groups) is { } packed) return packed;
        x = F32(x);
        bool batched = x.Rank == 3;
        if (!batched) x = x.Reshape([1, .. x.Shape]);
        if (x.Rank != 3 || weight.Rank != 3) throw new ArgumentException($"conv1d: input {Tensor.ShapeString(x.Shape)} must be [B, C, T], weight [Cout, Cin/groups, K]");
        int bsz = x.Shape[0], cin = x.Shape[1], t = x.Shape[2];
        int cout = weight.Shape[0], cinG = weight.Shape[1], kw = weight.Shape[2];
        if (cin != cinG * groups || cout % groups != 0)
            throw new ArgumentException($"conv1d: input channels {cin} / weight {Tensor.ShapeString(weight.Shape)} / groups {groups} disagree");
        int tout = (t + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        int coutG = cout / groups, kk = cinG * kw;
        var y = New(bsz, cout, tout);
        var b = BiasArray(bias, cout, "conv1d");
        var cols = new float[(long)tout * kk];
        var tmp = new float[(long)tout * coutG];
        float* px = Ptr(x), py = Ptr(y);
        fixed (float* pcols = cols, ptmp = tmp, pbias = b)
        {
            for (int bi = 0; bi < bsz; bi++)
            for (int g = 0; g < groups; g++)
            {
                // im2col: cols[t, ci·K + k] = x[ci, t·stride + k·dilation − padding] (zero outside)
                float* xs = px + ((long)bi * cin + g * cinG) * t;
                float* colsP = pcols;
                Parallel.For(0, tout, to =>
                {
                    float* row = colsP + (long)to * kk;
                    int start = to * stride - padding;
                    for (int ci = 0; ci < cinG; ci++)
                    {
                        float* src = xs + (long)ci * t;
                        for (int k = 0; k < kw; k++)
                        {
                            int ti = start + k * dilation;
                            row[ci * kw + k] = (uint)ti < (uint)t ? src[ti] : 0f;
                        }
                    }
                });
                var wg = weight.Slice(0, g * coutG, coutG);
                LinearInto(pcols, tout, kk, kk, wg, pbias == null ? null : pbias + g * coutG, ptmp, coutG);
                // [tout, coutG] → y[b, g·coutG + o, t]
                float* dst = py + ((long)bi * cout + g * coutG) * tout;
                for (int to = 0; to < tout; to++)
                    for (int o = 0; o < coutG; o++)
                        dst[(long)o * tout + to] = ptmp[(long)to * coutG + o];
            }
        }
        GC.KeepAlive(x); GC.KeepAlive(weight); // raw pointers above do not keep the storages alive
        return batched ? y : y.Reshape(cout, tout);
    }

    public Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation)
    {
        if (PackedConvTranspose1d(x, weight, bias, stride, padding, outputPadding, dilation) is { } packed) return packed;
        x = F32(x);
        var w = F32(weight);
        bool batched = x.Rank == 3;
        if (!batched) x = x.Reshape([1, .. x.Shape]);
        int bsz = x.Shape[0], cin = x.Shape[1], t = x.Shape[2];
        if (w.Rank != 3 || w.Shape[0] != cin) throw new ArgumentException($"conv_transpose1d: weight {Tensor.ShapeString(w.Shape)} must be [Cin={cin}, Cout, K]");
        int cout = w.Shape[1], kw = w.Shape[2];
        int tout = (t - 1) * stride - 2 * padding + dilation * (kw - 1) + outputPadding + 1;
        var y = New(bsz, cout, tout);
        var b = BiasArray(bias, cout, "conv_transpose1d");
        var xt = new float[(long)t * cin];
        var cols = new float[(long)t * cout * kw];
        float* px = Ptr(x), py = Ptr(y), pw = Ptr(w);
        fixed (float* pxt = xt, pcols = cols)
        {
            for (int bi = 0; bi < bsz; bi++)
            {
                float* xb = px + (long)bi * cin * t;
                for (int ci = 0; ci < cin; ci++)
                    for (int ti = 0; ti < t; ti++) pxt[(long)ti * cin + ci] = xb[(long)ci * t + ti];
                // cols[t, co·K + k] = Σ_ci x[ci, t]·W[ci, co, k]
                Gemm.SgemmNN(t, cout * kw, cin, pxt, cin, pw, cout * kw, pcols, cout * kw);
                float* yb = py + (long)bi * cout * tout;
                for (int co = 0; co < cout; co++)
                {
                    float* yrow = yb + (long)co * tout;
                    if (b is not null) new Span<float>(yrow, tout).Fill(b[co]);
                    for (int ti = 0; ti < t; ti++)
                    for (int k = 0; k < kw; k++)
                    {
                        int to = ti * stride + k * dilation - padding;
                        if ((uint)to < (uint)tout) yrow[to] += pcols[(long)ti * cout * kw + co * kw + k];
                    }
                }
            }
        }
        GC.KeepAlive(x); GC.KeepAlive(w); // raw pointers above do not keep the storages alive
        return batched ? y : y.Reshape(cout, tout);
    }

    public Tensor AvgPool1d(Tensor x, int kernel, int stride)
    {
        x = F32(x);
        int t = x.Shape[^1];
        int tout = (t - kernel) / stride + 1;
        int rows = (int)(x.ElementCount / Math.Max(t, 1));
        var shape = x.Shape.ToArray();
        shape[^1] = Math.Max(tout, 0);
        var y = New(shape);
        var src = x.AsSpan<float>();
        var dst = Out(y);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < tout; o++)
            {
                float s = 0;
                for (int k = 0; k < kernel; k++) s += src[r * t + o * stride + k];
                dst[r * tout + o] = s / kernel;
            }
        return y;
    }

    // ------------------------------------------------------------------------------------------------ normalisation

    public Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        x = F32(x);
        int d = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(d, 1));
        var w = weight?.ToFloatArray();
        var b = bias?.ToFloatArray();
        if ((w is not null && w.Length != d) || (b is not null && b.Length != d))
            throw new ArgumentException($"layer_norm: affine parameters do not match the last dim {d}");
        var y = New(x.Shape);
        float* px = Ptr(x), py = Ptr(y);
        // Rows in blocks (a task per row cost more than the row at D = 1280), each row's statistics in float64.
        int threads = Math.Max(1, Math.Min(Gemm.MaxThreads, rows / 16));
        void Part(int part)
        {
            var (r0, r1) = Gemm.Part(rows, threads, part, 1);
            for (int r = r0; r < r1; r++)
                LayerNormRow(new ReadOnlySpan<float>(px + (long)r * d, d), new Span<float>(py + (long)r * d, d), w, b, eps);
        }
        if (threads == 1) Part(0); // a few rows (decoding): inline, no task
        else Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, Part);
        GC.KeepAlive(x); // raw pointers above do not keep the storages alive
        return y;
    }

    /// <summary>One LayerNorm row: mean and variance summed in float64 (8 interleaved partial sums where 256-bit vectors
    /// are accelerated), then (x − mean)·rstd·w + b in float32, each step rounded as in the scalar form.</summary>
    // Optimised from the first call: a forward pass calls each norm a few dozen times, and until the tiered JIT caught up
    // its tier-0 code made the encoder's LayerNorm 10× slower (36 ms against 3.4 ms on [1250, 1280]).
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    private static void LayerNormRow(ReadOnlySpan<float> row, Span<float> dst, float[]? w, float[]? b, float eps)
    {
        int d = row.Length, i = 0;
        double mean = 0;
        if (Vector256.IsHardwareAccelerated && d >= 8)
        {
            Vector256<double> s0 = default, s1 = default;
            for (; i <= d - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(row.Slice(i, 8)));
                s0 += lo; s1 += hi;
            }
            mean = Vector256.Sum(s0 + s1);
        }
        for (; i < d; i++) mean += row[i];
        mean /= d;
        double var = 0;
        i = 0;
        if (Vector256.IsHardwareAccelerated && d >= 8)
        {
            Vector256<double> s0 = default, s1 = default, mv = Vector256.Create(mean);
            for (; i <= d - 8; i += 8)
            {
                var (lo, hi) = Vector256.Widen(Vector256.Create(row.Slice(i, 8)));
                lo -= mv; hi -= mv;
                s0 += lo * lo; s1 += hi * hi;
            }
            var = Vector256.Sum(s0 + s1);
        }
        for (; i < d; i++) { double c = row[i] - mean; var += c * c; }
        var /= d;
        float rstd = (float)(1.0 / Math.Sqrt(var + eps));
        float m = (float)mean;
        i = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> mv = Vector256.Create(m), rv = Vector256.Create(rstd);
            for (; i <= d - 8; i += 8)
            {
                var v = (Vector256.Create(row.Slice(i, 8)) - mv) * rv;
                if (w is not null) v *= Vector256.Create(w.AsSpan(i, 8));
                if (b is not null) v += Vector256.Create(b.AsSpan(i, 8));
                v.CopyTo(dst.Slice(i, 8));
            }
        }
        for (; i < d; i++)
        {
            float v = (row[i] - m) * rstd;
            if (w is not null) v *= w[i];
            if (b is not null) v += b[i];
            dst[i] = v;
        }
    }

    public Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        x = F32(x);
        int d = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(d, 1));
        var w = weight.ToFloatArray();
        if (w.Length != d) throw new ArgumentException($"rms_norm: weight has {w.Length} elements, last dim is {d}");
        var y = New(x.Shape);
        float* px = Ptr(x), py = Ptr(y);
        ForRows(rows, d, r =>
        {
            var row = new ReadOnlySpan<float>(px + (long)r * d, d);
            var dst = new Span<float>(py + (long)r * d, d);
            float ms = TensorPrimitives.SumOfSquares(row) / d;
            float scale = 1f / MathF.Sqrt(ms + eps);
            TensorPrimitives.Multiply(row, scale, dst);
            TensorPrimitives.Multiply(dst, w, dst);
        });
        GC.KeepAlive(x); // raw pointers above do not keep the storages alive
        return y;
    }

    // ------------------------------------------------------------------------------------------------ element-wise

    public Tensor Unary(UnaryOp op, Tensor x, float alpha)
    {
        x = F32(x);
        var y = New(x.Shape);
        var s = x.AsSpan<float>();
        var d = Out(y);
        switch (op)
        {
            case UnaryOp.Gelu: ParallelChunks(s, d, VectorMath.Gelu); break;
            case UnaryOp.GeluTanh: ParallelChunks(s, d, VectorMath.GeluTanh); break;
            case UnaryOp.Silu: ParallelChunks(s, d, VectorMath.Silu); break;
            case UnaryOp.Mish: VectorMath.Mish(s, d); break;
            case UnaryOp.Relu: TensorPrimitives.Max(s, 0f, d); break;
            case UnaryOp.LeakyRelu: for (int i = 0; i < s.Length; i++) d[i] = s[i] >= 0 ? s[i] : alpha * s[i]; break;
            case UnaryOp.Elu: for (int i = 0; i < s.Length; i++) d[i] = s[i] > 0 ? s[i] : alpha * (MathF.Exp(s[i]) - 1f); break;
            case UnaryOp.Tanh: TensorPrimitives.Tanh(s, d); break;
            case UnaryOp.Exp: TensorPrimitives.Exp(s, d); break;
            case UnaryOp.Log: TensorPrimitives.Log(s, d); break;
            case UnaryOp.Sin: TensorPrimitives.Sin(s, d); break;
            case UnaryOp.Cos: TensorPrimitives.Cos(s, d); break;
            case UnaryOp.Abs: TensorPrimitives.Abs(s, d); break;
            case UnaryOp.Neg: TensorPrimitives.Negate(s, d); break;
            case UnaryOp.Sigmoid: TensorPrimitives.Sigmoid(s, d); break;
            case UnaryOp.Sqrt: TensorPrimitives.Sqrt(s, d); break;
            case UnaryOp.Square: TensorPrimitives.Multiply(s, s, d); break;
            default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
        }
        return y;
    }

    /// <summary>body(0) … body(rows − 1) in parallel, or inline when the work is small: decoding calls the norms and
    /// attention's row loops with one row, where Parallel.For's task and thread-pool wake-up cost more than the row
    /// (~2,000 such calls per step: attention's two per head per layer measured ~1 ms per layer at a 30-token context).</summary>
    private static void ForRows(int rows, int rowElements, Action<int> body)
    {
        if (rows <= 1 || (long)rows * rowElements <= 1 << 15)
        {
            for (int r = 0; r < rows; r++) body(r);
            return;
        }
        Parallel.For(0, rows, body);
    }

    private delegate void SpanFn(ReadOnlySpan<float> x, Span<float> y);

    private static void ParallelChunks(ReadOnlySpan<float> x, Span<float> y, SpanFn fn)
    {
        const int chunk = 1 << 15;
        if (x.Length <= chunk) { fn(x, y); return; }
        fixed (float* px = x, py = y)
        {
            float* a = px, b = py;
            int n = x.Length;
            Parallel.For(0, (n + chunk - 1) / chunk, c =>
            {
                int start = c * chunk, len = Math.Min(chunk, n - start);
                fn(new ReadOnlySpan<float>(a + start, len), new Span<float>(b + start, len));
            });
        }
    }

    public Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        a = F32(a); b = F32(b);
        var shape = ShapeRules.Broadcast(op.ToString(), a.Shape, b.Shape);
        var y = New(shape);
        var d = Out(y);
        if (a.Shape.SequenceEqual(shape) && b.Shape.SequenceEqual(shape))
        {
            if (d.Length >= 1 << 18)
            {
                // large (a residual add of [1250, 1280]): chunks on all threads, element-wise so the same values
                float* xa = Ptr(a), xb = Ptr(b), xy = Ptr(y);
                int n = d.Length, chunks = (n + (1 << 16) - 1) >> 16;
                Parallel.For(0, chunks, c =>
                {
                    int start = c << 16, len = Math.Min(1 << 16, n - start);
                    Apply(op, new ReadOnlySpan<float>(xa + start, len), new ReadOnlySpan<float>(xb + start, len), new Span<float>(xy + start, len));
                });
                GC.KeepAlive(a); GC.KeepAlive(b);
            }
            else Apply(op, a.AsSpan<float>(), b.AsSpan<float>(), d);
            return y;
        }
        // a scalar b: one vectorised pass (x / n of a mean, x − θ thresholds)
        if (b.ElementCount == 1 && a.Shape.SequenceEqual(shape))
        {
            ApplyRowValue(op, a.AsSpan<float>(), b.AsSpan<float>()[0], d);
            return y;
        }
        // b (or a) broadcast over leading dims: apply row by row
        if (a.Shape.SequenceEqual(shape) && IsSuffix(b.Shape, shape, out int inner))
        {
            var sa = a.AsSpan<float>(); var sb = b.AsSpan<float>();
            for (int o = 0; o < d.Length; o += inner) Apply(op, sa.Slice(o, inner), sb, d.Slice(o, inner));
            return y;
        }
        // broadcasting with a last axis of useful length: one vector pass per output row (CpuBackend.Broadcast.cs)
        if (shape.Length > 0 && shape[^1] >= 8)
        {
            BroadcastRows(op, a, b, shape, d);
            return y;
        }
        // general broadcasting through strides (0 on broadcast axes)
        var sa2 = ShapeRules.BroadcastStrides(a.Shape, shape);
        var sb2 = ShapeRules.BroadcastStrides(b.Shape, shape);
        var pa = a.AsSpan<float>(); var pb = b.AsSpan<float>();
        int rank = shape.Length;
        var idx = new int[rank];
        long ia = 0, ib = 0;
        for (int n = 0; n < d.Length; n++)
        {
            d[n] = Apply(op, pa[(int)ia], pb[(int)ib]);
            for (int k = rank - 1; k >= 0; k--)
            {
                idx[k]++; ia += sa2[k]; ib += sb2[k];
                if (idx[k] < shape[k]) break;
                ia -= sa2[k] * shape[k]; ib -= sb2[k] * shape[k]; idx[k] = 0;
            }
        }
        return y;
    }

    private static bool IsSuffix(int[] small, int[] shape, out int inner)
    {
        inner = 1;
        int s = small.Length;
        while (s > 0 && small[0] == 1 && s > 1) { small = small[1..]; s--; }
        if (s > shape.Length) return false;
        for (int i = 0; i < s; i++)
        {
            if (small[s - 1 - i] != shape[shape.Length - 1 - i]) return false;
            inner *= small[s - 1 - i];
        }
        return inner > 0;
    }

    private static void Apply(BinaryOp op, ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, d); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, d); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(a, b, d); break;
            case BinaryOp.Divide: TensorPrimitives.Divide(a, b, d); break;
            case BinaryOp.Maximum: TensorPrimitives.Max(a, b, d); break;
            case BinaryOp.Minimum: TensorPrimitives.Min(a, b, d); break;
        }
    }

    private static float Apply(BinaryOp op, float a, float b) => op switch
    {
        BinaryOp.Add => a + b,
        BinaryOp.Subtract => a - b,
        BinaryOp.Multiply => a * b,
        BinaryOp.Divide => a / b,
        BinaryOp.Maximum => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : Math.Max(a, b),
        BinaryOp.Minimum => float.IsNaN(a) || float.IsNaN(b) ? float.NaN : Math.Min(a, b),
        _ => throw new ArgumentOutOfRangeException(nameof(op)),
    };

    public Tensor Scale(Tensor x, float scale, float shift)
    {
        x = F32(x);
        var y = New(x.Shape);
        if (x.ElementCount >= 1 << 18)
        {
            // large (the encoder's q and k): chunks on all threads, element-wise so the same values
            float* px = Ptr(x), py = Ptr(y);
            int n = (int)x.ElementCount, chunks = (n + (1 << 16) - 1) >> 16;
            Parallel.For(0, chunks, c =>
            {
                int start = c << 16, len = Math.Min(1 << 16, n - start);
                var dst = new Span<float>(py + start, len);
                TensorPrimitives.Multiply(new ReadOnlySpan<float>(px + start, len), scale, dst);
                if (shift != 0f) TensorPrimitives.Add(dst, shift, dst);
            });
            GC.KeepAlive(x);
            return y;
        }
        TensorPrimitives.Multiply(x.AsSpan<float>(), scale, Out(y));
        if (shift != 0f) TensorPrimitives.Add(Out(y), shift, Out(y));
        return y;
    }

    public Tensor Softmax(Tensor x)
    {
        x = F32(x);
        int d = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(d, 1));
        var y = New(x.Shape);
        float* px = Ptr(x), py = Ptr(y);
        ForRows(rows, d, r => VectorMath.Softmax(new ReadOnlySpan<float>(px + (long)r * d, d), new Span<float>(py + (long)r * d, d)));
        GC.KeepAlive(x); // raw pointers above do not keep the storages alive
        return y;
    }

    // ------------------------------------------------------------------------------------------------ attention

    public Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException("scaled_dot_product_attention: q, k, v must be [B, heads, T, D]");
        q = RowView(q); k = RowView(k); v = RowView(v);
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int hkv = k.Shape[1], tk = k.Shape[2], dv = v.Shape[3];
        if (k.Shape[0] != b || v.Shape[0] != b || k.Shape[3] != d || v.Shape[1] != hkv || v.Shape[2] != tk || hq % hkv != 0)
            throw new ArgumentException($"scaled_dot_product_attention: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} disagree");
        int group = hq / hkv;
        Tensor? mask = maskBias is null ? null : F32(maskBias);
        long[]? mStrides = mask is null ? null : ShapeRules.BroadcastStrides(mask.Shape, [b, hq, tq, tk]);
        if (scoresOut is not null && (scoresOut.DType != DType.F32 || !scoresOut.IsContiguous || !scoresOut.Shape.SequenceEqual(new[] { b, hq, tq, tk })))
            throw new ArgumentException($"scaled_dot_product_attention: scoresOut must be f32 [{b}, {hq}, {tq}, {tk}]");
        int pairs = b * hq;
        // A decode step (one query row over a short cache: ~100 K multiply-adds for all heads) runs on the calling
        // thread: a Parallel.For there costs more than the products, and its pool thread would contend with the GEMV
        // team's worker, which spins between the step's GEMVs (GemvTeam).
        bool small = (long)pairs * tq * tk * d < 1L << 20;
        if (!small && scoresOut is null && Gemm.CurrentPath != GemmPath.Scalar && tq > Gemv.MaxRows && d > 0 && dv > 0 && tk > 0
            && pairs >= Gemm.MaxThreads)
            return BlockedAttention(q, k, v, scale, mask, mStrides, causal, group);
        q = F32(q); k = RowsF32(k); v = RowsF32(v);
        var o = New(b, hq, tq, dv);
        float* pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), po = Ptr(o);
        float* pm = mask is null ? null : Ptr(mask);
        float* ps = scoresOut is null ? null : (float*)(scoresOut.Storage.Pointer + scoresOut.Offset * 4);
        int causalOffset = tk - tq; // query i sees keys ≤ i + offset (KV cache: queries are the last tq positions)
        // One (batch, head) per worker at a time, its products on ceil(threads / workers) threads: at the encoder's shape
        // (20 heads, T = 1250, head dim 64) splitting each small product and each row pass across the threads cost more in
        // packing and fork/join than the arithmetic, and left the row passes (scale, mask, softmax) on per-row tasks.
        // The GEMMs sum in k order whatever their thread count and the row passes are per row, so the result is the same
        // bits as running every head on all threads.
        int workers = small ? 1 : Math.Clamp(Gemm.MaxThreads, 1, Math.Max(pairs, 1));
        int inner = small ? 1 : Math.Max(1, (Gemm.MaxThreads + workers - 1) / workers);
        int next = -1; // pairs are taken in turn, so a worker that is descheduled (a busy machine) holds back one head only
        var forced = Gemm.ForcePath; // a path forced on this thread (tests) holds in the pool's workers too
        void Worker(int wi)
        {
            var saved = Gemm.ForcePath;
            Gemm.ForcePath = forced;
            // A managed (large-object heap) scratch, as before the per-head split: its allocations are what prompts the GC to
            // collect the pinned activation tensors of earlier layers. With native or pinned scratch instead, the full-size
            // encoder on 25 s peaked at 3.8–6.1 GB RSS against 2.3 GB with this one (2.9 GB before the split).
            var scratch = new float[Math.Max(1L, (long)tq * tk)];
            fixed (float* pscr = scratch)
            try
            {
                for (int pair = Interlocked.Increment(ref next); pair < pairs; pair = Interlocked.Increment(ref next))
                {
                    int bi = pair / hq, h = pair % hq, hk = h / group;
                    float* qh = pq + ((long)bi * hq + h) * tq * d;
                    float* kh = pk + bi * k.Strides[0] + hk * k.Strides[1]; // [tk, d] rows, heads possibly spaced apart
                    float* vh = pv + bi * v.Strides[0] + hk * v.Strides[1];
                    float* s = ps != null ? ps + ((long)bi * hq + h) * tq * tk : pscr;
                    Gemm.SgemmNTOn(inner, tq, tk, d, qh, d, kh, d, s, tk);
                    for (int i = 0; i < tq; i++)
                    {
                        var row = new Span<float>(s + (long)i * tk, tk);
                        ScoreRow(row, scale, pm, mStrides, bi, h, i, causal ? i + causalOffset + 1 : tk);
                        // softmax into the worker's scratch (in place when the scores are not kept)
                        VectorMath.Softmax(row, new Span<float>(pscr + (long)i * tk, tk));
                    }
                    Gemm.SgemmNNOn(inner, tq, dv, tk, pscr, tk, vh, dv, po + ((long)bi * hq + h) * tq * dv, dv);
                }
            }
            finally { Gemm.ForcePath = saved; }
        }
        if (workers == 1) Worker(0);
        else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, Worker);
        GC.KeepAlive(q); GC.KeepAlive(k); GC.KeepAlive(v); GC.KeepAlive(mask); GC.KeepAlive(scoresOut); // raw pointers above do not keep the storages alive
        return o;
    }

    /// <summary>An f32 [B, H, T, D] tensor whose rows are contiguous kept as it is, whatever its other strides (a head view
    /// of a [B, T, H·D] projection, a KV-cache prefix); anything else copied to a contiguous f32 tensor.</summary>
    private static Tensor RowView(Tensor x) => x.DType == DType.F32 && x.Rank == 4 && x.Strides[3] == 1 ? x : F32(x);

    /// <summary>Rows of queries per step of <see cref="BlockedAttention"/>: a multiple of both register tiles' heights
    /// (12 and 6) whose [rows, T] block of scores (600 KB at T = 1250) stays in L2 from the product to the softmax to the
    /// product with V.</summary>
    private const int AttentionRowBlock = 120;

    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v a block of query rows at a time, one (batch, head) per worker: the head's keys and values
    /// are packed once (<see cref="GemmBlocked.PackAll"/>), and each block's scores go through the row pass and into the
    /// product with V while still in cache, instead of a [T, T] matrix per head written, re-read, packed and read again.
    /// q, k, v are used in place through their row strides (head views of [B, T, H·D] projections), and the output is
    /// written as [B, T, H, Dv] and returned as its [B, H, T, Dv] view, so the caller's permute back to [B, T, H·Dv] is free.
    /// Each score and output element gets the same kernels, k order and row operations as the per-head products of
    /// <see cref="ScaledDotProductAttention"/>'s general path: the same bits.
    /// </summary>
    /// <summary>One row of attention scores before its softmax, in place: × scale, + the mask row (broadcast strides
    /// <paramref name="mStrides"/> over [B, H, Tq, Tk]), −∞ from key <paramref name="firstMasked"/> on (causal; Tk when
    /// not). Shared by the per-head and the blocked attention, so both give the same bits.</summary>
    private static void ScoreRow(Span<float> row, float scale, float* pm, long[]? mStrides, int bi, int h, int i, int firstMasked)
    {
        int tk = row.Length;
        if (scale != 1f) TensorPrimitives.Multiply(row, scale, row);
        if (pm != null)
        {
            long mo = bi * mStrides![0] + h * mStrides[1] + i * mStrides[2];
            if (mStrides[3] == 1) TensorPrimitives.Add(row, new ReadOnlySpan<float>(pm + mo, tk), row);
            else for (int j = 0; j < tk; j++) row[j] += pm[mo + j * mStrides[3]];
        }
        for (int j = Math.Max(0, firstMasked); j < tk; j++) row[j] = float.NegativeInfinity;
    }

    private static Tensor BlockedAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? mask, long[]? mStrides, bool causal, int group)
    {
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int tk = k.Shape[2], dv = v.Shape[3];
        var storage = New(b, tq, hq, dv);
        float* pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), po = Ptr(storage);
        float* pm = mask is null ? null : Ptr(mask);
        long[] qs = q.Strides.ToArray(), ks = k.Strides.ToArray(), vs = v.Strides.ToArray();
        int causalOffset = tk - tq;
        int pairs = b * hq, workers = Math.Clamp(Gemm.MaxThreads, 1, pairs);
        var path = Gemm.CurrentPath;
        int next = -1;
        [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
        void Worker(int wi)
        {
            int rowsMax = Math.Min(AttentionRowBlock, tq);
            float* kp = (float*)NativeMemory.AlignedAlloc((nuint)GemmBlocked.PackedSize(path, tk, d) * sizeof(float), 64);
            float* vp = (float*)NativeMemory.AlignedAlloc((nuint)GemmBlocked.PackedSize(path, dv, tk) * sizeof(float), 64);
            // The block of scores lives at the start of a large-object-heap array as big as a head's [tq, tk] scores,
            // uninitialised (only the block's pages are ever touched): LOH allocations are what prompts the GC to collect
            // the pinned activation tensors of earlier layers. With the block in native memory the full-size encoder on
            // 25 s peaked at 4.05 GB RSS, with this array at 1.9–2.1 GB (2.28 GB before the blocked attention).
            var scratch = GC.AllocateUninitializedArray<float>((int)Math.Clamp((long)tq * tk, (long)rowsMax * tk, Array.MaxLength));
            fixed (float* sb = scratch)
            try
            {
                for (int pair = Interlocked.Increment(ref next); pair < pairs; pair = Interlocked.Increment(ref next))
                {
                    int bi = pair / hq, h = pair % hq, hk = h / group;
                    float* qh = pq + bi * qs[0] + h * qs[1];
                    GemmBlocked.PackAll(path, BLayout.F32NT, tk, d, pk + bi * ks[0] + hk * ks[1], (int)ks[2], kp);
                    GemmBlocked.PackAll(path, BLayout.F32NN, dv, tk, pv + bi * vs[0] + hk * vs[1], (int)vs[2], vp);
                    for (int r0 = 0; r0 < tq; r0 += rowsMax)
                    {
                        int rows = Math.Min(rowsMax, tq - r0);
                        GemmBlocked.RunPacked(path, rows, tk, d, qh + r0 * qs[2], (int)qs[2], kp, sb, tk, accumulate: false);
                        for (int r = 0; r < rows; r++)
                        {
                            int i = r0 + r;
                            var row = new Span<float>(sb + (long)r * tk, tk);
                            ScoreRow(row, scale, pm, mStrides, bi, h, i, causal ? i + causalOffset + 1 : tk);
                            VectorMath.Softmax(row, row);
                        }
                        GemmBlocked.RunPacked(path, rows, dv, tk, sb, tk, vp, po + (((long)bi * tq + r0) * hq + h) * dv, hq * dv, accumulate: false);
                    }
                }
            }
            finally
            {
                NativeMemory.AlignedFree(kp); NativeMemory.AlignedFree(vp);
            }
        }
        if (workers == 1) Worker(0);
        else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, Worker);
        GC.KeepAlive(q); GC.KeepAlive(k); GC.KeepAlive(v); GC.KeepAlive(mask); // raw pointers above do not keep the storages alive
        return storage.Permute(0, 2, 1, 3);
    }

    // ------------------------------------------------------------------------------------------------ indexing, shape

    public Tensor Take(Tensor table, ReadOnlySpan<int> ids)
    {
        if (table.Rank != 2 || !table.IsContiguous) throw new ArgumentException($"take: table must be a contiguous [rows, dim] tensor, got {table}");
        int rows = table.Shape[0], d = table.Shape[1];
        var y = New(ids.Length, d);
        var dst = Out(y);
        if (table.DType == DType.F32)
        {
            // f32 tables (activations gathered by position, e.g. HiFT's up-sampling): rows straight from one span
            var src = table.AsSpan<float>();
            for (int i = 0; i < ids.Length; i++)
            {
                int id = ids[i];
                if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {id} at position {i} outside table of {rows} rows");
                src.Slice(id * d, d).CopyTo(dst.Slice(i * d, d));
            }
            return y;
        }
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {id} at position {i} outside table of {rows} rows");
            var row = table.Slice(0, id, 1);
            var target = dst.Slice(i * d, d);
            if (table.DType == DType.BF16) BFloat16.ToSingle(row.AsSpan<ushort>(), target);
            else if (table.DType == DType.F32) row.AsSpan<float>().CopyTo(target);
            else row.ToFloatArray().CopyTo(target);
        }
        return y;
    }

    public Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias)
    {
        x = F32(x);
        int n = weight.OutFeatures, k = weight.InFeatures;
        if (x.Rank < 1 || x.Shape[^1] != k)
            throw new ArgumentException($"quantized_matmul: input {Tensor.ShapeString(x.Shape)} does not end in {k} ({weight})");
        int m = (int)(x.ElementCount / Math.Max(k, 1));
        var shape = x.Shape.ToArray();
        shape[^1] = n;
        var y = New(shape);
        var b = BiasArray(bias, n, "quantized_matmul");
        fixed (float* pb = b)
            QuantGemm.Run(m, Ptr(x), k, weight, pb, Ptr(y), n, Gemm.MaxThreads);
        GC.KeepAlive(x);
        return y;
    }

    public Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids)
    {
        var y = New(ids.Length, table.InFeatures);
        QuantGemm.TakeRows(table, ids, Out(y));
        return y;
    }

    public Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value)
    {
        x = F32(x);
        int rank = x.Rank;
        if (pads.Length != rank) throw new ArgumentException($"pad: {pads.Length} pad pairs for rank {rank}");
        var shape = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            shape[i] = x.Shape[i] + pads[i].Before + pads[i].After;
            if (mode == PadMode.Reflect && (pads[i].Before >= x.Shape[i] || pads[i].After >= x.Shape[i]) && (pads[i].Before > 0 || pads[i].After > 0))
                throw new ArgumentException($"pad: reflect padding {pads[i]} must be smaller than dim {i} of size {x.Shape[i]}");
        }
        var y = New(shape);
        var src = x.AsSpan<float>();
        var dst = Out(y);
        var srcStrides = Tensor.ContiguousStrides(x.Shape);
        var idx = new int[rank];
        for (long n = 0; n < dst.Length; n++)
        {
            long si = 0;
            bool inside = true;
            for (int dim = 0; dim < rank; dim++)
            {
                int i = idx[dim] - pads[dim].Before, size = x.Shape[dim];
                if ((uint)i >= (uint)size)
                {
                    switch (mode)
                    {
                        case PadMode.Constant: inside = false; break;
                        case PadMode.Reflect: i = i < 0 ? -i : 2 * (size - 1) - i; break;
                        case PadMode.Replicate: i = i < 0 ? 0 : size - 1; break;
                    }
                }
                si += i * srcStrides[dim];
            }
            dst[(int)n] = inside ? src[(int)si] : value;
            for (int k = rank - 1; k >= 0; k--)
            {
                if (++idx[k] < shape[k]) break;
                idx[k] = 0;
            }
        }
        return y;
    }

    public Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("concatenate: no inputs");
        var parts = xs.Select(F32).ToArray();
        int rank = parts[0].Rank;
        if (axis < 0) axis += rank;
        var shape = parts[0].Shape.ToArray();
        shape[axis] = 0;
        foreach (var p in parts)
        {
            if (p.Rank != rank || Enumerable.Range(0, rank).Any(i => i != axis && p.Shape[i] != parts[0].Shape[i]))
                throw new ArgumentException($"concatenate: shapes {string.Join(", ", parts.Select(q => Tensor.ShapeString(q.Shape)))} differ off axis {axis}");
            shape[axis] += p.Shape[axis];
        }
        var y = New(shape);
        var dst = Out(y);
        long outer = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        long innerOut = y.ElementCount / Math.Max(outer, 1);
        long offset = 0;
        foreach (var p in parts)
        {
            long inner = p.ElementCount / Math.Max(outer, 1);
            var src = p.AsSpan<float>();
            for (long o = 0; o < outer; o++)
                src.Slice((int)(o * inner), (int)inner).CopyTo(dst.Slice((int)(o * innerOut + offset), (int)inner));
            offset += inner;
        }
        return y;
    }

    public Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims)
    {
        x = F32(x);
        if (axis < 0) axis += x.Rank;
        int n = x.Shape[axis];
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= x.Shape[i];
        for (int i = axis + 1; i < x.Rank; i++) inner *= x.Shape[i];
        var shape = keepDims ? x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray() : x.Shape.Where((_, i) => i != axis).ToArray();
        var y = New(shape);
        var src = x.AsSpan<float>();
        var dst = Out(y);
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                double acc = op switch { ReduceOp.Max => double.NegativeInfinity, ReduceOp.Min => double.PositiveInfinity, _ => 0 };
                for (int j = 0; j < n; j++)
                {
                    float v = src[(int)((o * n + j) * inner + i)];
                    acc = op switch { ReduceOp.Max => Math.Max(acc, v), ReduceOp.Min => Math.Min(acc, v), _ => acc + v };
                }
                if (op == ReduceOp.Mean) acc /= n;
                dst[(int)(o * inner + i)] = (float)acc;
            }
        return y;
    }

    public int[] Argmax(Tensor x)
    {
        x = F32(x);
        int d = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(d, 1));
        var src = x.AsSpan<float>();
        var result = new int[rows];
        for (int r = 0; r < rows; r++) result[r] = TensorPrimitives.IndexOfMax(src.Slice(r * d, d)); // first maximum, as torch.argmax
        return result;
    }

    public (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k)
    {
        k = Math.Clamp(k, 0, x.Length);
        var idx = new int[x.Length];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        var vals = x.ToArray();
        // stable descending order: ties keep the lower index first
        Array.Sort(idx, (a, b) => vals[b].CompareTo(vals[a]) is var c && c != 0 ? c : a.CompareTo(b));
        var top = idx[..k];
        return (top.Select(i => vals[i]).ToArray(), top);
    }
}
