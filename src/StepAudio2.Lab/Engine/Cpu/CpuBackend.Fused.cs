using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Cpu;

// The CPU backend's fused capabilities (IBackend.DitBlock, IBackend.RelPositionAttention) and prepared conv weights.
// Weight preparation is cached here, keyed by the weight (ConditionalWeakTable: an entry lives as long as its key, i.e.
// as long as the model holding the weight), so model code passes plain checkpoint tensors and never sees a packed form.
public sealed unsafe partial class CpuBackend
{
    private readonly ConditionalWeakTable<DitBlockWeights, DitBlockKernel> _ditKernels = new();
    private readonly ConditionalWeakTable<Tensor, float[]> _convPacks = new(), _convTransposePacks = new();
    private DitScratch? _ditScratch; // the last block's buffers, reused by the next block of the same shape

    /// <summary>Whether Conv1d / ConvTranspose1d use the prepared (packed) weights when they apply (default); off, they
    /// run the explicit im2col / column GEMM — the plain paths the packed ones are tested and benchmarked against.</summary>
    internal bool UsePackedConvs { get; init; } = true;

    public Tensor Floor(Tensor x)
    {
        x = F32(x);
        var y = New(x.Shape);
        TensorPrimitives.Floor(x.AsSpan<float>(), Out(y));
        return y;
    }

    public Tensor DitBlock(Tensor h, Tensor modulation, DitBlockWeights weights)
    {
        var kernel = _ditKernels.GetValue(weights, w => new DitBlockKernel(w));
        h = F32(h);
        int b = h.Shape[0], t = h.Shape[1], d = weights.Hidden;
        if (h.Rank != 3 || h.Shape[2] != d || modulation.ElementCount != (long)b * 9 * d)
            throw new ArgumentException($"dit block: h {Tensor.ShapeString(h.Shape)} / modulation {Tensor.ShapeString(modulation.Shape)} must be [B, T, {d}] / [B, {9 * d}]");
        int threads = Gemm.MaxThreads;
        var s = Interlocked.Exchange(ref _ditScratch, null);
        if (s is null || !kernel.Fits(s, b, t, threads)) s = kernel.NewScratch(b, t, threads);
        try
        {
            h.AsSpan<float>().CopyTo(s.H.Span);
            kernel.Forward(s, modulation.ToFloatArray());
            var y = New(h.Shape);
            s.H.Span[..(int)y.ElementCount].CopyTo(Out(y));
            return y;
        }
        finally { _ditScratch = s; }
    }

    /// <summary>
    /// The same products as <see cref="Composite.RelPositionAttention"/> per head, one head per worker at a time with
    /// single-threaded GEMMs and no [H, T, T] bias tensor: (q+v)·P_hᵀ read in place from the [2T−1, D] projection (row
    /// stride D), the shifted bias added row by row in the op-by-op rounding order (scores·scale, then + bd·scale), softmax,
    /// ·V into the head's columns of [T, D].
    /// </summary>
    public Tensor RelPositionAttention(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor posBiasU, Tensor posBiasV, int heads)
    {
        q = F32(q); k = F32(k); v = F32(v);
        var p = F32(positions);
        int t = q.Shape[1], d = q.Shape[2], dk = d / heads, rows = 2 * t - 1;
        if (q.Rank != 3 || q.Shape[0] != 1 || d % heads != 0 || !k.Shape.SequenceEqual(q.Shape) || !v.Shape.SequenceEqual(q.Shape)
            || p.Rank != 2 || p.Shape[0] != rows || p.Shape[1] != d || posBiasU.ElementCount != d || posBiasV.ElementCount != d)
            throw new ArgumentException($"rel-position attention: q {Tensor.ShapeString(q.Shape)} must be [1, T, D] with D divisible by {heads}, positions {Tensor.ShapeString(positions.Shape)} [2T−1, D], biases [H, D/H]");
        var biasU = posBiasU.ToFloatArray();
        var biasV = posBiasV.ToFloatArray();
        var o = New(1, t, d);
        float scale = 1f / MathF.Sqrt(dk);
        float* pq = Ptr(q), pk = Ptr(k), pv = Ptr(v), pp = Ptr(p), po = Ptr(o);
        int workers = Math.Clamp(Gemm.MaxThreads, 1, heads);
        void Worker(int wi)
        {
            var qu = new PinnedFloats((long)t * dk);
            var qv = new PinnedFloats((long)t * dk);
            var bd = new PinnedFloats((long)t * rows);
            var sc = new PinnedFloats((long)t * t);
            var tmp = new float[t];
            for (int hi = wi; hi < heads; hi += workers)
            {
                for (int i = 0; i < t; i++)
                {
                    var src = new ReadOnlySpan<float>(pq + (long)i * d + hi * dk, dk);
                    TensorPrimitives.Add(src, biasU.AsSpan(hi * dk, dk), qu.Row(i, dk));
                    TensorPrimitives.Add(src, biasV.AsSpan(hi * dk, dk), qv.Row(i, dk));
                }
                Gemm.SgemmNTOn(1, t, rows, dk, qv.Pointer, dk, pp + hi * dk, d, bd.Pointer, rows);
                Gemm.SgemmNTOn(1, t, t, dk, qu.Pointer, dk, pk + hi * dk, d, sc.Pointer, t);
                for (int i = 0; i < t; i++)
                {
                    var row = sc.Row(i, t);
                    TensorPrimitives.Multiply(bd.Span.Slice(i * rows + (t - 1 - i), t), scale, tmp);
                    TensorPrimitives.Multiply(row, scale, row);
                    TensorPrimitives.Add(row, tmp, row);
                    VectorMath.Softmax(row, row);
                }
                Gemm.SgemmNNOn(1, t, dk, t, sc.Pointer, t, pv + hi * dk, d, po + hi * dk, d);
            }
        }
        if (workers == 1) Worker(0);
        else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, Worker);
        GC.KeepAlive(q); GC.KeepAlive(k); GC.KeepAlive(v); GC.KeepAlive(p); // raw pointers above
        return o;
    }

    // ------------------------------------------------------------------------------------------------ prepared convs

    /// <summary>
    /// Conv1d through <see cref="ConvGemm"/> (implicit im2col, the weight packed once per weight tensor) when it applies:
    /// f32 weight, groups 1, hardware vectors. Same sums in the same order as the explicit im2col GEMM of
    /// <see cref="Conv1d"/>. Null when it does not apply.
    /// </summary>
    private Tensor? PackedConv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        if (!UsePackedConvs || groups != 1 || weight.DType != DType.F32 || weight.Rank != 3 || x.Rank != 3 || !ConvGemm.IsSupported) return null;
        int bsz = x.Shape[0], cin = x.Shape[1], t = x.Shape[2], cout = weight.Shape[0], kw = weight.Shape[2];
        if (cin != weight.Shape[1]) throw new ArgumentException($"conv1d: input channels {cin} / weight {Tensor.ShapeString(weight.Shape)} / groups 1 disagree");
        int tout = (t + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        var packed = _convPacks.GetValue(weight, w => ConvGemm.PackWeight(w.Contiguous().AsSpan<float>(), w.Shape[0], w.Shape[1] * w.Shape[2]));
        var b = BiasArray(bias, cout, "conv1d");
        x = F32(x);
        var y = New(bsz, cout, tout);
        float* px = Ptr(x), py = Ptr(y);
        fixed (float* pb = b)
            for (int bi = 0; bi < bsz; bi++)
                ConvGemm.Conv(packed, cout, cin, kw, px + (long)bi * cin * t, t, stride, padding, dilation, pb, py + (long)bi * cout * tout, tout, Gemm.MaxThreads);
        GC.KeepAlive(x);
        return y;
    }

    [ThreadStatic] private static float[]? t_cols;

    /// <summary>
    /// ConvTranspose1d as one GEMM on the channel-major input plus an overlap-add (<see cref="ConvGemm.ConvTranspose"/>,
    /// the weight packed once per weight tensor as Wᵀ [Cout·K, Cin]) when it applies: dilation 1, no output padding,
    /// hardware vectors. Same sums in the same order as <see cref="ConvTranspose1d"/>. Null when it does not apply.
    /// </summary>
    private Tensor? PackedConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation)
    {
        if (!UsePackedConvs || dilation != 1 || outputPadding != 0 || weight.Rank != 3 || x.Rank != 3 || x.Shape[1] != weight.Shape[0] || !ConvGemm.IsSupported) return null;
        int bsz = x.Shape[0], cin = weight.Shape[0], t = x.Shape[2], cout = weight.Shape[1], kw = weight.Shape[2];
        int tout = (t - 1) * stride - 2 * padding + (kw - 1) + 1;
        if (tout <= 0) throw new ArgumentException($"conv_transpose1d: output length {tout} ≤ 0 for input length {t}");
        var packed = _convTransposePacks.GetValue(weight, w => ConvGemm.PackTransposeWeight(w.ToFloatArray(), w.Shape[0], w.Shape[1], w.Shape[2]));
        var b = BiasArray(bias, cout, "conv_transpose1d");
        x = F32(x);
        var y = New(bsz, cout, tout);
        long colsLength = (long)cout * kw * t;
        if (t_cols is null || t_cols.Length < colsLength) t_cols = GC.AllocateUninitializedArray<float>(checked((int)colsLength), pinned: true);
        float* px = Ptr(x), py = Ptr(y);
        fixed (float* pb = b, pc = t_cols)
            for (int bi = 0; bi < bsz; bi++)
                ConvGemm.ConvTranspose(packed, cin, cout, kw, px + (long)bi * cin * t, t, stride, padding, pb, py + (long)bi * cout * tout, tout, pc, Gemm.MaxThreads);
        GC.KeepAlive(x);
        return y;
    }
}
