using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

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
}

/// <summary>Linear layers of the fused paths: C = A·Wᵀ (+ bias) with W a PyTorch weight [out, in] (f32 or bf16) read in place.</summary>
internal static unsafe class FlowGemm
{
    public static void Linear(float* a, int m, int lda, Tensor w, float* bias, float* c, int ldc)
    {
        if (w.Rank != 2 || !w.IsContiguous) throw new ArgumentException($"fused linear: weight {w} must be a contiguous [out, in] matrix");
        int n = w.Shape[0], k = w.Shape[1];
        byte* p = w.Storage.Pointer + w.Offset * w.DType.SizeOf();
        switch (w.DType)
        {
            case DType.F32: Gemm.SgemmNT(m, n, k, a, lda, (float*)p, k, c, ldc, bias); break;
            case DType.BF16: Gemm.GemmBf16NT(m, n, k, a, lda, (ushort*)p, k, c, ldc, bias); break;
            default: throw new ArgumentException($"fused linear: weight dtype {w.DType.ShortName()} not supported (f32 or bf16)");
        }
        GC.KeepAlive(w); // the raw pointer above does not keep a mapped storage alive
    }

    /// <summary>A bias vector as a pinned f32 copy (null for none).</summary>
    public static PinnedFloats? Bias(Tensor? bias) => bias is null ? null : new PinnedFloats(bias.ToFloatArray());

    /// <summary>
    /// im2col of a stride-1 conv over time-major rows: dst[b·T + t, j·C + i] = src[b·T + t + j − padLeft, i] inside the
    /// batch row's T frames, zero outside (the causal left padding). Output length equals T (padLeft + padRight = K − 1).
    /// </summary>
    public static void Im2Col(PinnedFloats src, PinnedFloats dst, int batch, int frames, int channels, int kernel, int padLeft, int threads)
    {
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
}

/// <summary>
/// Activation buffers of one fused DiT pass over B·T rows (B = 2 for CFG), allocated once per <see cref="Flow.Generate"/>
/// and reused by every block of every Euler step, so the steady state allocates only the small per-step tensors.
/// </summary>
internal sealed class DitScratch
{
    public DitScratch(DitConfig c, int batch, int frames, int threads)
    {
        Batch = batch;
        Frames = frames;
        Threads = Math.Max(1, threads);
        int n = batch * frames, d = c.HiddenSize, inner = c.InnerDim, u = c.MlpHidden;
        H = new PinnedFloats((long)n * d);
        A = new PinnedFloats((long)n * d);
        Y = new PinnedFloats((long)n * d);
        Mid = new PinnedFloats((long)n * d);
        Qkv = new PinnedFloats((long)n * 3 * inner);
        Heads = new PinnedFloats((long)n * 3 * inner);
        O = new PinnedFloats((long)n * inner);
        Cols = new PinnedFloats((long)n * 3 * d);
        Hidden = new PinnedFloats((long)n * u);
        Gelu = new PinnedFloats((long)n * u);
        Out = new PinnedFloats((long)n * c.OutChannels);
        Scores = Enumerable.Range(0, Threads).Select(_ => new PinnedFloats((long)frames * frames)).ToArray();
    }

    public int Batch { get; }
    public int Frames { get; }
    public int Threads { get; }
    /// <summary>The residual stream h [B·T, D].</summary>
    public PinnedFloats H { get; }
    /// <summary>Normalised and modulated input of the current branch [B·T, D].</summary>
    public PinnedFloats A { get; }
    /// <summary>Output of the current branch before its gate [B·T, D].</summary>
    public PinnedFloats Y { get; }
    /// <summary>Conv block's first conv output [B·T, D].</summary>
    public PinnedFloats Mid { get; }
    public PinnedFloats Qkv { get; }
    /// <summary>q, k, v head-major [3][B, H, T, d].</summary>
    public PinnedFloats Heads { get; }
    public PinnedFloats O { get; }
    public PinnedFloats Cols { get; }
    public PinnedFloats Hidden { get; }
    public PinnedFloats Gelu { get; }
    public PinnedFloats Out { get; }
    /// <summary>One [T, T] score matrix per worker.</summary>
    public PinnedFloats[] Scores { get; }
}

/// <summary>
/// The fused form of one <see cref="DitBlock"/>: q/k/v as one GEMM over weights concatenated at load, attention for all
/// (row, head) pairs split across the workers, the causal convs as GEMMs over im2col rows, LayerNorm + modulate and the
/// gated residuals as single SIMD row passes, all on <see cref="DitScratch"/> buffers. Same operations and rounding
/// order as the op-by-op block except GEMM/moment summation order (f32 tier).
/// </summary>
internal sealed unsafe class FusedDitBlock
{
    private readonly int _d, _heads, _headDim, _inner, _u;
    private readonly PinnedFloats _qkvWeight, _qkvBias;
    private readonly PinnedFloats _qNormW, _qNormB, _kNormW, _kNormB, _convNormW, _convNormB;
    private readonly PinnedFloats? _projBias, _fc1Bias, _fc2Bias, _conv1Bias, _conv2Bias;
    private readonly DitBlock _block;

    public FusedDitBlock(Weights w, string key, DitConfig c, DitBlock block)
    {
        _block = block;
        _d = c.HiddenSize; _heads = c.NumHeads; _headDim = c.HeadDim; _inner = c.InnerDim; _u = c.MlpHidden;
        var a = block.Attn;
        var qkvW = new PinnedFloats((long)3 * _inner * _d);
        var qkvB = new PinnedFloats(3 * _inner);
        int i = 0;
        foreach (var lin in new[] { a.ToQ, a.ToK, a.ToV })
        {
            lin.Weight.ToFloatArray().CopyTo(qkvW.Span.Slice(i * _inner * _d, _inner * _d));
            lin.Bias!.ToFloatArray().CopyTo(qkvB.Span.Slice(i * _inner, _inner));
            i++;
        }
        _qkvWeight = qkvW;
        _qkvBias = qkvB;
        PinnedFloats Get(string k, int n) => new(w.Get(k, n).ToFloatArray());
        _qNormW = Get(key + ".attn.q_norm.weight", _headDim); _qNormB = Get(key + ".attn.q_norm.bias", _headDim);
        _kNormW = Get(key + ".attn.k_norm.weight", _headDim); _kNormB = Get(key + ".attn.k_norm.bias", _headDim);
        _convNormW = Get(key + ".conv.block.3.weight", _d); _convNormB = Get(key + ".conv.block.3.bias", _d);
        _projBias = FlowGemm.Bias(a.Proj.Bias);
        _fc1Bias = FlowGemm.Bias(block.MlpFc1.Bias);
        _fc2Bias = FlowGemm.Bias(block.MlpFc2.Bias);
        _conv1Bias = new PinnedFloats(block.Conv.Conv1.Bias.ToFloatArray());
        _conv2Bias = new PinnedFloats(block.Conv.Conv2.Bias.ToFloatArray());
        foreach (var conv in new[] { block.Conv.Conv1, block.Conv.Conv2 })
            if (conv.PadLeft + conv.PadRight != conv.Kernel - 1 || conv.InChannels != _d || conv.OutChannels != _d)
                throw new ArgumentException($"{conv.Path}: the fused DiT expects a length-preserving [{_d}, {_d}, K] conv");
    }

    private static float* P(PinnedFloats? p) => p is null ? null : p.Pointer;

    /// <summary>Updates s.H in place given the block's modulation m [B, 9D] (shift/scale/gate × attn, mlp, conv).</summary>
    public void Forward(DitScratch s, float[] m)
    {
        int b = s.Batch, t = s.Frames, n = b * t, d = _d, th = s.Threads;
        var onePlus = new float[b * 9 * d]; // 1 + scale at the scale offsets (1, 4, 7)·D of each row, as torch forms it
        for (int bi = 0; bi < b; bi++)
            foreach (int off in new[] { 1, 4, 7 })
                for (int i = 0; i < d; i++) onePlus[bi * 9 * d + off * d + i] = m[bi * 9 * d + off * d + i] + 1f;

        // attention branch
        NormModulate(s, m, onePlus, 0, 1);
        Gemm.SgemmNT(n, 3 * _inner, d, s.A.Pointer, d, _qkvWeight.Pointer, d, s.Qkv.Pointer, 3 * _inner, _qkvBias.Pointer);
        SplitHeads(s);
        Attention(s);
        FlowGemm.Linear(s.O.Pointer, n, _inner, _block.Attn.Proj.Weight, P(_projBias), s.Y.Pointer, d);
        Gate(s, m, 2);

        // conv branch: conv → LayerNorm(affine) → Mish → conv, each conv one GEMM over im2col rows
        NormModulate(s, m, onePlus, 6, 7);
        var c1 = _block.Conv.Conv1;
        FlowGemm.Im2Col(s.A, s.Cols, b, t, d, c1.Kernel, c1.PadLeft, th);
        FlowGemm.Linear(s.Cols.Pointer, n, c1.Kernel * d, c1.PackedWeight, _conv1Bias!.Pointer, s.Mid.Pointer, d);
        RowKernels.For(n, th, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++)
            {
                var row = s.Mid.Row(r, d);
                RowKernels.LayerNorm(row, row, 1e-5f, _convNormW.Span, _convNormB.Span, default, default);
                RowKernels.Mish(row, row);
            }
        });
        var c2 = _block.Conv.Conv2;
        FlowGemm.Im2Col(s.Mid, s.Cols, b, t, d, c2.Kernel, c2.PadLeft, th);
        FlowGemm.Linear(s.Cols.Pointer, n, c2.Kernel * d, c2.PackedWeight, _conv2Bias!.Pointer, s.Y.Pointer, d);
        Gate(s, m, 8);

        // MLP branch
        NormModulate(s, m, onePlus, 3, 4);
        FlowGemm.Linear(s.A.Pointer, n, d, _block.MlpFc1.Weight, P(_fc1Bias), s.Hidden.Pointer, _u);
        RowKernels.For(n, th, (r0, r1) =>
        {
            for (int r = r0; r < r1; r++) VectorMath.GeluTanh(s.Hidden.Row(r, _u), s.Gelu.Row(r, _u));
        });
        FlowGemm.Linear(s.Gelu.Pointer, n, _u, _block.MlpFc2.Weight, P(_fc2Bias), s.Y.Pointer, d);
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

    /// <summary>q_norm / k_norm per head from the fused qkv rows into head-major q, k, v [B, H, T, d].</summary>
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
