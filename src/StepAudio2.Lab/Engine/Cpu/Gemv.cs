using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Matrix-vector products for m ≤ 4 rows of A (LLM decoding). Each B element is used m times at most, so these are
/// memory-bound: each thread streams its contiguous share of B's rows once, front to back (one sequential stream keeps
/// the hardware prefetcher running ahead, so many cache lines are in flight), widening bf16 in registers and keeping
/// eight independent FMA chains so arithmetic never waits on its own latency. The portable path (<see cref="GemmPath.Portable"/>:
/// ARM64 NEON, SSE-only x86) streams B the same way with <see cref="Vector128{T}"/> and eight 4-lane partial sums.
/// </summary>
/// <remarks>Partial sums are split differently on the two paths (64 vs 32 lanes per step), so their results differ in
/// rounding and each is tested against the float64 oracle; each is independent of the thread count (rows are split).</remarks>
internal static unsafe class Gemv
{
    public const int MaxRows = 4;

    /// <summary>Up to this k the A row (≤ 24 KB of f32) stays in L1 while one B row streams past it.</summary>
    private const int SingleRowMaxK = 6144;

    /// <summary>Software prefetch distance of the four-row kernel: 2048 elements (4 KB of bf16) ahead of each stream.</summary>
    private const int PrefetchElements = 2048;

    /// <summary>Below this many B elements one thread streams faster than two can be woken.</summary>
    private const long ParallelThreshold = 1L << 16;

    public static void NT<TRow>(GemmPath path, int m, int n, int k, float* a, nint lda, byte* b, nint ldb, float* c, nint ldc, float* bias, bool accumulate, int maxThreads)
        where TRow : struct, IRowFormat
    {
        bool portable = path == GemmPath.Portable;
        int threads = (long)n * k < ParallelThreshold ? 1 : Math.Min(Math.Max(1, maxThreads), (n + 3) / 4);
        if (threads <= 1) { Range(0, n); return; }
        // small chunks of whole 4-row groups claimed dynamically by the caller and the persistent GEMV workers (see
        // GemvTeam: one part per thread through Parallel.For often left the second part to the caller); each row is
        // computed the same way whatever chunk holds it
        int chunkRows = QuantGemm.ChunkRows(n, (long)k * TRow.ElementSize, threads, 4);
        int chunks = (n + chunkRows - 1) / chunkRows;
        GemvTeam.For(threads, chunks, i =>
        {
            int s = i * chunkRows;
            Range(s, Math.Min(n, s + chunkRows));
        });

        void Range(int s, int e)
        {
            if (portable) NTRange<TRow, PortableDots>(m, k, a, lda, b, ldb, c, ldc, bias, accumulate, s, e);
            else NTRange<TRow, AvxDots>(m, k, a, lda, b, ldb, c, ldc, bias, accumulate, s, e);
        }
    }

    /// <summary>The three dot-product kernels a range of rows is computed with; one implementation per path, chosen
    /// at compile time (struct type arguments), so the row walk of <see cref="NTRange"/> is written once.</summary>
    private interface IDots
    {
        static abstract float Dot<TRow>(int k, float* a, byte* b) where TRow : struct, IRowFormat;
        static abstract void Dot4Rows<TRow>(int k, float* a, byte* b0, nint rowBytes, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat;
        static abstract void Dot4x1<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat;
    }

    /// <summary>AVX2/AVX-512 machines: Vector256 + FMA with software prefetch.</summary>
    private readonly struct AvxDots : IDots
    {
        public static float Dot<TRow>(int k, float* a, byte* b) where TRow : struct, IRowFormat => Gemv.Dot<TRow>(k, a, b);
        public static void Dot4Rows<TRow>(int k, float* a, byte* b0, nint rowBytes, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat =>
            Gemv.Dot4Rows<TRow>(k, a, b0, rowBytes, out r0, out r1, out r2, out r3);
        public static void Dot4x1<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat =>
            Gemv.Dot4x1<TRow>(k, a0, a1, a2, a3, b, out r0, out r1, out r2, out r3);
    }

    /// <summary>Everything else (ARM64 NEON, SSE-only x86): Vector128, no prefetch hint.</summary>
    private readonly struct PortableDots : IDots
    {
        public static float Dot<TRow>(int k, float* a, byte* b) where TRow : struct, IRowFormat => DotPortable<TRow>(k, a, b);
        public static void Dot4Rows<TRow>(int k, float* a, byte* b0, nint rowBytes, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat =>
            Dot4RowsPortable<TRow>(k, a, b0, rowBytes, out r0, out r1, out r2, out r3);
        public static void Dot4x1<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat =>
            Dot4x1Portable<TRow>(k, a0, a1, a2, a3, b, out r0, out r1, out r2, out r3);
    }

    /// <summary>One A row against one B row, 32 elements a step into eight 128-bit partial sums (independent chains
    /// cover the multiply-add latency; 16 live registers leave SSE's last ones for the loads).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float DotPortable<TRow>(int k, float* a, byte* b) where TRow : struct, IRowFormat
    {
        Vector128<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        nint p = 0;
        for (; p + 32 <= k; p += 32)
        {
            TRow.Load8x2(b, p, out var x0, out var x1);
            TRow.Load8x2(b, p + 8, out var x2, out var x3);
            s0 = PortableKernels.Mad(Vector128.Load(a + p), x0, s0); s1 = PortableKernels.Mad(Vector128.Load(a + p + 4), x1, s1);
            s2 = PortableKernels.Mad(Vector128.Load(a + p + 8), x2, s2); s3 = PortableKernels.Mad(Vector128.Load(a + p + 12), x3, s3);
            TRow.Load8x2(b, p + 16, out x0, out x1);
            TRow.Load8x2(b, p + 24, out x2, out x3);
            s4 = PortableKernels.Mad(Vector128.Load(a + p + 16), x0, s4); s5 = PortableKernels.Mad(Vector128.Load(a + p + 20), x1, s5);
            s6 = PortableKernels.Mad(Vector128.Load(a + p + 24), x2, s6); s7 = PortableKernels.Mad(Vector128.Load(a + p + 28), x3, s7);
        }
        for (; p + 8 <= k; p += 8)
        {
            TRow.Load8x2(b, p, out var x0, out var x1);
            s0 = PortableKernels.Mad(Vector128.Load(a + p), x0, s0); s1 = PortableKernels.Mad(Vector128.Load(a + p + 4), x1, s1);
        }
        float r = Vector128.Sum(((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)));
        for (; p < k; p++) r = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b, p), r);
        return r;
    }

    /// <summary>One A row against four consecutive B rows: each A vector feeds four multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4RowsPortable<TRow>(int k, float* a, byte* b0, nint rowBytes, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat
    {
        byte* b1 = b0 + rowBytes, b2 = b1 + rowBytes, b3 = b2 + rowBytes;
        Vector128<float> s0 = default, s1 = default, s2 = default, s3 = default, t0 = default, t1 = default, t2 = default, t3 = default;
        nint p = 0;
        for (; p + 8 <= k; p += 8)
        {
            var x0 = Vector128.Load(a + p); var x1 = Vector128.Load(a + p + 4);
            TRow.Load8x2(b0, p, out var y0, out var y1); s0 = PortableKernels.Mad(x0, y0, s0); t0 = PortableKernels.Mad(x1, y1, t0);
            TRow.Load8x2(b1, p, out y0, out y1); s1 = PortableKernels.Mad(x0, y0, s1); t1 = PortableKernels.Mad(x1, y1, t1);
            TRow.Load8x2(b2, p, out y0, out y1); s2 = PortableKernels.Mad(x0, y0, s2); t2 = PortableKernels.Mad(x1, y1, t2);
            TRow.Load8x2(b3, p, out y0, out y1); s3 = PortableKernels.Mad(x0, y0, s3); t3 = PortableKernels.Mad(x1, y1, t3);
        }
        r0 = Vector128.Sum(s0 + t0); r1 = Vector128.Sum(s1 + t1); r2 = Vector128.Sum(s2 + t2); r3 = Vector128.Sum(s3 + t3);
        for (; p < k; p++) { r0 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b0, p), r0); r1 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b1, p), r1); r2 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b2, p), r2); r3 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b3, p), r3); }
    }

    /// <summary>The scalar tail of the four-row kernels: elements p..k−1 of B's row into each row's sum.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tail4<TRow>(nint p, int k, float* a0, float* a1, float* a2, float* a3, byte* b,
        ref float r0, ref float r1, ref float r2, ref float r3) where TRow : struct, IRowFormat
    {
        for (; p < k; p++)
        {
            float bp = TRow.Load1(b, p);
            r0 = MathF.FusedMultiplyAdd(a0[p], bp, r0);
            r1 = MathF.FusedMultiplyAdd(a1[p], bp, r1);
            r2 = MathF.FusedMultiplyAdd(a2[p], bp, r2);
            r3 = MathF.FusedMultiplyAdd(a3[p], bp, r3);
        }
    }

    /// <summary>Four A rows against one B row: each widened B vector feeds four multiply-adds.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x1Portable<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b,
        out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat
    {
        Vector128<float> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector128<float> t0 = default, t1 = default, t2 = default, t3 = default;
        nint p = 0;
        for (; p + 8 <= k; p += 8)
        {
            TRow.Load8x2(b, p, out var x, out var y);
            s0 = PortableKernels.Mad(Vector128.Load(a0 + p), x, s0); t0 = PortableKernels.Mad(Vector128.Load(a0 + p + 4), y, t0);
            s1 = PortableKernels.Mad(Vector128.Load(a1 + p), x, s1); t1 = PortableKernels.Mad(Vector128.Load(a1 + p + 4), y, t1);
            s2 = PortableKernels.Mad(Vector128.Load(a2 + p), x, s2); t2 = PortableKernels.Mad(Vector128.Load(a2 + p + 4), y, t2);
            s3 = PortableKernels.Mad(Vector128.Load(a3 + p), x, s3); t3 = PortableKernels.Mad(Vector128.Load(a3 + p + 4), y, t3);
        }
        r0 = Vector128.Sum(s0 + t0); r1 = Vector128.Sum(s1 + t1); r2 = Vector128.Sum(s2 + t2); r3 = Vector128.Sum(s3 + t3);
        Tail4<TRow>(p, k, a0, a1, a2, a3, b, ref r0, ref r1, ref r2, ref r3);
    }

    /// <summary>Output rows j0..j1−1 (one thread's share) with the kernels of <typeparamref name="TDots"/>.</summary>
    private static void NTRange<TRow, TDots>(int m, int k, float* a, nint lda, byte* b, nint ldb, float* c, nint ldc, float* bias, bool accumulate, int j0, int j1)
        where TRow : struct, IRowFormat where TDots : struct, IDots
    {
        nint rowBytes = ldb * TRow.ElementSize;
        if (m == 1)
        {
            int jj = j0;
            if (k > SingleRowMaxK)
            {
                // A no longer fits in L1 beside the streams: four rows share each A load (a quarter of the L2 traffic),
                // and (AVX path) software prefetch keeps the four streams ahead. Measured ~1.8x faster than one row at k = 18944.
                for (; jj + 4 <= j1; jj += 4)
                {
                    TDots.Dot4Rows<TRow>(k, a, b + jj * rowBytes, rowBytes, out float r0, out float r1, out float r2, out float r3);
                    c[jj] = Finish(r0, c[jj], bias, jj, accumulate);
                    c[jj + 1] = Finish(r1, c[jj + 1], bias, jj + 1, accumulate);
                    c[jj + 2] = Finish(r2, c[jj + 2], bias, jj + 2, accumulate);
                    c[jj + 3] = Finish(r3, c[jj + 3], bias, jj + 3, accumulate);
                }
            }
            // Short rows: whole rows, so each stream of B is sequential, which the hardware prefetcher follows best
            // (interleaving 4 rows, 4 streams 7 KB apart, measured ~40% slower at k = 3584). With AVX-512's 32 registers
            // the range is walked as two halves at once (row jj + i beside row jj + half + i): two long streams per core
            // keep more lines in flight than one (see QuantGemm.GemvRangeTwoStreams); each row is computed with the
            // one-row kernel's operations, so its bits do not depend on its partner or the chunking.
            if (typeof(TDots) == typeof(AvxDots) && Avx512F.VL.IsSupported && j1 - jj >= 2)
            {
                int half = (j1 - jj) / 2, start = jj;
                for (int i = 0; i < half; i++)
                {
                    int ja = start + i, jb = start + half + i;
                    Dot2<TRow>(k, a, b + ja * rowBytes, b + jb * rowBytes, out float ra, out float rb);
                    c[ja] = Finish(ra, c[ja], bias, ja, accumulate);
                    c[jb] = Finish(rb, c[jb], bias, jb, accumulate);
                }
                jj = start + 2 * half;
            }
            for (; jj < j1; jj++) c[jj] = Finish(TDots.Dot<TRow>(k, a, b + jj * rowBytes), c[jj], bias, jj, accumulate);
            return;
        }
        // m = 2..4: four A rows, the missing ones aliased to row 0 (wasted FMAs are free next to the memory traffic).
        float* a0 = a, a1 = m > 1 ? a + lda : a, a2 = m > 2 ? a + 2 * lda : a, a3 = m > 3 ? a + 3 * lda : a;
        // f32 rows take the same 512-bit kernel as bf16, so bf16 weights keep giving their f32 widening's bits
        bool zmm = typeof(TDots) == typeof(AvxDots) && (typeof(TRow) == typeof(Bf16Rows) || typeof(TRow) == typeof(F32Rows)) && Avx512F.IsSupported;
        for (int j = j0; j < j1; j++)
        {
            float r0, r1, r2, r3;
            if (zmm) Dot4x1Avx512<TRow>(k, a0, a1, a2, a3, b + j * rowBytes, out r0, out r1, out r2, out r3);
            else TDots.Dot4x1<TRow>(k, a0, a1, a2, a3, b + j * rowBytes, out r0, out r1, out r2, out r3);
            c[j] = Finish(r0, c[j], bias, j, accumulate);
            c[ldc + j] = Finish(r1, c[ldc + j], bias, j, accumulate);
            if (m > 2) c[2 * ldc + j] = Finish(r2, c[2 * ldc + j], bias, j, accumulate);
            if (m > 3) c[3 * ldc + j] = Finish(r3, c[3 * ldc + j], bias, j, accumulate);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Finish(float s, float old, float* bias, int j, bool accumulate)
    {
        if (bias != null) s += bias[j];
        return accumulate ? old + s : s;
    }

    /// <summary>One A row against one B row: eight accumulators, enough independent FMA chains to cover the FMA latency
    /// at the rate memory delivers bf16 elements.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static float Dot<TRow>(int k, float* a, byte* b) where TRow : struct, IRowFormat
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        nint p = 0;
        for (; p + 64 <= k; p += 64)
        {
            // Software prefetch PrefetchElements ahead: rows of one thread are consecutive, so this runs into the next
            // row and keeps lines in flight when other processes share the memory bus (gate/up 18944×3584 on the loaded
            // machine, load ~40: 8.8 → 13.2 GB per CPU-second; the four-row kernel below already prefetched).
            nint ahead = (p + PrefetchElements) * TRow.ElementSize;
            Sse.Prefetch0(b + ahead);
            if (TRow.ElementSize * 64 > 64) Sse.Prefetch0(b + ahead + 64);
            if (TRow.ElementSize * 64 > 128) { Sse.Prefetch0(b + ahead + 128); Sse.Prefetch0(b + ahead + 192); }
            s0 = Fma.MultiplyAdd(Avx.LoadVector256(a + p), TRow.Load8(b, p), s0);
            s1 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 8), TRow.Load8(b, p + 8), s1);
            s2 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 16), TRow.Load8(b, p + 16), s2);
            s3 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 24), TRow.Load8(b, p + 24), s3);
            s4 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 32), TRow.Load8(b, p + 32), s4);
            s5 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 40), TRow.Load8(b, p + 40), s5);
            s6 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 48), TRow.Load8(b, p + 48), s6);
            s7 = Fma.MultiplyAdd(Avx.LoadVector256(a + p + 56), TRow.Load8(b, p + 56), s7);
        }
        for (; p + 8 <= k; p += 8) s0 = Fma.MultiplyAdd(Avx.LoadVector256(a + p), TRow.Load8(b, p), s0);
        float r = Vector256.Sum(Avx.Add(Avx.Add(Avx.Add(s0, s1), Avx.Add(s2, s3)), Avx.Add(Avx.Add(s4, s5), Avx.Add(s6, s7))));
        for (; p < k; p++) r = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b, p), r);
        return r;
    }

    /// <summary><see cref="Dot"/> on two B rows at once (two streams), each row in exactly <see cref="Dot"/>'s order
    /// (16 accumulators: AVX-512 machines only, where ymm16–31 exist).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot2<TRow>(int k, float* a, byte* b, byte* d, out float rb, out float rd) where TRow : struct, IRowFormat
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
        Vector256<float> t0 = default, t1 = default, t2 = default, t3 = default, t4 = default, t5 = default, t6 = default, t7 = default;
        nint p = 0;
        for (; p + 64 <= k; p += 64)
        {
            nint ahead = (p + PrefetchElements) * TRow.ElementSize;
            Sse.Prefetch0(b + ahead); Sse.Prefetch0(d + ahead);
            if (TRow.ElementSize * 64 > 64) { Sse.Prefetch0(b + ahead + 64); Sse.Prefetch0(d + ahead + 64); }
            if (TRow.ElementSize * 64 > 128) { Sse.Prefetch0(b + ahead + 128); Sse.Prefetch0(b + ahead + 192); Sse.Prefetch0(d + ahead + 128); Sse.Prefetch0(d + ahead + 192); }
            var x0 = Avx.LoadVector256(a + p); var x1 = Avx.LoadVector256(a + p + 8);
            var x2 = Avx.LoadVector256(a + p + 16); var x3 = Avx.LoadVector256(a + p + 24);
            s0 = Fma.MultiplyAdd(x0, TRow.Load8(b, p), s0); t0 = Fma.MultiplyAdd(x0, TRow.Load8(d, p), t0);
            s1 = Fma.MultiplyAdd(x1, TRow.Load8(b, p + 8), s1); t1 = Fma.MultiplyAdd(x1, TRow.Load8(d, p + 8), t1);
            s2 = Fma.MultiplyAdd(x2, TRow.Load8(b, p + 16), s2); t2 = Fma.MultiplyAdd(x2, TRow.Load8(d, p + 16), t2);
            s3 = Fma.MultiplyAdd(x3, TRow.Load8(b, p + 24), s3); t3 = Fma.MultiplyAdd(x3, TRow.Load8(d, p + 24), t3);
            var x4 = Avx.LoadVector256(a + p + 32); var x5 = Avx.LoadVector256(a + p + 40);
            var x6 = Avx.LoadVector256(a + p + 48); var x7 = Avx.LoadVector256(a + p + 56);
            s4 = Fma.MultiplyAdd(x4, TRow.Load8(b, p + 32), s4); t4 = Fma.MultiplyAdd(x4, TRow.Load8(d, p + 32), t4);
            s5 = Fma.MultiplyAdd(x5, TRow.Load8(b, p + 40), s5); t5 = Fma.MultiplyAdd(x5, TRow.Load8(d, p + 40), t5);
            s6 = Fma.MultiplyAdd(x6, TRow.Load8(b, p + 48), s6); t6 = Fma.MultiplyAdd(x6, TRow.Load8(d, p + 48), t6);
            s7 = Fma.MultiplyAdd(x7, TRow.Load8(b, p + 56), s7); t7 = Fma.MultiplyAdd(x7, TRow.Load8(d, p + 56), t7);
        }
        for (; p + 8 <= k; p += 8)
        {
            var x = Avx.LoadVector256(a + p);
            s0 = Fma.MultiplyAdd(x, TRow.Load8(b, p), s0); t0 = Fma.MultiplyAdd(x, TRow.Load8(d, p), t0);
        }
        float r = Vector256.Sum(Avx.Add(Avx.Add(Avx.Add(s0, s1), Avx.Add(s2, s3)), Avx.Add(Avx.Add(s4, s5), Avx.Add(s6, s7))));
        float q = Vector256.Sum(Avx.Add(Avx.Add(Avx.Add(t0, t1), Avx.Add(t2, t3)), Avx.Add(Avx.Add(t4, t5), Avx.Add(t6, t7))));
        for (; p < k; p++) { r = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b, p), r); q = MathF.FusedMultiplyAdd(a[p], TRow.Load1(d, p), q); }
        rb = r; rd = q;
    }

    /// <summary>One A row against four consecutive B rows, prefetching each stream <see cref="PrefetchElements"/> ahead.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4Rows<TRow>(int k, float* a, byte* b0, nint rowBytes, out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat
    {
        byte* b1 = b0 + rowBytes, b2 = b1 + rowBytes, b3 = b2 + rowBytes;
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default, t0 = default, t1 = default, t2 = default, t3 = default;
        nint p = 0;
        for (; p + 16 <= k; p += 16)
        {
            // One prefetch per stream per 16 elements: every 64-byte line for f32, each line twice for bf16 (cheap).
            // Prefetching past the end of B never faults, so the last rows need no special case.
            nint ahead = (p + PrefetchElements) * TRow.ElementSize;
            Sse.Prefetch0(b0 + ahead); Sse.Prefetch0(b1 + ahead); Sse.Prefetch0(b2 + ahead); Sse.Prefetch0(b3 + ahead);
            var x0 = Avx.LoadVector256(a + p); var x1 = Avx.LoadVector256(a + p + 8);
            s0 = Fma.MultiplyAdd(x0, TRow.Load8(b0, p), s0); t0 = Fma.MultiplyAdd(x1, TRow.Load8(b0, p + 8), t0);
            s1 = Fma.MultiplyAdd(x0, TRow.Load8(b1, p), s1); t1 = Fma.MultiplyAdd(x1, TRow.Load8(b1, p + 8), t1);
            s2 = Fma.MultiplyAdd(x0, TRow.Load8(b2, p), s2); t2 = Fma.MultiplyAdd(x1, TRow.Load8(b2, p + 8), t2);
            s3 = Fma.MultiplyAdd(x0, TRow.Load8(b3, p), s3); t3 = Fma.MultiplyAdd(x1, TRow.Load8(b3, p + 8), t3);
        }
        r0 = Vector256.Sum(Avx.Add(s0, t0)); r1 = Vector256.Sum(Avx.Add(s1, t1)); r2 = Vector256.Sum(Avx.Add(s2, t2)); r3 = Vector256.Sum(Avx.Add(s3, t3));
        for (; p < k; p++) { r0 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b0, p), r0); r1 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b1, p), r1); r2 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b2, p), r2); r3 = MathF.FusedMultiplyAdd(a[p], TRow.Load1(b3, p), r3); }
    }

    /// <summary>Four A rows against one B row: each widened B vector feeds four FMAs.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x1<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b,
        out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat
    {
        Vector256<float> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector256<float> t0 = default, t1 = default, t2 = default, t3 = default;
        nint p = 0;
        for (; p + 16 <= k; p += 16)
        {
            var x = TRow.Load8(b, p);
            var y = TRow.Load8(b, p + 8);
            s0 = Fma.MultiplyAdd(Avx.LoadVector256(a0 + p), x, s0); t0 = Fma.MultiplyAdd(Avx.LoadVector256(a0 + p + 8), y, t0);
            s1 = Fma.MultiplyAdd(Avx.LoadVector256(a1 + p), x, s1); t1 = Fma.MultiplyAdd(Avx.LoadVector256(a1 + p + 8), y, t1);
            s2 = Fma.MultiplyAdd(Avx.LoadVector256(a2 + p), x, s2); t2 = Fma.MultiplyAdd(Avx.LoadVector256(a2 + p + 8), y, t2);
            s3 = Fma.MultiplyAdd(Avx.LoadVector256(a3 + p), x, s3); t3 = Fma.MultiplyAdd(Avx.LoadVector256(a3 + p + 8), y, t3);
        }
        if (p + 8 <= k)
        {
            var x = TRow.Load8(b, p);
            s0 = Fma.MultiplyAdd(Avx.LoadVector256(a0 + p), x, s0);
            s1 = Fma.MultiplyAdd(Avx.LoadVector256(a1 + p), x, s1);
            s2 = Fma.MultiplyAdd(Avx.LoadVector256(a2 + p), x, s2);
            s3 = Fma.MultiplyAdd(Avx.LoadVector256(a3 + p), x, s3);
            p += 8;
        }
        r0 = Vector256.Sum(Avx.Add(s0, t0)); r1 = Vector256.Sum(Avx.Add(s1, t1));
        r2 = Vector256.Sum(Avx.Add(s2, t2)); r3 = Vector256.Sum(Avx.Add(s3, t3));
        Tail4<TRow>(p, k, a0, a1, a2, a3, b, ref r0, ref r1, ref r2, ref r3);
    }

    /// <summary><see cref="Dot4x1"/> with 512-bit vectors for bf16 and f32 rows (batched decoding): per 32 elements two
    /// widenings and eight 16-lane FMAs, where the 256-bit kernel spends four widenings and sixteen 8-lane FMAs; a batch of
    /// four is bound by the multiply-adds, not by memory (bf16, batch 4: 9.4 GB/s on two cores against ~16 for one row).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Dot4x1Avx512<TRow>(int k, float* a0, float* a1, float* a2, float* a3, byte* b,
        out float r0, out float r1, out float r2, out float r3) where TRow : struct, IRowFormat
    {
        Vector512<float> s0 = default, s1 = default, s2 = default, s3 = default;
        Vector512<float> t0 = default, t1 = default, t2 = default, t3 = default;
        ushort* w = (ushort*)b;
        nint p = 0;
        for (; p + 32 <= k; p += 32)
        {
            Vector512<float> x, y;
            if (typeof(TRow) == typeof(Bf16Rows))
            {
                Sse.Prefetch0(w + p + PrefetchElements);
                x = Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(w + p)), 16).AsSingle();
                y = Avx512F.ShiftLeftLogical(Avx512F.ConvertToVector512Int32(Vector256.Load(w + p + 16)), 16).AsSingle();
            }
            else
            {
                x = Vector512.Load((float*)b + p);
                y = Vector512.Load((float*)b + p + 16);
            }
            s0 = Avx512F.FusedMultiplyAdd(Vector512.Load(a0 + p), x, s0); t0 = Avx512F.FusedMultiplyAdd(Vector512.Load(a0 + p + 16), y, t0);
            s1 = Avx512F.FusedMultiplyAdd(Vector512.Load(a1 + p), x, s1); t1 = Avx512F.FusedMultiplyAdd(Vector512.Load(a1 + p + 16), y, t1);
            s2 = Avx512F.FusedMultiplyAdd(Vector512.Load(a2 + p), x, s2); t2 = Avx512F.FusedMultiplyAdd(Vector512.Load(a2 + p + 16), y, t2);
            s3 = Avx512F.FusedMultiplyAdd(Vector512.Load(a3 + p), x, s3); t3 = Avx512F.FusedMultiplyAdd(Vector512.Load(a3 + p + 16), y, t3);
        }
        r0 = Vector512.Sum(s0 + t0); r1 = Vector512.Sum(s1 + t1); r2 = Vector512.Sum(s2 + t2); r3 = Vector512.Sum(s3 + t3);
        Tail4<TRow>(p, k, a0, a1, a2, a3, b, ref r0, ref r1, ref r2, ref r3);
    }

    /// <summary>C[m≤4, n] = A · B with B [k,n] row-major: B rows are streamed contiguously into per-row accumulators
    /// that stay in L1 (column chunks of <see cref="NNChunk"/>); threads split the columns.</summary>
    public static void NN(GemmPath path, int m, int n, int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate, int maxThreads)
    {
        bool portable = path == GemmPath.Portable;
        int chunks = (n + NNChunk - 1) / NNChunk;
        int threads = (long)n * k < ParallelThreshold ? 1 : Math.Min(Math.Max(1, maxThreads), chunks);
        if (threads <= 1) { NNRange(portable, m, k, a, lda, b, ldb, c, ldc, accumulate, 0, n); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var (s, e) = Gemm.Part(n, threads, t, 8);
            if (s < e) NNRange(portable, m, k, a, lda, b, ldb, c, ldc, accumulate, s, e);
        });
    }

    private const int NNChunk = 512;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void NNRange(bool portable, int m, int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate, int j0, int j1)
    {
        float* acc = stackalloc float[MaxRows * NNChunk];
        for (int jc = j0; jc < j1; jc += NNChunk)
        {
            int w = Math.Min(NNChunk, j1 - jc);
            int wv = w & ~7;
            new Span<float>(acc, MaxRows * NNChunk).Clear();
            for (int p = 0; p < k; p++)
            {
                float* bp = b + p * ldb + jc;
                for (int i = 0; i < m; i++)
                {
                    float* ai = acc + i * NNChunk;
                    float av = a[i * lda + p];
                    int j = 0;
                    if (portable)
                    {
                        var avq = Vector128.Create(av);
                        for (; j + 4 <= w; j += 4) PortableKernels.Mad(avq, Vector128.Load(bp + j), Vector128.Load(ai + j)).Store(ai + j);
                    }
                    else
                    {
                        var avv = Vector256.Create(av);
                        for (; j < wv; j += 8) Avx.Store(ai + j, Fma.MultiplyAdd(avv, Avx.LoadVector256(bp + j), Avx.LoadVector256(ai + j)));
                    }
                    for (; j < w; j++) ai[j] = MathF.FusedMultiplyAdd(av, bp[j], ai[j]);
                }
            }
            for (int i = 0; i < m; i++)
            {
                float* ci = c + i * ldc + jc;
                float* ai = acc + i * NNChunk;
                for (int j = 0; j < w; j++) ci[j] = accumulate ? ci[j] + ai[j] : ai[j];
            }
        }
    }
}
