using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>
/// The decoder's fused capabilities on the device (<see cref="IBackend.SwiGlu"/>, <see cref="IBackend.AddRmsNorm"/>,
/// <see cref="IBackend.LinearGroup"/>, <see cref="IBackend.RopeAppend"/>) and the attention of a few query rows over a KV cache. A decoding step of the 7B
/// decoder was ~18 kernels per layer (~508 a token); on an H100 their launch gaps and host calls cost ~1.8 ms of a 7–9 ms
/// step beside the ~5.4 ms of weight streaming (bench/results/cuda-h100-2026-12-07/ncu-decode-bf16.txt). Each capability
/// takes its kernel only where the kernel applies (one token, bf16 or 4/8-bit weights) and otherwise runs the op-by-op
/// body of <see cref="Composite"/>, which is also what the GPU runner checks each kernel against (on the CPU backend).
/// </summary>
public sealed unsafe partial class CudaBackend
{
    /// <summary>Keys per block of <c>attn_decode</c> (their scores stay in shared memory). Small, so that a cache of a few
    /// hundred positions spreads over many blocks: the kernel is latency-bound (a block's warps take 4 keys each in one
    /// round of loads), and with 256 keys a block one call took ~70 µs on an H100, with 64 ~15 µs (Nsight Compute).</summary>
    private const int AttnChunk = 32;
    /// <summary>Most query rows per head that take <c>attn_decode</c> (a decoding step has one; prefill goes through GEMMs).</summary>
    private const int AttnFewRows = 16;
    /// <summary>One int per query row for <c>attn_decode</c>'s "last split joins" count, zero between launches (the kernel
    /// resets what it used); grown when a call has more rows.</summary>
    private Tensor? _attnCounters;

    /// <summary>
    /// softmax(q·kᵀ·scale [causal])·v for a few query rows without a scores matrix: one <c>attn_decode</c> launch over
    /// (rows, splits of <see cref="AttnChunk"/> keys); with several splits the last block of each row joins them.
    /// False (nothing launched) when the shapes or layouts do not fit the kernel.
    /// </summary>
    private bool AttendFew(Tensor q, Tensor k, Tensor v, Tensor o, float scale, bool causal)
    {
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int hkv = k.Shape[1], tk = k.Shape[2];
        const int block = 256;
        if (tq > AttnFewRows || tk == 0 || v.Shape[3] != d || d % 4 != 0 || d > block || (causal && tk < tq)) return false;
        if (!Aligned(k) || !Aligned(v)) return false;
        // at most `block` splits (the joining block holds one weight per split): long caches get longer chunks
        int chunk = Math.Max(AttnChunk, (tk + block - 1) / block + 31 & ~31);
        int rows = b * hq * tq, splits = (tk + chunk - 1) / chunk;
        Tensor? partial = splits > 1 ? NewF32([rows, splits, d + 2]) : null;
        ulong po = AddrOrZero(partial), pm = po == 0 ? 0 : po + (ulong)rows * (ulong)splits * (ulong)d * 4, pl = pm == 0 ? 0 : pm + (ulong)rows * (ulong)splits * 4;
        if (splits > 1 && (_attnCounters is null || _attnCounters.ElementCount < rows))
        {
            _attnCounters = New(DType.I32, [Math.Max(rows, 1024)]);
            Device.Zero(Addr(_attnCounters), _attnCounters.ByteCount);
        }
        uint shared = (uint)((d + chunk + block) * sizeof(float));
        Device.LaunchGrid(CudaKernels.Names.AttnDecode, (uint)rows, (uint)splits, block, shared,
            [Addr(q), Addr(k), Addr(v), Addr(o), pm, pl, po, splits > 1 ? Addr(_attnCounters!) : 0UL, hq, hkv, tq, tk, d,
             k.Strides[0], k.Strides[1], k.Strides[2], v.Strides[0], v.Strides[1], v.Strides[2], scale, causal ? 1 : 0, chunk]);
        Keep(partial);
        return true;

        // f32 rows read as float4: contiguous rows, 16-byte aligned start, every stride a multiple of four floats
        bool Aligned(Tensor t) => Mine(t) && t.DType == DType.F32 && t.Strides[3] == 1 && Addr(t) % 16 == 0
            && t.Strides[0] % 4 == 0 && t.Strides[1] % 4 == 0 && t.Strides[2] % 4 == 0;
    }

    public (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor r, Tensor weight, float eps)
    {
        Begin();
        int d = x.Shape.Length == 0 ? 1 : x.Shape[^1];
        if (!x.Shape.SequenceEqual(r.Shape) || weight.ElementCount != d)
            throw new ArgumentException($"add_rms_norm: x {Tensor.ShapeString(x.Shape)}, r {Tensor.ShapeString(r.Shape)} and weight {Tensor.ShapeString(weight.Shape)} disagree");
        var xd = Dev(x); var rd = Dev(r);
        var w = Weight(weight, WeightUse.F32);
        var sum = NewF32((int[])x.Shape.Clone());
        var y = NewF32((int[])x.Shape.Clone());
        int rows = Rows(xd, d);
        if (rows > 0) Device.LaunchGrid(CudaKernels.Names.AddRmsNorm, (uint)rows, RowBlock(d), [Addr(xd), Addr(rd), Addr(sum), Addr(w), Addr(y), d, eps]);
        Keep(xd, rd, w);
        return (sum, y);
    }

    public Tensor SwiGlu(Tensor x, LinearWeights gate, LinearWeights up)
    {
        int n = gate.OutFeatures, k = gate.InFeatures;
        if (up.OutFeatures != n || up.InFeatures != k || x.Rank < 1 || x.Shape[^1] != k || Rows(x, k) != 1) return ComposedSwiGlu();
        Begin();
        var xd = Dev(x);
        var shape = x.Shape.ToArray();
        shape[^1] = n;
        if (gate.Quantized is { } gq && up.Quantized is { } uq)
        {
            if (gq.Bits != uq.Bits || !FastQGemv(gq) || gq.GroupSize != uq.GroupSize || Addr(xd) % 16 != 0) return ComposedSwiGlu();
            var (gw, gs, gb, gp) = QuantParts(gq);
            var (uw, us, ub, up2) = QuantParts(uq);
            if (gp != up2) return ComposedSwiGlu();
            var (bg, bu) = (Bias(gate), Bias(up));
            var y = NewF32(shape);
            Device.LaunchGrid(gq.Bits == 4 ? CudaKernels.Names.QGemv4SwiGlu : CudaKernels.Names.QGemv8SwiGlu, QGemvBlocks(n, 1), 256,
                [Addr(gw), Addr(gs), Addr(gb), Addr(uw), Addr(us), Addr(ub), AddrOrZero(bg), AddrOrZero(bu), Addr(xd), Addr(y), n, k, gq.GroupSize, gp]);
            Keep(xd, gw, gs, gb, uw, us, ub, bg, bu);
            return y;
        }
        if (gate.Quantized is null && up.Quantized is null && Precision == CudaPrecision.Bf16)
        {
            var gw = Weight(gate.Weight, WeightUse.Gemm);
            var uw = Weight(up.Weight, WeightUse.Gemm);
            if (gw.DType != DType.BF16 || uw.DType != DType.BF16 || !VecGemv(k, Addr(gw), Addr(xd)) || Addr(uw) % 16 != 0) return ComposedSwiGlu();
            var (bg, bu) = (Bias(gate), Bias(up));
            var y = NewF32(shape);
            Device.LaunchGrid(CudaKernels.Names.GemvBf16SwiGlu, GemvBlocks(n, 1), 256, [Addr(gw), Addr(uw), AddrOrZero(bg), AddrOrZero(bu), Addr(xd), Addr(y), n, k]);
            Keep(xd, gw, uw, bg, bu);
            return y;
        }
        return ComposedSwiGlu();

        Tensor ComposedSwiGlu()
        {
            using var _ = Ops.Use(this);
            return Composite.SwiGlu(x, gate, up);
        }
    }

    public Tensor[] LinearGroup(Tensor x, IReadOnlyList<LinearWeights> layers)
    {
        int count = layers.Count;
        if (count is < 1 or > 3 || x.Rank < 1) return ComposedGroup();
        int k = layers[0].InFeatures;
        bool quantized = layers[0].Quantized is not null;
        for (int i = 0; i < count; i++)
        {
            var l = layers[i];
            if (l.InFeatures != k || (l.Quantized is not null) != quantized) return ComposedGroup();
            if (quantized && (l.Quantized!.Bits != layers[0].Quantized!.Bits || l.Quantized.GroupSize != layers[0].Quantized!.GroupSize)) return ComposedGroup();
        }
        if (x.Shape[^1] != k || Rows(x, k) != 1) return ComposedGroup();
        if (quantized ? !FastQGemv(layers[0].Quantized!) : Precision != CudaPrecision.Bf16) return ComposedGroup();
        Begin();
        var xd = Dev(x);
        if (Addr(xd) % 16 != 0) return ComposedGroup();
        // three segments of rows (absent ones have no rows); the kernel picks its matrix, bias and output by row
        var ys = new Tensor[count];
        var keep = new List<object?> { xd };
        ulong[] w = new ulong[3], s = new ulong[3], qb = new ulong[3], bias = new ulong[3], y = new ulong[3];
        int[] n = new int[3];
        int total = 0, packed = 0;
        for (int i = 0; i < count; i++)
        {
            var l = layers[i];
            var shape = x.Shape.ToArray();
            shape[^1] = l.OutFeatures;
            if (quantized)
            {
                var (wq, sc, bi, pk) = QuantParts(l.Quantized!);
                if (i > 0 && pk != packed) return ComposedGroup();
                packed = pk;
                (w[i], s[i], qb[i]) = (Addr(wq), Addr(sc), Addr(bi));
                keep.AddRange([wq, sc, bi]);
            }
            else
            {
                var wd = Weight(l.Weight, WeightUse.Gemm);
                if (wd.DType != DType.BF16 || !VecGemv(k, Addr(wd), Addr(xd))) return ComposedGroup();
                w[i] = Addr(wd);
                keep.Add(wd);
            }
            var b = Bias(l);
            bias[i] = AddrOrZero(b);
            keep.Add(b);
            ys[i] = NewF32(shape);
            y[i] = Addr(ys[i]);
            n[i] = l.OutFeatures;
            total += n[i];
        }
        if (quantized)
            Device.LaunchGrid(layers[0].Quantized!.Bits == 4 ? CudaKernels.Names.QGemv4 : CudaKernels.Names.QGemv8, QGemvBlocks(total, 2), 256,
                [w[0], w[1], w[2], s[0], s[1], s[2], qb[0], qb[1], qb[2], bias[0], bias[1], bias[2], y[0], y[1], y[2], n[0], n[1], n[2], Addr(xd), k, layers[0].Quantized!.GroupSize, packed]);
        else
            Device.LaunchGrid(CudaKernels.Names.GemvBf16, GemvBlocks(total, 2), 256, [w[0], w[1], w[2], bias[0], bias[1], bias[2], y[0], y[1], y[2], n[0], n[1], n[2], Addr(xd), k]);
        Keep(keep);
        return ys;

        Tensor[] ComposedGroup()
        {
            using var _ = Ops.Use(this);
            return Composite.LinearGroup(x, layers);
        }
    }

    public Tensor RopeAppend(Tensor q, Tensor k, Tensor v, int heads, int start, float theta, Tensor kCache, Tensor vCache)
    {
        if (q.Rank != 3 || k.Rank != 3 || v.Rank != 3 || kCache.Rank != 4 || !kCache.Shape.SequenceEqual(vCache.Shape) || heads <= 0)
            throw new ArgumentException($"rope_append: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} must be [1, n, heads·hd], caches {Tensor.ShapeString(kCache.Shape)} / {Tensor.ShapeString(vCache.Shape)} [1, Hkv, capacity, hd]");
        int n = q.Shape[1], hkv = kCache.Shape[1], hd = kCache.Shape[3];
        if (q.Shape[0] != 1 || q.Shape[2] != heads * hd || !k.Shape.SequenceEqual(v.Shape) || k.Shape[1] != n || k.Shape[2] != hkv * hd
            || kCache.Shape[0] != 1 || hd % 2 != 0 || start < 0 || start + n > kCache.Shape[2])
            throw new ArgumentException($"rope_append: q {Tensor.ShapeString(q.Shape)} ({heads} heads), k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} and cache {Tensor.ShapeString(kCache.Shape)} at {start} disagree");
        if (!CacheRows(kCache) || !CacheRows(vCache))
        {
            using var _ = Ops.Use(this);
            return Composite.RopeAppend(q, k, v, heads, start, theta, kCache, vCache);
        }
        Begin();
        var qd = Dev(q); var kd = Dev(k); var vd = Dev(v);
        var (cos, sin) = RopeTables(hd, theta, start + n);
        var qo = NewF32([heads, n, hd]);
        long work = (long)n * (heads + 2 * hkv) * hd;
        Device.Launch(CudaKernels.Names.RopeAppend, work, [Addr(qd), Addr(kd), Addr(vd), Addr(qo), Addr(kCache), Addr(vCache), Addr(cos), Addr(sin),
            n, heads, hkv, hd, start, kCache.Strides[1], kCache.Strides[2], vCache.Strides[1], vCache.Strides[2]]);
        Keep(qd, kd, vd, cos, sin, kCache, vCache);
        return qo;

        bool CacheRows(Tensor c) => Mine(c) && c.DType == DType.F32 && c.Strides[3] == 1;
    }

    private Tensor? Bias(LinearWeights l)
    {
        if (l.Bias is null) return null;
        if (l.Bias.ElementCount != l.OutFeatures) throw new ArgumentException($"linear: bias has {l.Bias.ElementCount} elements, expected {l.OutFeatures}");
        return Weight(l.Bias, WeightUse.F32);
    }
}
