using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>A pinned float32 array with its address, for kernels that take raw pointers (lives as long as the object).</summary>
internal sealed unsafe class PinnedFloats
{
    public PinnedFloats(long length)
    {
        Array = GC.AllocateArray<float>(checked((int)length), pinned: true);
        Pointer = (float*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(Array));
    }

    public PinnedFloats(ReadOnlySpan<float> values) : this(values.Length) => values.CopyTo(Array);

    public float[] Array { get; }
    public float* Pointer { get; }
    public int Length => Array.Length;
    public Span<float> Span => Array;
    public Span<float> Row(int row, int width) => Array.AsSpan(row * width, width);

    /// <summary>A small parameter vector (bias, norm affine) as a pinned f32 copy; null for none.</summary>
    public static PinnedFloats? Of(Tensor? t) => t is null ? null : new PinnedFloats(t.ToFloatArray());
}

/// <summary>
/// Activation buffers of one fused DiT block over B·T rows (B = 2 for CFG). The backend keeps the last one and reuses it
/// for every block of every Euler step, so the steady state allocates only the block's output.
/// </summary>
internal sealed class DitScratch
{
    public DitScratch(int batch, int frames, int d, int inner, int u, int kernel, int threads)
    {
        Batch = batch; Frames = frames; Hidden = d; Inner = inner; MlpHidden = u; Kernel = kernel;
        Threads = Math.Max(1, threads);
        int n = batch * frames;
        H = new PinnedFloats((long)n * d);
        A = new PinnedFloats((long)n * d);
        Y = new PinnedFloats((long)n * d);
        Mid = new PinnedFloats((long)n * d);
        Qkv = new PinnedFloats((long)n * 3 * inner);
        Heads = new PinnedFloats((long)n * 3 * inner);
        O = new PinnedFloats((long)n * inner);
        Cols = new PinnedFloats((long)n * kernel * d);
        HiddenU = new PinnedFloats((long)n * u);
        Gelu = new PinnedFloats((long)n * u);
        Scores = Enumerable.Range(0, Threads).Select(_ => new PinnedFloats((long)frames * frames)).ToArray();
    }

    public int Batch { get; }
    public int Frames { get; }
    public int Hidden { get; }
    public int Inner { get; }
    public int MlpHidden { get; }
    public int Kernel { get; }
    public int Threads { get; }
    public bool Fits(int batch, int frames, int d, int inner, int u, int kernel, int threads) =>
        Batch == batch && Frames == frames && Hidden == d && Inner == inner && MlpHidden == u && Kernel == kernel && Threads == Math.Max(1, threads);
    /// <summary>The residual stream h [B·T, D].</summary>
    public PinnedFloats H { get; }
    /// <summary>Normalised and modulated input of the current branch [B·T, D].</summary>
    public PinnedFloats A { get; }
    /// <summary>Output of the current branch before its gate [B·T, D].</summary>
    public PinnedFloats Y { get; }
    /// <summary>Conv block's first conv output [B·T, D].</summary>
    public PinnedFloats Mid { get; }
    /// <summary>q | k | v per row [B·T, 3·H·d].</summary>
    public PinnedFloats Qkv { get; }
    /// <summary>q, k, v head-major [3][B, H, T, d].</summary>
    public PinnedFloats Heads { get; }
    public PinnedFloats O { get; }
    public PinnedFloats Cols { get; }
    public PinnedFloats HiddenU { get; }
    public PinnedFloats Gelu { get; }
    /// <summary>One [T, T] score matrix per worker.</summary>
    public PinnedFloats[] Scores { get; }
}

/// <summary>
/// The CPU backend's fused <c>DiTBlock</c> (<see cref="IBackend.DitBlock"/>): q, k, v as three GEMMs writing side by side
/// into one row buffer (weights read in place, f32 or bf16), attention for all (row, head) pairs split across the workers,
/// the causal convs as GEMMs over im2col rows, LayerNorm + modulate and the gated residuals as single SIMD row passes, all
/// on <see cref="DitScratch"/> buffers. Same operations and rounding order as <see cref="Composite.DitBlock"/> except the
/// GEMM / moment summation order (f32 tier). Prepared once per <see cref="DitBlockWeights"/>: the small parameter vectors
/// as pinned copies and the conv weights re-laid [D, K·D] (column k·D + i = W[:, i, k]) for the time-major im2col.
/// </summary>
internal sealed unsafe class DitBlockKernel
{
    private readonly DitBlockWeights _w;
    private readonly int _d, _heads, _headDim, _inner, _u, _kernel;
    private readonly PinnedFloats _qNormW, _qNormB, _kNormW, _kNormB, _convNormW, _convNormB, _conv1Bias, _conv2Bias;
    private readonly PinnedFloats? _qBias, _kBias, _vBias, _projBias, _fc1Bias, _fc2Bias;
    private readonly PinnedFloats _conv1, _conv2;

    public DitBlockKernel(DitBlockWeights w)
    {
        _w = w;
        _d = w.Hidden; _heads = w.Heads; _headDim = w.HeadDim; _inner = w.Inner; _u = w.MlpHidden; _kernel = w.Conv1.Shape[2];
        foreach (var (name, t, shape) in new[]
                 {
                     ("to_q", w.ToQ, new[] { _inner, _d }), ("to_k", w.ToK, new[] { _inner, _d }), ("to_v", w.ToV, new[] { _inner, _d }),
                     ("proj", w.Proj, new[] { _d, _inner }), ("fc1", w.Fc1, new[] { _u, _d }), ("fc2", w.Fc2, new[] { _d, _u }),
                     ("conv1", w.Conv1, new[] { _d, _d, _kernel }), ("conv2", w.Conv2, new[] { _d, _d, _kernel }),
                 })
            if (!t.Shape.SequenceEqual(shape))
                throw new ArgumentException($"dit block: {name} weight {Tensor.ShapeString(t.Shape)}, expected {Tensor.ShapeString(shape)}");
        _qBias = PinnedFloats.Of(w.ToQBias); _kBias = PinnedFloats.Of(w.ToKBias); _vBias = PinnedFloats.Of(w.ToVBias);
        _qNormW = PinnedFloats.Of(w.QNormWeight)!; _qNormB = PinnedFloats.Of(w.QNormBias)!;
        _kNormW = PinnedFloats.Of(w.KNormWeight)!; _kNormB = PinnedFloats.Of(w.KNormBias)!;
        _convNormW = PinnedFloats.Of(w.ConvNormWeight)!; _convNormB = PinnedFloats.Of(w.ConvNormBias)!;
        _conv1Bias = PinnedFloats.Of(w.Conv1Bias)!; _conv2Bias = PinnedFloats.Of(w.Conv2Bias)!;
        _projBias = PinnedFloats.Of(w.ProjBias); _fc1Bias = PinnedFloats.Of(w.Fc1Bias); _fc2Bias = PinnedFloats.Of(w.Fc2Bias);
        _conv1 = Relay(w.Conv1);
        _conv2 = Relay(w.Conv2);
    }

    /// <summary>Conv weight [Cout, Cin, K] → [Cout, K·Cin] (column k·Cin + i = W[:, i, k]): one GEMM row per output frame.</summary>
    private static PinnedFloats Relay(Tensor weight)
    {
        var src = weight.ToFloatArray();
        int cout = weight.Shape[0], cin = weight.Shape[1], k = weight.Shape[2];
        var dst = new PinnedFloats(src.Length);
        for (int o = 0; o < cout; o++)
            for (int i = 0; i < cin; i++)
                for (int j = 0; j < k; j++)
                    dst.Array[((long)o * k + j) * cin + i] = src[((long)o * cin + i) * k + j];
        return dst;
    }

    public DitScratch NewScratch(int batch, int frames, int threads) => new(batch, frames, _d, _inner, _u, _kernel, threads);
    public bool Fits(DitScratch s, int batch, int frames, int threads) => s.Fits(batch, frames, _d, _inner, _u, _kernel, threads);

    private static float* P(PinnedFloats? p) => p is null ? null : p.Pointer;

    /// <summary>C = A·Wᵀ (+ bias) with W a contiguous PyTorch weight [out, in] (f32 or bf16) read in place.</summary>
    private static void Linear(float* a, int m, int lda, Tensor w, float* bias, float* c, int ldc)
    {
        int n = w.Shape[0], k = w.Shape[1];
        byte* p = w.Storage.Pointer + w.Offset * w.DType.SizeOf();
        switch (w.DType)
        {
            case DType.F32: Gemm.SgemmNT(m, n, k, a, lda, (float*)p, k, c, ldc, bias); break;
            case DType.BF16: Gemm.GemmBf16NT(m, n, k, a, lda, (ushort*)p, k, c, ldc, bias); break;
            default: throw new ArgumentException($"dit block: weight dtype {w.DType.ShortName()} not supported (f32 or bf16)");
        }
        GC.KeepAlive(w); // the raw pointer above does not keep a mapped storage alive
    }

    /// <summary>
    /// im2col of the causal stride-1 conv over time-major rows: dst[b·T + t, j·C + i] = src[b·T + t + j − (K−1), i] inside
    /// the batch row's T frames, zero before it.
    /// </summary>
    private static void Im2Col(PinnedFloats src, PinnedFloats dst, int batch, int frames, int channels, int kernel, int threads)
    {
        int padLeft = kernel - 1;
        RowKernels.For(batch * frames, threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int b = r / frames, t = r % frames;
                var row = dst.Array.AsSpan(r * kernel * channels, kernel * channels);
                for (int j = 0; j < kernel; j++)
                {
                    int ti = t + j - padLeft;
                    var part = row.Slice(j * channels, channels);
                    if ((uint)ti < (uint)frames) src.Array.AsSpan((b * frames + ti) * channels, channels).CopyTo(part);
                    else part.Clear();
                }
            }
        });
    }

    /// <summary>Updates s.H in place given the block's modulation m [B, 9D] (shift/scale/gate × attn, mlp, conv).</summary>
    public void Forward(DitScratch s, float[] m)
    {
        int b = s.Batch, t = s.Frames, n = b * t, d = _d, th = s.Threads, qkv = 3 * _inner;
        var onePlus = new float[b * 9 * d]; // 1 + scale at the scale offsets (1, 4, 7)·D of each row, as torch forms it
        for (int bi = 0; bi < b; bi++)
            foreach (int off in new[] { 1, 4, 7 })
                for (int i = 0; i < d; i++) onePlus[bi * 9 * d + off * d + i] = m[bi * 9 * d + off * d + i] + 1f;

        // attention branch: q | k | v side by side in one row buffer, each GEMM reading its weight in place
        NormModulate(s, m, onePlus, 0, 1);
        Linear(s.A.Pointer, n, d, _w.ToQ, P(_qBias), s.Qkv.Pointer, qkv);
        Linear(s.A.Pointer, n, d, _w.ToK, P(_kBias), s.Qkv.Pointer + _inner, qkv);
        Linear(s.A.Pointer, n, d, _w.ToV, P(_vBias), s.Qkv.Pointer + 2 * _inner, qkv);
        SplitHeads(s);
        Attention(s);
        Linear(s.O.Pointer, n, _inner, _w.Proj, P(_projBias), s.Y.Pointer, d);
        Gate(s, m, 2);

        // conv branch: conv → LayerNorm(affine) → Mish → conv, each conv one GEMM over im2col rows
        NormModulate(s, m, onePlus, 6, 7);
        Im2Col(s.A, s.Cols, b, t, d, _kernel, th);
        Gemm.SgemmNT(n, d, _kernel * d, s.Cols.Pointer, _kernel * d, _conv1.Pointer, _kernel * d, s.Mid.Pointer, d, _conv1Bias.Pointer);
        RowKernels.For(n, th, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var row = s.Mid.Row(r, d);
                RowKernels.LayerNorm(row, row, 1e-5f, _convNormW.Span, _convNormB.Span, default, default);
                RowKernels.Mish(row, row);
            }
        });
        Im2Col(s.Mid, s.Cols, b, t, d, _kernel, th);
        Gemm.SgemmNT(n, d, _kernel * d, s.Cols.Pointer, _kernel * d, _conv2.Pointer, _kernel * d, s.Y.Pointer, d, _conv2Bias.Pointer);
        Gate(s, m, 8);

        // MLP branch
        NormModulate(s, m, onePlus, 3, 4);
        Linear(s.A.Pointer, n, d, _w.Fc1, P(_fc1Bias), s.HiddenU.Pointer, _u);
        RowKernels.For(n, th, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) VectorMath.GeluTanh(s.HiddenU.Row(r, _u), s.Gelu.Row(r, _u));
        });
        Linear(s.Gelu.Pointer, n, _u, _w.Fc2, P(_fc2Bias), s.Y.Pointer, d);
        Gate(s, m, 5);
    }

    /// <summary>s.A ← modulate(LayerNorm(s.H), shift, scale) with norm eps 1e−6 and no affine, per batch row's chunks.</summary>
    private void NormModulate(DitScratch s, float[] m, float[] onePlus, int shiftChunk, int scaleChunk)
    {
        int t = s.Frames, d = _d, w = 9 * d;
        RowKernels.For(s.Batch * t, s.Threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                int bi = r / t;
                RowKernels.LayerNorm(s.H.Row(r, d), s.A.Row(r, d), 1e-6f, default, default,
                    onePlus.AsSpan(bi * w + scaleChunk * d, d), m.AsSpan(bi * w + shiftChunk * d, d));
            }
        });
    }

    /// <summary>s.H ← s.H + gate·s.Y with the gate chunk of each batch row.</summary>
    private void Gate(DitScratch s, float[] m, int gateChunk)
    {
        int t = s.Frames, d = _d, w = 9 * d;
        RowKernels.For(s.Batch * t, s.Threads, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
                RowKernels.GatedAdd(s.H.Row(r, d), s.Y.Row(r, d), m.AsSpan((r / t) * w + gateChunk * d, d));
        });
    }

    /// <summary>q_norm / k_norm per head from the qkv rows into head-major q, k, v [B, H, T, d].</summary>
    private void SplitHeads(DitScratch s)
    {
        int t = s.Frames, h = _heads, hd = _headDim, inner = _inner, part = s.Batch * h * t * hd;
        RowKernels.For(s.Batch * t, s.Threads, (r0, r1) =>
        {
            var heads = s.Heads.Span;
            for (int r = r0; r < r1; r++)
            {
                int bi = r / t, ti = r % t;
                var src = s.Qkv.Row(r, 3 * inner);
                for (int hi = 0; hi < h; hi++)
                {
                    int dst = ((bi * h + hi) * t + ti) * hd;
                    RowKernels.LayerNorm(src.Slice(hi * hd, hd), heads.Slice(dst, hd), 1e-5f, _qNormW.Span, _qNormB.Span, default, default);
                    RowKernels.LayerNorm(src.Slice(inner + hi * hd, hd), heads.Slice(part + dst, hd), 1e-5f, _kNormW.Span, _kNormB.Span, default, default);
                    src.Slice(2 * inner + hi * hd, hd).CopyTo(heads.Slice(2 * part + dst, hd));
                }
            }
        });
    }

    /// <summary>softmax(q·kᵀ/√d)·v for every (batch row, head), one pair per worker at a time, written into s.O [B·T, H·d].</summary>
    private void Attention(DitScratch s)
    {
        int t = s.Frames, h = _heads, hd = _headDim, inner = _inner, jobs = s.Batch * h, part = s.Batch * h * t * hd;
        int workers = Math.Min(s.Threads, jobs);
        float scale = 1f / MathF.Sqrt(hd);
        float* q = s.Heads.Pointer, k = q + part, v = k + part, o = s.O.Pointer;
        void Worker(int wi)
        {
            var scores = s.Scores[wi];
            float* sc = scores.Pointer;
            for (int j = wi; j < jobs; j += workers)
            {
                int bi = j / h, hi = j % h;
                long off = (long)j * t * hd;
                Gemm.SgemmNTOn(1, t, t, hd, q + off, hd, k + off, hd, sc, t);
                for (int i = 0; i < t; i++)
                {
                    var row = scores.Row(i, t);
                    System.Numerics.Tensors.TensorPrimitives.Multiply(row, scale, row);
                    VectorMath.Softmax(row, row);
                }
                Gemm.SgemmNNOn(1, t, hd, t, sc, t, v + off, hd, o + (long)bi * t * inner + hi * hd, inner);
            }
        }
        if (workers == 1) Worker(0);
        else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, Worker);
    }
}
