using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>Instruction paths of the quantized kernels (the best one the machine has is used unless a test forces one).</summary>
internal enum QuantPath { Scalar, Portable, Avx2, Avx512 }

/// <summary>
/// Products with MLX affine-quantized weights (<see cref="QuantizedWeight"/>), the CPU side of MLX's
/// <c>QuantizedMatmul</c> (transpose=True). Decoding (m ≤ 4 activation rows) is memory-bound: the caller and the
/// persistent <see cref="GemvTeam"/> workers claim small chunks of packed rows, stream each row once, widen 4-/8-bit codes
/// in registers (AVX-512: 64 codes per step, four per 32-bit lane, x permuted once per call to match), and apply the group's scale and bias per
/// group: y = Σ_g scale_g·Σ_{i∈g} x_i·q_i + bias_g·Σ_{i∈g} x_i (the x group sums are computed once per call); the
/// AVX-512 4-bit kernel instead looks each code up in a 16-entry table of the group's dequantised values. The x86
/// kernels prefetch 4 KB ahead; with one x row (group size 64, AVX-512) a thread walks its rows as two streams
/// (<see cref="GemvRangeTwoStreams"/>); for 2–4 rows (batched decoding) the AVX-512 kernels unpack each code once for all rows,
/// the x rows interleaved per 64 elements (<see cref="Interleaved"/>).
/// Prefill (m &gt; 4) dequantises tiles of rows into a small f32 panel and runs the packed f32 GEMM on it.
/// Other bit widths (2, 3, 5, 6) take the panel route for every m: correct, not tuned.
/// </summary>
internal static unsafe class QuantGemm
{
    /// <summary>Test hook: force this thread's calls onto one path (the choice is made on the calling thread and passed to workers).</summary>
    [ThreadStatic] private static QuantPath? _force;

    internal static QuantPath? ForcePath { get => _force; set => _force = value; }

    /// <summary>The best path of this machine (honours DOTNET_EnableAVX2=0 / DOTNET_EnableAVX512=0 through IsSupported).</summary>
    internal static QuantPath BestPath =>
        Avx512F.IsSupported && Avx512BW.IsSupported ? QuantPath.Avx512
        : Avx2.IsSupported && Fma.IsSupported ? QuantPath.Avx2
        : Vector128.IsHardwareAccelerated ? QuantPath.Portable : QuantPath.Scalar;

    internal static QuantPath CurrentPath
    {
        get
        {
            var best = BestPath;
            if (_force is not { } f) return best;
            if (f > best) throw new InvalidOperationException($"quantized kernels: path {f} forced, but this machine only has {best}");
            return f;
        }
    }

    private const long ParallelThreshold = 1L << 16;
    private const int MaxGemvRows = 4;

    /// <summary>C[m, n] = A[m, k] · dequant(W)ᵀ (+ bias), W [n, k] quantized; A and C row-major with strides.</summary>
    public static void Run(int m, float* a, int lda, QuantizedWeight w, float* bias, float* c, int ldc, int maxThreads)
    {
        int n = w.OutFeatures, k = w.InFeatures;
        if (m == 0 || n == 0) return;
        var path = CurrentPath;
        var rows = new RowSource(w);
        try
        {
            if (m <= MaxGemvRows && (w.Bits is 4 or 8)) Gemv(path, m, a, lda, rows, bias, c, ldc, maxThreads);
            else PanelGemm(path, m, a, lda, rows, bias, c, ldc, maxThreads);
        }
        finally
        {
            GC.KeepAlive(w);
        }
    }

    // ----------------------------------------------------------------------------------------------- shared state

    /// <summary>Raw pointers into the three tensors of a quantized matrix, with the scale/bias dtype.</summary>
    internal readonly struct RowSource(QuantizedWeight w)
    {
        public readonly byte* Packed = w.Weight.Storage.Pointer + w.Weight.Offset * 4;
        public readonly byte* Scales = w.Scales.Storage.Pointer + w.Scales.Offset * w.Scales.DType.SizeOf();
        public readonly byte* Biases = w.Biases.Storage.Pointer + w.Biases.Offset * w.Biases.DType.SizeOf();
        public readonly DType ScaleType = w.Scales.DType;
        public readonly int Bits = w.Bits, GroupSize = w.GroupSize, K = w.InFeatures, N = w.OutFeatures, Groups = w.Groups;
        public readonly int RowBytes = w.WordsPerRow * 4;

        /// <summary>Scales and biases of row j widened to f32 (groups each).</summary>
        public void ScalesOf(int j, float* s, float* b)
        {
            Widen(Scales, ScaleType, (long)j * Groups, Groups, s);
            Widen(Biases, ScaleType, (long)j * Groups, Groups, b);
        }

        /// <summary>bf16 → f32 sixteen (AVX-512) or eight at a time (u16 → u32 widening, shifted into the high half):
        /// this runs for both rows of every pair of the decode GEMV, so a scalar loop here cost ~10% of an int4 row's
        /// time, and the Vector128 loop still ~3% of a k = 3584 row against the 16-wide one (weights in cache).</summary>
        private static void WidenBf16(ushort* src, int count, float* dst)
        {
            int i = 0;
            if (Avx512F.IsSupported)
                for (; i + 16 <= count; i += 16)
                    Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(src + i)), 16).AsSingle().Store(dst + i);
            if (Vector128.IsHardwareAccelerated)
                for (; i + 8 <= count; i += 8)
                {
                    var (lo, hi) = Vector128.Widen(Vector128.Load(src + i));
                    Vector128.ShiftLeft(lo, 16).AsSingle().Store(dst + i);
                    Vector128.ShiftLeft(hi, 16).AsSingle().Store(dst + i + 4);
                }
            for (; i < count; i++) dst[i] = BFloat16.ToSingle(src[i]);
        }

        private static void Widen(byte* p, DType t, long start, int count, float* dst)
        {
            switch (t)
            {
                case DType.F32: new ReadOnlySpan<float>((float*)p + start, count).CopyTo(new Span<float>(dst, count)); break;
                case DType.BF16: WidenBf16((ushort*)p + start, count, dst); break;
                default:
                    for (int i = 0; i < count; i++) dst[i] = Float16.ToSingle(((ushort*)p)[start + i]);
                    break;
            }
        }
    }

    // ----------------------------------------------------------------------------------------------- decode (GEMV)

    private static void Gemv(QuantPath path, int m, float* a, int lda, RowSource w, float* bias, float* c, int ldc, int maxThreads)
    {
        int k = w.K, groups = w.Groups, gs = w.GroupSize;
        // x rows in the order the path's unpacking produces codes (a permutation inside each block), and their group
        // sums, in this thread's reusable pinned scratch (a decoding step makes ~200 of these calls)
        bool interleaved = Interleaved(path, m, gs);
        int xRows = interleaved ? MaxGemvRows : m;
        float* xp = Scratch((long)xRows * k + m * groups);
        float* sp = xp + (long)xRows * k;
        for (int r = 0; r < m; r++)
        {
            var row = new ReadOnlySpan<float>(a + (long)r * lda, k);
            if (interleaved) PermuteQuad(row, xp + r * 64, MaxGemvRows * 64);
            else PermuteX(path, w.Bits, gs, row, new Span<float>(xp + (long)r * k, k));
            if (!BiasInDot(path, w.Bits))
                for (int g = 0; g < groups; g++) sp[r * groups + g] = System.Numerics.Tensors.TensorPrimitives.Sum(row.Slice(g * gs, gs));
        }
        // rows past m (2 or 3 x rows) are computed and dropped: they take row 0's values, never stale scratch (a
        // subnormal or NaN there would only cost time, but finite data keeps the FMAs at full speed)
        for (int r = m; interleaved && r < MaxGemvRows; r++) PermuteQuad(new ReadOnlySpan<float>(a, k), xp + r * 64, MaxGemvRows * 64);
        int n = w.N;
        long bytes = (long)n * w.RowBytes;
        int threads = bytes < ParallelThreshold ? 1 : Math.Max(1, maxThreads);
        if (threads <= 1) { GemvRange(path, m, xp, sp, w, bias, c, ldc, 0, n); return; }
        // Many small chunks claimed dynamically (GemvTeam): a worker that starts late takes fewer chunks instead of
        // leaving its whole half to be done after the caller's. Chunks hold whole row tiles, and every row is computed
        // alone, so the result does not depend on the split.
        int unit = k > ChunkElementsFor(m, gs) && !(m == 1 && path == QuantPath.Avx512 && gs == 64) ? RowTile : 4;
        int chunkRows = ChunkRows(n, w.RowBytes, threads, unit);
        int chunks = (n + chunkRows - 1) / chunkRows;
        var rows = w;
        GemvTeam.For(threads, chunks, i =>
        {
            int s = i * chunkRows;
            GemvRange(path, m, xp, sp, rows, bias, c, ldc, s, Math.Min(n, s + chunkRows));
        });
    }

    /// <summary>Rows per dynamically claimed chunk: ~128 KB of packed weights (tens of µs of streaming, so claiming one
    /// costs nothing), and at least 8 chunks per thread so the threads finish together; a multiple of <paramref name="unit"/>.</summary>
    internal static int ChunkRows(int n, long rowBytes, int threads, int unit)
    {
        long byBytes = Math.Max(1, (128L << 10) / Math.Max(1, rowBytes));
        long byCount = Math.Max(1, n / (8L * threads));
        long rows = Math.Min(byBytes, byCount);
        return (int)Math.Max(unit, (rows + unit - 1) / unit * unit);
    }

    [ThreadStatic] private static float[]? _scratch;

    /// <summary>This thread's pinned scratch of at least <paramref name="count"/> floats (valid until its next call),
    /// 64-byte aligned: the kernels read x as whole 64-byte vectors, and the array's data (at 40 mod 64 here) made
    /// every one of them a cache-line split. Aligned, the batched int4 kernel ran ~40% faster (hot, one thread);
    /// with the old per-row x pointers the alignment alone showed no gain beside the noise.</summary>
    private static float* Scratch(long count)
    {
        var s = _scratch;
        if (s is null || s.Length < count + 16)
            _scratch = s = GC.AllocateUninitializedArray<float>((int)Math.Max(count + 16, 1024), pinned: true);
        return (float*)(((nint)Unsafe.AsPointer(ref s[0]) + 63) & ~(nint)63);
    }

    /// <summary>Lays x out in the code order of the path. The AVX-512 4-bit kernel (group sizes 64, 128) widens 32
    /// bytes as 16 u16 lanes, lane j holding codes 4j … 4j+3 in its four nibbles, and looks up one nibble position at a
    /// time: per 64 elements, position t·16 + j holds element 4j + t. The other 4-bit kernels widen bytes, so each lane
    /// holds an even code (low nibble) and the next odd one (high nibble): per 32 elements (AVX-512 with group size 32,
    /// portable, scalar) or per 16 (AVX2) the even elements come first, then the odd ones. 8 bits: the AVX-512 kernel
    /// (group sizes 64, 128) reads 64 bytes as 16 u32 lanes of four codes, in the same order as 4 bits; the other paths
    /// read codes in order.</summary>
    private static void PermuteX(QuantPath path, int bits, int gs, ReadOnlySpan<float> x, Span<float> dst)
    {
        int k = x.Length;
        if (bits != 4 && !(bits == 8 && QuadLayout(path, gs))) { x.CopyTo(dst); return; }
        if (QuadLayout(path, gs))
        {
            fixed (float* pd = dst) PermuteQuad(x, pd, 64);
            return;
        }
        int block = path == QuantPath.Avx2 ? 16 : 32, half = block / 2;
        for (int b = 0; b < k; b += block)
            for (int t = 0; t < half; t++) { dst[b + t] = x[b + 2 * t]; dst[b + half + t] = x[b + 2 * t + 1]; }
    }

    /// <summary>The AVX-512 quad order (per 64 elements, position t·16 + j holds element 4j + t) of x, block b of 64
    /// written at dst + b·<paramref name="stride"/>: 64 for one x row alone, 256 for the batched kernels' interleaved
    /// rows (<see cref="Interleaved"/>).</summary>
    private static void PermuteQuad(ReadOnlySpan<float> x, float* dst, int stride)
    {
        int k = x.Length;
        if (Avx512F.IsSupported)
        {
            // a 4×16 transpose per 64 elements in registers (a decode step permutes ~1.1 M elements; element by
            // element that was ~1–2 ms of a ~200 ms int4 step, on the calling thread while the workers wait)
            fixed (float* ps = x)
            {
                var lo = Vector512.Create(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
                float* pd = dst;
                for (int b = 0; b < k; b += 64, pd += stride)
                {
                    var v0 = Vector512.Load(ps + b); var v1 = Vector512.Load(ps + b + 16);
                    var v2 = Vector512.Load(ps + b + 32); var v3 = Vector512.Load(ps + b + 48);
                    for (int t = 0; t < 4; t++)
                    {
                        var idx = lo + Vector512.Create(t);
                        // elements 4j + t of v0:v1 (j < 8) in the low half, of v2:v3 (j ≥ 8) in the high half
                        var a = Avx512F.PermuteVar16x32x2(v0, idx, v1);
                        var c = Avx512F.PermuteVar16x32x2(v2, idx, v3);
                        Avx512F.Shuffle4x128(a, c, 0b01_00_01_00).Store(pd + t * 16);
                    }
                }
            }
            return;
        }
        for (int b = 0, o = 0; b < k; b += 64, o += stride)
            for (int t = 0; t < 4; t++)
                for (int j = 0; j < 16; j++) dst[o + t * 16 + j] = x[b + 4 * j + t];
    }

    /// <summary>Batched decoding (2–4 x rows) on the AVX-512 quad layout keeps the four permuted x rows interleaved per
    /// 64 elements (row r of block b at 256·b + 64·r): the four-row kernels then read all sixteen x vectors of a block at
    /// fixed offsets from one pointer. With a pointer per row and a shared index, every FMA had an indexed memory
    /// operand, which the core splits into two uops (unlamination): 16 of ~52 uops per block were such splits, and
    /// the x reads walk one sequential stream instead of four.</summary>
    private static bool Interleaved(QuantPath path, int m, int gs) => m > 1 && QuadLayout(path, gs);

    /// <summary>When groups hold whole 64s, the AVX-512 kernels read 64 codes per step as 16 lanes of four codes each
    /// (4 bits: 32 bytes widened u16 → u32; 8 bits: 64 bytes as u32), x in the matching order.</summary>
    private static bool QuadLayout(QuantPath path, int gs) => path == QuantPath.Avx512 && gs % 64 == 0;

    /// <summary>Up to this k the permuted x row (≤ 32 KB of f32) stays in L1 while a packed row streams past it.</summary>
    private const int ChunkElements = 8192;
    /// <summary>Elements of k per chunk: all m permuted x rows of a chunk (≤ 32 KB of f32) stay in L1 beside the weight
    /// streams. For batched decoding (m = 4) that cuts k = 3584 into 2048-element chunks walked by tiles of rows: four
    /// whole x rows (56 KB) no longer fit a 48 KB L1 and the four-row kernel then read x from L2 at every step.</summary>
    internal static int ChunkElementsFor(int m, int gs) => Math.Max(gs, ChunkElements / Math.Max(1, m) / gs * gs);

    /// <summary>Rows that share one L1-resident chunk of x when k is longer than <see cref="ChunkElements"/>.</summary>
    private const int RowTile = 8;

    private static void GemvRange(QuantPath path, int m, float* xs, float* sums, RowSource w, float* bias, float* c, int ldc, int j0, int j1)
    {
        int k = w.K, groups = w.Groups, gs = w.GroupSize, bits = w.Bits;
        // Long rows (down_proj, k = 18944; or m x rows together past 32 KB): x no longer fits in L1 beside the streams,
        // so a tile of rows walks k in chunks and every chunk of x is read from L1 by all rows of the tile (partial dots
        // add up: the kernels are sums over groups, so a row's result does not depend on the tile it is in).
        int chunkElements = ChunkElementsFor(m, gs);
        if (m == 1 && path == QuantPath.Avx512 && gs == 64) // every range of one x row, one row included (whole rows, never tiles)
        {
            GemvRangeTwoStreams(xs, sums, w, bias, c, j0, j1);
            return;
        }
        int chunkGroups = k > chunkElements ? chunkElements / gs : groups;
        int tile = k > chunkElements ? RowTile : 1;
        int sbCount = tile * groups * 2;
        float[]? sbHeap = sbCount > 8192 ? new float[sbCount] : null;
        float* pp = stackalloc float[RowTile * MaxGemvRows];
        Span<float> sbSpan = sbHeap is null ? stackalloc float[sbCount] : sbHeap;
        fixed (float* psb = sbSpan)
        {
            for (int jt = j0; jt < j1; jt += tile)
            {
                int rows = Math.Min(tile, j1 - jt);
                for (int t = 0; t < rows; t++) w.ScalesOf(jt + t, psb + 2 * t * groups, psb + (2 * t + 1) * groups);
                new Span<float>(pp, tile * MaxGemvRows).Clear();
                for (int g0 = 0; g0 < groups; g0 += chunkGroups)
                {
                    int ng = Math.Min(chunkGroups, groups - g0);
                    long byteOffset = (long)g0 * gs * bits / 8;
                    for (int t = 0; t < rows; t++)
                    {
                        byte* row = w.Packed + (long)(jt + t) * w.RowBytes + byteOffset;
                        float* s = psb + 2 * t * groups + g0, b = psb + (2 * t + 1) * groups + g0;
                        float* x0 = xs + (long)g0 * gs;
                        // AVX-512 prefetch: whole rows stream back to back, so PrefetchBytes ahead; in tiles, the piece
                        // of weights read next is the next row's chunk (or the tile's next chunk): prefetching at that
                        // distance keeps the stream ahead (a fixed 4 KB ran into this row's next chunk, read only after
                        // the whole tile: down_proj ran at ~60% of the other shapes' rate)
                        nint pf = PrefetchBytes;
                        if (tile > 1)
                        {
                            byte* next = t + 1 < rows ? row + w.RowBytes
                                : g0 + chunkGroups < groups ? w.Packed + (long)jt * w.RowBytes + byteOffset + (long)ng * gs * bits / 8
                                : w.Packed + (long)(jt + tile) * w.RowBytes;
                            pf = (nint)(next - row);
                        }
                        if (Interleaved(path, m, gs))
                        {
                            // batched decode, quad layout: the x rows interleaved per 64 elements (missing rows hold row 0)
                            float* xq = xs + (long)g0 * gs * MaxGemvRows;
                            float* acc = pp + t * MaxGemvRows;
                            if (bits == 4) Dot4Avx512Quad(gs, ng, row, xq, s, b, acc, pf);
                            else Dot8Avx512Quad(gs, ng, row, xq, s, acc, pf);
                        }
                        else if (m > 1 && path == QuantPath.Avx512)
                        {
                            // batched decode: unpack each code once for all m rows of x (missing rows alias row 0)
                            float* x1 = x0 + k, x2 = m > 2 ? x0 + 2L * k : x0, x3 = m > 3 ? x0 + 3L * k : x0;
                            float* acc = pp + t * MaxGemvRows;
                            if (bits == 4) Dot4Avx512x4(gs, ng, row, x0, x1, x2, x3, s, b, acc, pf);
                            else Dot8Avx512x4(gs, ng, row, x0, x1, x2, x3, s, acc, pf);
                        }
                        else
                            for (int r = 0; r < m; r++)
                                pp[t * MaxGemvRows + r] += RowDot(path, bits, gs, ng, row, x0 + (long)r * k, s, b, pf);
                    }
                }
                for (int t = 0; t < rows; t++)
                {
                    int j = jt + t;
                    float* b = psb + (2 * t + 1) * groups;
                    for (int r = 0; r < m; r++)
                    {
                        float v = pp[t * MaxGemvRows + r];
                        if (!BiasInDot(path, bits))
                        {
                            // bias term: Σ_g bias_g · Σ x over the group
                            // (vectorised: a scalar FMA chain over the groups was a ~4-cycle latency per group per row)
                            v += System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(b, groups), new ReadOnlySpan<float>(sums + (long)r * groups, groups));
                        }
                        if (bias != null) v += bias[j];
                        c[(long)r * ldc + j] = v;
                    }
                }
            }
        }
    }

    /// <summary>
    /// One x row (plain decoding), AVX-512, group size 64: the range is walked as two halves at once, row j0 + i beside
    /// row j0 + half + i, so each core keeps two sequential streams of weights in flight (two pages' hardware
    /// prefetchers and twice the software prefetches). One stream per core reached ~8 GB/s from DRAM for int4 and ~9.5 for int8
    /// against ~12 for a plain streaming sum; two streams ~10 and ~11 (single core, loaded machine). Each row of a pair
    /// is computed with exactly the operations of the one-row kernel, so a row's result does not depend on its partner
    /// (nor on the chunking, which depends on the thread count). Long rows (down_proj, k = 18944) take this walk too,
    /// whole rows with x read from L2: the row-tile walk (eight rows × 8192-element chunks of k, x in L1) restarts eight
    /// short streams per chunk and measured 6–7.7 GB/s per core for int8 against ~9.5 here (int4 5.5–7.1 against 6.8–7.8).
    /// </summary>
    private static void GemvRangeTwoStreams(float* xs, float* sums, RowSource w, float* bias, float* c, int j0, int j1)
    {
        int groups = w.Groups;
        // scales and biases of both rows: on the stack up to 32 KB, as GemvRange (a very wide row must not overflow it)
        float[]? heap = 4 * groups > 8192 ? new float[4 * groups] : null;
        Span<float> span = heap is null ? stackalloc float[4 * groups] : heap;
        fixed (float* sb = span) TwoStreams(xs, sums, w, bias, c, j0, j1, sb);
    }

    private static void TwoStreams(float* xs, float* sums, RowSource w, float* bias, float* c, int j0, int j1, float* sb)
    {
        int groups = w.Groups, bits = w.Bits;
        int half = (j1 - j0) / 2;
        float* sa = sb, ba = sb + groups, sc = sb + 2 * groups, bc = sb + 3 * groups;
        for (int i = 0; i < half; i++)
        {
            int ja = j0 + i, jb = j0 + half + i;
            w.ScalesOf(ja, sa, ba);
            w.ScalesOf(jb, sc, bc);
            byte* ra = w.Packed + (long)ja * w.RowBytes, rb = w.Packed + (long)jb * w.RowBytes;
            float va, vb;
            if (bits == 4) Dot4Avx512Pair(groups, ra, rb, xs, sa, ba, sc, bc, PrefetchBytes, out va, out vb);
            else Dot8Avx512Pair(groups, ra, rb, xs, sa, sc, PrefetchBytes, out va, out vb);
            c[ja] = FinishRow(bits, va, ba, sums, groups, bias, ja);
            c[jb] = FinishRow(bits, vb, bc, sums, groups, bias, jb);
        }
        if ((j1 - j0) % 2 != 0)
        {
            int j = j1 - 1;
            w.ScalesOf(j, sa, ba);
            float v = RowDot(QuantPath.Avx512, bits, 64, groups, w.Packed + (long)j * w.RowBytes, xs, sa, ba, PrefetchBytes);
            c[j] = FinishRow(bits, v, ba, sums, groups, bias, j);
        }
    }

    /// <summary>The end of one row of <see cref="GemvRangeTwoStreams"/>, as <see cref="GemvRange"/> finishes a row (m = 1).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float FinishRow(int bits, float dot, float* b, float* sums, int groups, float* bias, int j)
    {
        float v = 0f;
        v += dot; // as GemvRange's cleared partial sum (+0 + −0 = +0), so a row's bits do not depend on the path taken
        if (!BiasInDot(QuantPath.Avx512, bits))
            v += System.Numerics.Tensors.TensorPrimitives.Dot(new ReadOnlySpan<float>(b, groups), new ReadOnlySpan<float>(sums, groups));
        if (bias != null) v += bias[j];
        return v;
    }

    /// <summary><see cref="Dot4Avx512"/> (group size 64) on two rows at once, each with its own table and chains, in the
    /// one-row kernel's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4Avx512Pair(int groups, byte* p, byte* q, float* x, float* s, float* b, float* t, float* d, nint pf, out float rp, out float rq)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, c0 = default, c1 = default, c2 = default, c3 = default;
        var iota = Iota16;
        for (int g = 0; g < groups; g++, p += 32, q += 32, x += 64)
        {
            var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), iota, Vector512.Create(b[g]));
            var lu2 = Avx512F.FusedMultiplyAdd(Vector512.Create(t[g]), iota, Vector512.Create(d[g]));
            Sse.Prefetch0(p + pf);
            Sse.Prefetch0(q + pf);
            var v = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p));
            var u = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)q));
            var x0 = Vector512.Load(x); var x1 = Vector512.Load(x + 16); var x2 = Vector512.Load(x + 32); var x3 = Vector512.Load(x + 48);
            a0 = Avx512F.FusedMultiplyAdd(x0, Avx512F.PermuteVar16x32(lut, v), a0);
            a1 = Avx512F.FusedMultiplyAdd(x1, Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4)), a1);
            a2 = Avx512F.FusedMultiplyAdd(x2, Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 8)), a2);
            a3 = Avx512F.FusedMultiplyAdd(x3, Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 12)), a3);
            c0 = Avx512F.FusedMultiplyAdd(x0, Avx512F.PermuteVar16x32(lu2, u), c0);
            c1 = Avx512F.FusedMultiplyAdd(x1, Avx512F.PermuteVar16x32(lu2, Avx512F.ShiftRightLogical(u, 4)), c1);
            c2 = Avx512F.FusedMultiplyAdd(x2, Avx512F.PermuteVar16x32(lu2, Avx512F.ShiftRightLogical(u, 8)), c2);
            c3 = Avx512F.FusedMultiplyAdd(x3, Avx512F.PermuteVar16x32(lu2, Avx512F.ShiftRightLogical(u, 12)), c3);
        }
        rp = SumLanes((a0 + a1) + (a2 + a3));
        rq = SumLanes((c0 + c1) + (c2 + c3));
    }

    /// <summary><see cref="Dot8Avx512"/> (group size 64) on two rows at once, in the one-row kernel's order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8Avx512Pair(int groups, byte* p, byte* q, float* x, float* s, float* t, nint pf, out float rp, out float rq)
    {
        Vector512<float> acc = Vector512<float>.Zero, acd = Vector512<float>.Zero;
        var mask = Vector512.Create(0xFFu);
        for (int g = 0; g < groups; g++, p += 64, q += 64, x += 64)
        {
            Sse.Prefetch0(p + pf);
            Sse.Prefetch0(q + pf);
            var v = Vector512.Load((uint*)p);
            var u = Vector512.Load((uint*)q);
            var x0 = Vector512.Load(x); var x1 = Vector512.Load(x + 16); var x2 = Vector512.Load(x + 32); var x3 = Vector512.Load(x + 48);
            var g0 = Avx512F.FusedMultiplyAdd(x0, Avx512F.ConvertToVector512Single((v & mask).AsInt32()), Vector512<float>.Zero);
            var g1 = Avx512F.FusedMultiplyAdd(x1, Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte1).AsInt32()), Vector512<float>.Zero);
            var g2 = Avx512F.FusedMultiplyAdd(x2, Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte2).AsInt32()), Vector512<float>.Zero);
            var g3 = Avx512F.FusedMultiplyAdd(x3, Avx512F.ConvertToVector512Single(Avx512F.ShiftRightLogical(v, 24).AsInt32()), Vector512<float>.Zero);
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), (g0 + g1) + (g2 + g3), acc);
            var h0 = Avx512F.FusedMultiplyAdd(x0, Avx512F.ConvertToVector512Single((u & mask).AsInt32()), Vector512<float>.Zero);
            var h1 = Avx512F.FusedMultiplyAdd(x1, Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(u.AsByte(), PickByte1).AsInt32()), Vector512<float>.Zero);
            var h2 = Avx512F.FusedMultiplyAdd(x2, Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(u.AsByte(), PickByte2).AsInt32()), Vector512<float>.Zero);
            var h3 = Avx512F.FusedMultiplyAdd(x3, Avx512F.ConvertToVector512Single(Avx512F.ShiftRightLogical(u, 24).AsInt32()), Vector512<float>.Zero);
            acd = Avx512F.FusedMultiplyAdd(Vector512.Create(t[g]), (h0 + h1) + (h2 + h3), acd);
        }
        rp = SumLanes(acc);
        rq = SumLanes(acd);
    }

    /// <summary>vpshufb controls that move byte 1 (2) of every u32 lane to its low byte and zero the rest: one shuffle
    /// instead of a shift and a mask for the two middle codes of each lane in the 8-bit kernels (same codes, same
    /// lanes, so the same bits).</summary>
    private static readonly Vector512<byte> PickByte1 = PickByte(1), PickByte2 = PickByte(2);

    private static Vector512<byte> PickByte(int t)
    {
        var c = new byte[64];
        for (int i = 0; i < 64; i++) c[i] = i % 4 == 0 ? (byte)(i % 16 + t) : (byte)0x80;
        return Vector512.Create(c);
    }

    /// <summary>The four code vectors of 64 8-bit codes in u32 lanes (bytes 0, 1, 2, 3 of each lane), as floats.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Codes8(Vector512<uint> v, out Vector512<float> w0, out Vector512<float> w1, out Vector512<float> w2, out Vector512<float> w3)
    {
        w0 = Avx512F.ConvertToVector512Single((v & Vector512.Create(0xFFu)).AsInt32());
        w1 = Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte1).AsInt32());
        w2 = Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte2).AsInt32());
        w3 = Avx512F.ConvertToVector512Single(Avx512F.ShiftRightLogical(v, 24).AsInt32());
    }

    /// <summary>The four-row kernels' step: weight vectors wLo (elements o…o+15) and wHi (o+16…o+31) into each x row's
    /// two accumulators (row 0: a, 1: b, 2: c, 3: d).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma4Rows(float* x0, float* x1, float* x2, float* x3, nint o, Vector512<float> wLo, Vector512<float> wHi,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> b0, ref Vector512<float> b1,
        ref Vector512<float> c0, ref Vector512<float> c1, ref Vector512<float> d0, ref Vector512<float> d1)
    {
        a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x0 + o), wLo, a0); a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x0 + o + 16), wHi, a1);
        b0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x1 + o), wLo, b0); b1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x1 + o + 16), wHi, b1);
        c0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x2 + o), wLo, c0); c1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x2 + o + 16), wHi, c1);
        d0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x3 + o), wLo, d0); d1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x3 + o + 16), wHi, d1);
    }

    /// <summary>Vector512.Sum's order — each 128-bit quarter pairwise, (l0 + l1) + (l2 + l3), then (q0 + q1) + (q2 + q3) —
    /// in eight full-width operations instead of the JIT's per-quarter sequence (~22): the same additions of the same
    /// operands (a swapped pair sums equally either way round), so the same bits. One runs per row, beside ~700 uops of
    /// an int4 row of k = 3584.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float SumLanes(Vector512<float> v)
    {
        v += Avx512F.Permute4x32(v, 0b10_11_00_01);     // lanes (l0 + l1, l1 + l0, l2 + l3, l3 + l2) in each quarter
        v += Avx512F.Permute4x32(v, 0b01_00_11_10);     // every lane of a quarter: its quarter's sum
        v += Avx512F.Shuffle4x128(v, v, 0b10_11_00_01); // quarters 0, 1: q0 + q1; quarters 2, 3: q2 + q3
        return (v.GetLower() + v.GetUpper()).ToScalar();
    }

    /// <summary>Software prefetch distance of the x86 kernels: a thread's rows are consecutive, so the hint runs ahead
    /// into the next row and keeps lines in flight when other processes share the memory bus (past the end of the
    /// weights it is a no-op: prefetches never fault).</summary>
    private const int PrefetchBytes = 4096;

    private static bool BiasInDot(QuantPath path, int bits) => path == QuantPath.Avx512 && bits == 4;

    /// <summary>Σ_g scale_g · Σ_{i∈g} x_i·q_i for one packed row (x already permuted for the path); the AVX-512 4-bit
    /// kernel returns the whole dot product, bias terms included (<see cref="BiasInDot"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float RowDot(QuantPath path, int bits, int gs, int groups, byte* row, float* x, float* s, float* b, nint pf) => path switch
    {
        QuantPath.Avx512 => bits == 4 ? Dot4Avx512(gs, groups, row, x, s, b, pf) : Dot8Avx512(gs, groups, row, x, s, pf),
        QuantPath.Avx2 => bits == 4 ? Dot4Avx2(gs, groups, row, x, s) : Dot8Avx2(gs, groups, row, x, s),
        QuantPath.Portable => bits == 4 ? Dot4Portable(gs, groups, row, x, s) : Dot8Portable(gs, groups, row, x, s),
        _ => bits == 4 ? Dot4Scalar(gs, groups, row, x, s) : Dot8Scalar(gs, groups, row, x, s),
    };

    // AVX-512, 4 bits: the permuted table is the group's 16 dequantised values scale·q + bias (vpermps reads only the
    // low 4 bits of each index, so a lane's other nibbles need no mask): no int→float conversion, no separate bias term.
    // The table is fma(broadcast scale, iota, broadcast bias): with the bias broadcast as the FMA's destination the JIT
    // needs no copy of the iota register per group (the product is exact either way round, so the same table).
    // Group sizes 64/128: 32 bytes widen as 16 u16 lanes (four codes each; x in the matching order, see PermuteX) and
    // four shifts pick the nibbles: one widening per 64 codes. Widening 16 bytes to bytes-per-lane (two per 64 codes,
    // the group-size-32 path) measured ~1.8x slower per core with the weights in cache, and a core could then not keep
    // up with its share of the memory bandwidth (~7 vs ~15 GB/s in cache, Xeon "Emerald Rapids" at 2.3 GHz).
    private static readonly Vector512<float> Iota16 = Vector512.Create(0f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot4Avx512(int gs, int groups, byte* row, float* x, float* s, float* b, nint pf)
    {
        Vector512<float> a0 = Vector512<float>.Zero, a1 = Vector512<float>.Zero, a2 = Vector512<float>.Zero, a3 = Vector512<float>.Zero;
        var iota = Iota16;
        byte* p = row;
        if (gs == 64)
        {
            // one 64-code step per group, written without an inner loop: the nested form (a one-trip inner loop per
            // group) ran at ~6.5 GB/s per core with the weights in L2, this flat one at ~11.5 (Xeon, 2.0 GHz under AVX-512)
            for (int g = 0; g < groups; g++, p += 32, x += 64)
            {
                var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), iota, Vector512.Create(b[g]));
                Sse.Prefetch0(p + pf);
                var v = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p));
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x), Avx512F.PermuteVar16x32(lut, v), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 16), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4)), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 32), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 8)), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 48), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 12)), a3);
            }
            return SumLanes((a0 + a1) + (a2 + a3));
        }
        if (gs == 128)
        {
            // two steps per group, each into its own pair of chains
            for (int g = 0; g < groups; g++, p += 64, x += 128)
            {
                var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), iota, Vector512.Create(b[g]));
                Sse.Prefetch0(p + pf);
                Sse.Prefetch0(p + 32 + pf);
                var v = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p));
                var u = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)(p + 32)));
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x), Avx512F.PermuteVar16x32(lut, v), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 16), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4)), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 32), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 8)), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 48), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 12)), a3);
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 64), Avx512F.PermuteVar16x32(lut, u), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 80), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(u, 4)), a1);
                a2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 96), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(u, 8)), a2);
                a3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 112), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(u, 12)), a3);
            }
            return SumLanes((a0 + a1) + (a2 + a3));
        }
        // group size 32: 16 bytes widen to 16 int lanes, each holding an even code (low nibble) and the next odd one
        for (int g = 0; g < groups; g++)
        {
            var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), iota, Vector512.Create(b[g]));
            for (int i = 0; i < gs; i += 32, p += 16, x += 32)
            {
                Sse.Prefetch0(p + pf);
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(p));
                a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x), Avx512F.PermuteVar16x32(lut, v), a0);
                a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + 16), Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4)), a1);
            }
        }
        return SumLanes((a0 + a1) + (a2 + a3));
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot8Avx512(int gs, int groups, byte* row, float* x, float* s, nint pf)
    {
        var acc = Vector512<float>.Zero;
        byte* p = row;
        if (gs % 64 == 0)
        {
            // 64 bytes as 16 u32 lanes, byte t of lane j = element 4j + t (x permuted to match): a mask, two in-lane
            // byte shuffles (PickByte1/2) and a shift pick the codes, no byte → int widening shuffle (vpmovzxbd, one per
            // 16 codes, measured ~25% slower per core)
            var mask = Vector512.Create(0xFFu);
            for (int g = 0; g < groups; g++)
            {
                Vector512<float> g0 = Vector512<float>.Zero, g1 = Vector512<float>.Zero, g2 = Vector512<float>.Zero, g3 = Vector512<float>.Zero;
                for (int i = 0; i < gs; i += 64)
                {
                    Sse.Prefetch0(p + i + pf);
                    var v = Vector512.Load((uint*)(p + i));
                    g0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), Avx512F.ConvertToVector512Single((v & mask).AsInt32()), g0);
                    g1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 16), Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte1).AsInt32()), g1);
                    g2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 32), Avx512F.ConvertToVector512Single(Avx512BW.Shuffle(v.AsByte(), PickByte2).AsInt32()), g2);
                    g3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 48), Avx512F.ConvertToVector512Single(Avx512F.ShiftRightLogical(v, 24).AsInt32()), g3);
                }
                p += gs;
                x += gs;
                acc = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), (g0 + g1) + (g2 + g3), acc);
            }
            return SumLanes(acc);
        }
        for (int g = 0; g < groups; g++)
        {
            Vector512<float> g0 = Vector512<float>.Zero, g1 = Vector512<float>.Zero, g2 = Vector512<float>.Zero, g3 = Vector512<float>.Zero;
            int i = 0;
            for (; i + 64 <= gs; i += 64)
            {
                Sse.Prefetch0(p + i + pf);
                g0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i))), g0);
                g1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 16), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i + 16))), g1);
                g2 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 32), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i + 32))), g2);
                g3 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 48), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i + 48))), g3);
            }
            for (; i < gs; i += 32)
            {
                g0 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i))), g0);
                g1 = Avx512F.FusedMultiplyAdd(Vector512.Load(x + i + 16), Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i + 16))), g1);
            }
            p += gs;
            x += gs;
            acc = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), (g0 + g1) + (g2 + g3), acc);
        }
        return SumLanes(acc);
    }

    /// <summary>The four-row step on interleaved x (<see cref="Interleaved"/>): weight vectors wLo and wHi (elements
    /// o…o+15 and o+16…o+31 of a 64-element block, x at q = block + o) into each x row's two accumulators (row 0: a,
    /// 1: b, 2: c, 3: d). Every x read is a fixed displacement from q (no index register, so each FMA stays one fused uop).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Fma4Quad(float* q, Vector512<float> wLo, Vector512<float> wHi,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> b0, ref Vector512<float> b1,
        ref Vector512<float> c0, ref Vector512<float> c1, ref Vector512<float> d0, ref Vector512<float> d1)
    {
        a0 = Avx512F.FusedMultiplyAdd(Vector512.Load(q), wLo, a0); a1 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 16), wHi, a1);
        b0 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 64), wLo, b0); b1 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 80), wHi, b1);
        c0 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 128), wLo, c0); c1 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 144), wHi, c1);
        d0 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 192), wLo, d0); d1 = Avx512F.FusedMultiplyAdd(Vector512.Load(q + 208), wHi, d1);
    }

    /// <summary><see cref="Dot4Avx512"/> for four rows of x at once (batched decoding, group sizes 64/128, x interleaved):
    /// each looked-up vector of dequantised weights feeds four FMAs; four accumulators per row (chain t takes codes
    /// 4j + t of every 64) so no FMA waits on its own chain; adds each row's dot to acc[r]. Per 64 codes: 16 FMAs, four
    /// lookups, three shifts, one widening (and the table, once per group): ~25 uops on the two 512-bit ports, the bound.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4Avx512Quad(int gs, int groups, byte* p, float* q, float* s, float* b, float* acc, nint pf)
    {
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, b0 = default, b1 = default, b2 = default, b3 = default;
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, d0 = default, d1 = default, d2 = default, d3 = default;
        var iota = Iota16;
        // flat loops, pointers stepped (a one-trip inner loop per group ran much slower, see Dot4Avx512); group size 128
        // takes its two blocks in one trip with one table (the same FMAs into the same chains in the same order)
        int blocks = gs / 64;
        float* end = s + groups;
        if (blocks == 1)
            for (; s < end; s++, b++, p += 32, q += 256)
            {
                var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(*s), iota, Vector512.Create(*b));
                Sse.Prefetch0(p + pf);
                Block4(p, q, lut, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, ref c0, ref c1, ref c2, ref c3, ref d0, ref d1, ref d2, ref d3);
            }
        else
            for (; s < end; s++, b++)
            {
                var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(*s), iota, Vector512.Create(*b));
                for (int i = 0; i < blocks; i++, p += 32, q += 256)
                {
                    Sse.Prefetch0(p + pf);
                    Block4(p, q, lut, ref a0, ref a1, ref a2, ref a3, ref b0, ref b1, ref b2, ref b3, ref c0, ref c1, ref c2, ref c3, ref d0, ref d1, ref d2, ref d3);
                }
            }
        acc[0] += SumLanes((a0 + a1) + (a2 + a3)); acc[1] += SumLanes((b0 + b1) + (b2 + b3));
        acc[2] += SumLanes((c0 + c1) + (c2 + c3)); acc[3] += SumLanes((d0 + d1) + (d2 + d3));
    }

    /// <summary>One 64-code block of <see cref="Dot4Avx512Quad"/>: 32 bytes widened to 16 u16 lanes of four codes,
    /// four table lookups (nibble t of every lane), each into four rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Block4(byte* p, float* q, Vector512<float> lut,
        ref Vector512<float> a0, ref Vector512<float> a1, ref Vector512<float> a2, ref Vector512<float> a3,
        ref Vector512<float> b0, ref Vector512<float> b1, ref Vector512<float> b2, ref Vector512<float> b3,
        ref Vector512<float> c0, ref Vector512<float> c1, ref Vector512<float> c2, ref Vector512<float> c3,
        ref Vector512<float> d0, ref Vector512<float> d1, ref Vector512<float> d2, ref Vector512<float> d3)
    {
        var v = Avx512F.ConvertToVector512Int32(Vector256.Load((ushort*)p));
        var w0 = Avx512F.PermuteVar16x32(lut, v);
        var w1 = Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4));
        var w2 = Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 8));
        var w3 = Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 12));
        Fma4Quad(q, w0, w1, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
        Fma4Quad(q + 32, w2, w3, ref a2, ref a3, ref b2, ref b3, ref c2, ref c3, ref d2, ref d3);
    }

    /// <summary><see cref="Dot4Avx512"/> for four rows of x at once, group size 32 (x rows apart, each in the even/odd
    /// order of that group size): each looked-up vector feeds four FMAs, two accumulators per x row; adds each row's
    /// dot to acc[r].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4Avx512x4(int gs, int groups, byte* row, float* x0, float* x1, float* x2, float* x3, float* s, float* b, float* acc, nint pf)
    {
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
        var iota = Iota16;
        byte* p = row;
        nint o = 0;
        for (int g = 0; g < groups; g++)
        {
            var lut = Avx512F.FusedMultiplyAdd(Vector512.Create(s[g]), iota, Vector512.Create(b[g]));
            for (int i = 0; i < gs; i += 32, p += 16, o += 32)
            {
                if ((i & 63) == 0) Sse.Prefetch0(p + pf);
                var v = Avx512F.ConvertToVector512Int32(Vector128.Load(p));
                var we = Avx512F.PermuteVar16x32(lut, v);
                var wo = Avx512F.PermuteVar16x32(lut, Avx512F.ShiftRightLogical(v, 4));
                Fma4Rows(x0, x1, x2, x3, o, we, wo, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
            }
        }
        acc[0] += SumLanes(a0 + a1); acc[1] += SumLanes(b0 + b1); acc[2] += SumLanes(c0 + c1); acc[3] += SumLanes(d0 + d1);
    }

    /// <summary><see cref="Dot8Avx512"/> for four rows of x at once (group sizes 64/128, x interleaved): each widened
    /// code vector feeds four FMAs, two chains per row (codes 4j, 4j + 2 and 4j + 1, 4j + 3 of every 64); the group
    /// sums are scaled per row (the bias term is added by the caller, as for one row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8Avx512Quad(int gs, int groups, byte* p, float* q, float* s, float* acc, nint pf)
    {
        Vector512<float> ta = default, tb = default, tc = default, td = default;
        float* end = s + groups;
        if (gs == 64)
        {
            // one 64-code step per group, no one-trip inner loop (see Dot4Avx512)
            for (; s < end; s++, p += 64, q += 256)
            {
                Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
                Sse.Prefetch0(p + pf);
                Codes8(Vector512.Load((uint*)p), out var w0, out var w1, out var w2, out var w3);
                Fma4Quad(q, w0, w1, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
                Fma4Quad(q + 32, w2, w3, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
                var sg = Vector512.Create(*s);
                ta = Avx512F.FusedMultiplyAdd(sg, a0 + a1, ta); tb = Avx512F.FusedMultiplyAdd(sg, b0 + b1, tb);
                tc = Avx512F.FusedMultiplyAdd(sg, c0 + c1, tc); td = Avx512F.FusedMultiplyAdd(sg, d0 + d1, td);
            }
        }
        else
        {
            int blocks = gs / 64;
            for (; s < end; s++)
            {
                Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
                for (int i = 0; i < blocks; i++, p += 64, q += 256)
                {
                    Sse.Prefetch0(p + pf);
                    Codes8(Vector512.Load((uint*)p), out var w0, out var w1, out var w2, out var w3);
                    Fma4Quad(q, w0, w1, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
                    Fma4Quad(q + 32, w2, w3, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
                }
                var sg = Vector512.Create(*s);
                ta = Avx512F.FusedMultiplyAdd(sg, a0 + a1, ta); tb = Avx512F.FusedMultiplyAdd(sg, b0 + b1, tb);
                tc = Avx512F.FusedMultiplyAdd(sg, c0 + c1, tc); td = Avx512F.FusedMultiplyAdd(sg, d0 + d1, td);
            }
        }
        acc[0] += SumLanes(ta); acc[1] += SumLanes(tb); acc[2] += SumLanes(tc); acc[3] += SumLanes(td);
    }

    /// <summary><see cref="Dot8Avx512"/> for four rows of x at once, group size 32 (x rows apart, in order): each widened
    /// code vector feeds four FMAs; the group sums are scaled per row (the bias term is added by the caller).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot8Avx512x4(int gs, int groups, byte* row, float* x0, float* x1, float* x2, float* x3, float* s, float* acc, nint pf)
    {
        Vector512<float> ta = default, tb = default, tc = default, td = default;
        byte* p = row;
        nint o = 0;
        for (int g = 0; g < groups; g++)
        {
            Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default;
            for (int i = 0; i < gs; i += 32, o += 32)
            {
                if ((i & 63) == 0) Sse.Prefetch0(p + i + pf);
                var w0 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i)));
                var w1 = Avx512F.ConvertToVector512Single(Avx512F.ConvertToVector512Int32(Vector128.Load(p + i + 16)));
                Fma4Rows(x0, x1, x2, x3, o, w0, w1, ref a0, ref a1, ref b0, ref b1, ref c0, ref c1, ref d0, ref d1);
            }
            p += gs;
            var sg = Vector512.Create(s[g]);
            ta = Avx512F.FusedMultiplyAdd(sg, a0 + a1, ta); tb = Avx512F.FusedMultiplyAdd(sg, b0 + b1, tb);
            tc = Avx512F.FusedMultiplyAdd(sg, c0 + c1, tc); td = Avx512F.FusedMultiplyAdd(sg, d0 + d1, td);
        }
        acc[0] += SumLanes(ta); acc[1] += SumLanes(tb); acc[2] += SumLanes(tc); acc[3] += SumLanes(td);
    }

    // AVX2, 4 bits: 8 bytes widen to 8 int lanes of two codes each (low nibble = even element, high = odd; x laid out
    // even/odd per 16), masked and shifted, converted, four FMA chains per 32 elements.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot4Avx2(int gs, int groups, byte* row, float* x, float* s)
    {
        var acc = Vector256<float>.Zero;
        var mask = Vector256.Create(0xF);
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            Vector256<float> g0 = Vector256<float>.Zero, g1 = Vector256<float>.Zero, g2 = Vector256<float>.Zero, g3 = Vector256<float>.Zero;
            for (int i = 0; i < gs; i += 32, p += 16)
            {
                Sse.Prefetch0(p + PrefetchBytes);
                var v0 = Avx2.ConvertToVector256Int32(p);
                var v1 = Avx2.ConvertToVector256Int32(p + 8);
                g0 = Fma.MultiplyAdd(Avx.LoadVector256(x + i), Avx.ConvertToVector256Single(Avx2.And(v0, mask)), g0);
                g1 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 8), Avx.ConvertToVector256Single(Avx2.ShiftRightLogical(v0, 4)), g1);
                g2 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 16), Avx.ConvertToVector256Single(Avx2.And(v1, mask)), g2);
                g3 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 24), Avx.ConvertToVector256Single(Avx2.ShiftRightLogical(v1, 4)), g3);
            }
            x += gs;
            acc = Fma.MultiplyAdd(Vector256.Create(s[g]), Avx.Add(Avx.Add(g0, g1), Avx.Add(g2, g3)), acc);
        }
        return Vector256.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot8Avx2(int gs, int groups, byte* row, float* x, float* s)
    {
        var acc = Vector256<float>.Zero;
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            Vector256<float> g0 = Vector256<float>.Zero, g1 = Vector256<float>.Zero, g2 = Vector256<float>.Zero, g3 = Vector256<float>.Zero;
            for (int i = 0; i < gs; i += 32)
            {
                Sse.Prefetch0(p + i + PrefetchBytes);
                g0 = Fma.MultiplyAdd(Avx.LoadVector256(x + i), Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p + i)), g0);
                g1 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 8), Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p + i + 8)), g1);
                g2 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 16), Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p + i + 16)), g2);
                g3 = Fma.MultiplyAdd(Avx.LoadVector256(x + i + 24), Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(p + i + 24)), g3);
            }
            p += gs;
            x += gs;
            acc = Fma.MultiplyAdd(Vector256.Create(s[g]), Avx.Add(Avx.Add(g0, g1), Avx.Add(g2, g3)), acc);
        }
        return Vector256.Sum(acc);
    }

    // Portable (Vector128: SSE on x86 without AVX2, NEON on ARM64). 4 bits: 16 bytes hold 32 codes; the low nibbles are
    // the even codes and the high nibbles the odd ones, matched by the even/odd layout of x from PermuteX.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot4Portable(int gs, int groups, byte* row, float* x, float* s)
    {
        var acc = Vector128<float>.Zero;
        var lowMask = Vector128.Create((byte)0xF);
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            Vector128<float> g0 = Vector128<float>.Zero, g1 = Vector128<float>.Zero;
            for (int i = 0; i < gs; i += 32)
            {
                var v = Vector128.Load(p);
                p += 16;
                var lo = v & lowMask;
                var hi = Vector128.ShiftRightLogical(v, 4);
                Dot16(lo, x + i, ref g0);
                Dot16(hi, x + i + 16, ref g1);
            }
            x += gs;
            acc += Vector128.Create(s[g]) * (g0 + g1);
        }
        return Vector128.Sum(acc);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot8Portable(int gs, int groups, byte* row, float* x, float* s)
    {
        var acc = Vector128<float>.Zero;
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            Vector128<float> g0 = Vector128<float>.Zero;
            for (int i = 0; i < gs; i += 16) Dot16(Vector128.Load(p + i), x + i, ref g0);
            p += gs;
            x += gs;
            acc += Vector128.Create(s[g]) * g0;
        }
        return Vector128.Sum(acc);
    }

    /// <summary>acc += x[0..16) · the 16 bytes of <paramref name="codes"/> (widened u8 → u32 → f32).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Dot16(Vector128<byte> codes, float* x, ref Vector128<float> acc)
    {
        var (l, h) = Vector128.Widen(codes);
        var (a, b) = Vector128.Widen(l);
        var (c, d) = Vector128.Widen(h);
        acc += Vector128.Load(x) * Vector128.ConvertToSingle(a.AsInt32());
        acc += Vector128.Load(x + 4) * Vector128.ConvertToSingle(b.AsInt32());
        acc += Vector128.Load(x + 8) * Vector128.ConvertToSingle(c.AsInt32());
        acc += Vector128.Load(x + 12) * Vector128.ConvertToSingle(d.AsInt32());
    }

    private static float Dot4Scalar(int gs, int groups, byte* row, float* x, float* s)
    {
        float acc = 0;
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            float gsum = 0;
            for (int i = 0; i < gs; i += 32, p += 16)
                for (int t = 0; t < 16; t++)
                    gsum += x[i + t] * (p[t] & 0xF) + x[i + 16 + t] * (p[t] >> 4);
            x += gs;
            acc += s[g] * gsum;
        }
        return acc;
    }

    private static float Dot8Scalar(int gs, int groups, byte* row, float* x, float* s)
    {
        float acc = 0;
        byte* p = row;
        for (int g = 0; g < groups; g++)
        {
            float gsum = 0;
            for (int i = 0; i < gs; i++) gsum += x[i] * p[i];
            p += gs;
            x += gs;
            acc += s[g] * gsum;
        }
        return acc;
    }

    // ----------------------------------------------------------------------------------------------- prefill (panel GEMM)

    /// <summary>Dequantises tiles of W's rows into an f32 panel (per worker) and multiplies it with the f32 GEMM.</summary>
    private static void PanelGemm(QuantPath path, int m, float* a, int lda, RowSource w, float* bias, float* c, int ldc, int maxThreads)
    {
        var gemmPath = Gemm.CurrentPath;
        if (path >= QuantPath.Avx2 && m > Cpu.Gemv.MaxRows && gemmPath >= GemmPath.Avx2)
        {
            PackedAPanelGemm(gemmPath, m, a, lda, w, bias, c, ldc, maxThreads);
            return;
        }
        int n = w.N, k = w.K;
        // a tile of ~256 KB of f32 (at least 8 rows) stays in L2 while the GEMM packs it
        int tile = Math.Clamp((65536 / Math.Max(k, 1)) & ~7, 8, 256);
        int tiles = (n + tile - 1) / tile;
        int threads = Math.Max(1, Math.Min(maxThreads, tiles));
        bool simd = path != QuantPath.Scalar;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var panel = new float[(long)tile * k];
            float* s = stackalloc float[w.Groups];
            float* b = stackalloc float[w.Groups];
            fixed (float* pp = panel)
            {
                for (int ti = t; ti < tiles; ti += threads)
                {
                    int j0 = ti * tile, rows = Math.Min(tile, n - j0);
                    for (int r = 0; r < rows; r++)
                    {
                        w.ScalesOf(j0 + r, s, b);
                        DequantizeRow(w, w.Packed + (long)(j0 + r) * w.RowBytes, s, b, pp + (long)r * k, simd);
                    }
                    if (path >= QuantPath.Avx2) Gemm.SgemmNTOn(1, m, rows, k, a, lda, pp, k, c + j0, ldc, bias == null ? null : bias + j0);
                    else if (path == QuantPath.Portable) PortablePanel(m, rows, k, a, lda, pp, c + j0, ldc, bias == null ? null : bias + j0);
                    else GemmScalar.NT<F32Rows>(m, rows, k, a, lda, (byte*)pp, k, c + j0, ldc, bias == null ? null : bias + j0, false);
                }
            }
        });
    }

    /// <summary>
    /// The SIMD prefill: A is packed once for the whole product (<see cref="GemmBlocked.PackAllA"/>) and every worker
    /// dequantises tiles of W's rows — a multiple of the register tile's 32 (AVX-512) or 16 columns, ~256 KB of f32 —
    /// and multiplies them by it (<see cref="GemmBlocked.RunPackedA"/>). Packing A once per 16-row tile cost more than
    /// the tile's arithmetic at m ≈ 90 (a 7B prefill ran at 32–48 GFLOP/s), and half of every 16-row tile was padding of
    /// the 32-column AVX-512 tile. Each element gets the kernels and k order of the f32 GEMM over the dequantised rows,
    /// as before: the same bits.
    /// </summary>
    private static void PackedAPanelGemm(GemmPath path, int m, float* a, int lda, RowSource w, float* bias, float* c, int ldc, int maxThreads)
    {
        int n = w.N, k = w.K;
        int unit = path == GemmPath.Avx512 ? GemmBlocked.NR512 : GemmBlocked.NR;
        int tile = Math.Clamp((65536 / Math.Max(k, 1)) / unit * unit, unit, 8 * unit);
        int tiles = (n + tile - 1) / tile;
        int threads = Math.Max(1, Math.Min(maxThreads, tiles));
        var packedA = (float*)NativeMemory.AlignedAlloc((nuint)GemmBlocked.PackedASize(path, m, k) * sizeof(float), 64);
        try
        {
            GemmBlocked.PackAllA(path, m, k, a, lda, packedA);
            int next = -1; // tiles claimed in turn: a descheduled worker holds back one tile only
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                var panel = (float*)NativeMemory.AlignedAlloc((nuint)((long)tile * k) * sizeof(float), 64);
                float* s = stackalloc float[w.Groups];
                float* b = stackalloc float[w.Groups];
                try
                {
                    for (int ti = Interlocked.Increment(ref next); ti < tiles; ti = Interlocked.Increment(ref next))
                    {
                        int j0 = ti * tile, rows = Math.Min(tile, n - j0);
                        for (int r = 0; r < rows; r++)
                        {
                            w.ScalesOf(j0 + r, s, b);
                            DequantizeRow(w, w.Packed + (long)(j0 + r) * w.RowBytes, s, b, panel + (long)r * k, simd: true);
                        }
                        GemmBlocked.RunPackedA(path, m, rows, k, packedA, panel, k, c + j0, ldc, bias == null ? null : bias + j0);
                    }
                }
                finally { NativeMemory.AlignedFree(panel); }
            });
        }
        finally { NativeMemory.AlignedFree(packedA); }
    }

    /// <summary>C[m, rows] = A · panelᵀ by vectorised dot products (TensorPrimitives: Vector128 on SSE/NEON), for machines
    /// where the packed f32 GEMM has no SIMD kernel; the panel tile stays in cache across the m rows of A.</summary>
    private static void PortablePanel(int m, int rows, int k, float* a, int lda, float* panel, float* c, int ldc, float* bias)
    {
        for (int i = 0; i < m; i++)
        {
            var ai = new ReadOnlySpan<float>(a + (long)i * lda, k);
            for (int r = 0; r < rows; r++)
                c[(long)i * ldc + r] = System.Numerics.Tensors.TensorPrimitives.Dot(ai, new ReadOnlySpan<float>(panel + (long)r * k, k)) + (bias == null ? 0f : bias[r]);
        }
    }

    /// <summary>One row, scale·q + bias as a float32 product then a float32 sum (the exact dequantised value, as
    /// <see cref="AffineQuantizer.DequantizeRow"/>). Vector128 for 4 and 8 bits, the bit-stream reader otherwise.</summary>
    internal static void DequantizeRow(in RowSource w, byte* row, float* s, float* b, float* dst, bool simd)
    {
        int k = w.K, gs = w.GroupSize, bits = w.Bits;
        if (simd && bits == 8)
        {
            for (int i = 0; i < k; i += 16)
            {
                var sv = Vector128.Create(s[i / gs]);
                var bv = Vector128.Create(b[i / gs]);
                Store16(Vector128.Load(row + i), sv, bv, dst + i);
            }
            return;
        }
        if (simd && bits == 4)
        {
            var lowMask = Vector128.Create((byte)0xF);
            for (int i = 0; i < k; i += 32)
            {
                var v = Vector128.Load(row + i / 2);
                var lo = (v & lowMask).AsByte();
                var hi = Vector128.ShiftRightLogical(v, 4);
                // interleave: (lo | hi << 8) as u16 lanes → bytes lo0 hi0 lo1 hi1 … = codes in order
                var (l0, l1) = Vector128.Widen(lo);
                var (h0, h1) = Vector128.Widen(hi);
                var first = (l0 | Vector128.ShiftLeft(h0, 8)).AsByte();
                var second = (l1 | Vector128.ShiftLeft(h1, 8)).AsByte();
                var sv = Vector128.Create(s[i / gs]);
                var bv = Vector128.Create(b[i / gs]);
                Store16(first, sv, bv, dst + i);
                Store16(second, sv, bv, dst + i + 16);
            }
            return;
        }
        var packed = new ReadOnlySpan<uint>(row, w.RowBytes / 4);
        uint mask = (1u << bits) - 1;
        for (int i = 0; i < k; i++)
        {
            float scaled = s[i / gs] * AffineQuantizer.Code(packed, bits, mask, i);
            dst[i] = scaled + b[i / gs];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store16(Vector128<byte> codes, Vector128<float> s, Vector128<float> b, float* dst)
    {
        var (l, h) = Vector128.Widen(codes);
        var (q0, q1) = Vector128.Widen(l);
        var (q2, q3) = Vector128.Widen(h);
        // product and sum rounded separately (no FMA), matching the scalar dequantisation bit for bit
        (s * Vector128.ConvertToSingle(q0.AsInt32()) + b).Store(dst);
        (s * Vector128.ConvertToSingle(q1.AsInt32()) + b).Store(dst + 4);
        (s * Vector128.ConvertToSingle(q2.AsInt32()) + b).Store(dst + 8);
        (s * Vector128.ConvertToSingle(q3.AsInt32()) + b).Store(dst + 12);
    }

    /// <summary>Rows <paramref name="ids"/> of a quantized table dequantised into <paramref name="dst"/> [ids, k].</summary>
    public static void TakeRows(QuantizedWeight table, ReadOnlySpan<int> ids, Span<float> dst)
    {
        var w = new RowSource(table);
        int k = w.K;
        bool simd = CurrentPath != QuantPath.Scalar;
        float* s = stackalloc float[w.Groups];
        float* b = stackalloc float[w.Groups];
        fixed (float* pd = dst)
        {
            for (int i = 0; i < ids.Length; i++)
            {
                int id = ids[i];
                if ((uint)id >= (uint)w.N) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {id} at position {i} outside table of {w.N} rows");
                w.ScalesOf(id, s, b);
                DequantizeRow(w, w.Packed + (long)id * w.RowBytes, s, b, pd + (long)i * k, simd);
            }
        }
        GC.KeepAlive(table);
    }
}
