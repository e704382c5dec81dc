using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>How B is laid out in memory for the blocked GEMM.</summary>
internal enum BLayout
{
    /// <summary>f32 [n,k] row-major (PyTorch Linear weight).</summary>
    F32NT,
    /// <summary>f32 [k,n] row-major.</summary>
    F32NN,
    /// <summary>bf16 bits [n,k] row-major, widened while packing.</summary>
    Bf16NT,
}

/// <summary>
/// Goto/BLIS-style GEMM: B is packed into KC×NC panels of 16-column micro-panels, A into MC×KC blocks of 6-row
/// micro-panels, and a 6×16 AVX2/FMA register tile (12 accumulators) does the arithmetic. On the portable path
/// (<see cref="GemmPath.Portable"/>) the same packed layout is packed with plain or 128-bit moves and swept by
/// <see cref="PortableKernels"/>' 6×8 <see cref="Vector128{T}"/> tile, so both paths share the blocking and the k order.
/// </summary>
/// <remarks>
/// Threads split C into disjoint row or column ranges and each runs the whole blocked loop on its own packed buffers.
/// That duplicates the packing of the operand that is not split (a few percent at encoder shapes) but needs no barrier,
/// so it cannot deadlock when the thread pool is busy and Parallel.For runs the parts one after another.
/// </remarks>
internal static unsafe class GemmBlocked
{
    public const int MR = 6, NR = 16;

    // Blocking for Zen-class cores (48 KB L1d, 1 MB L2, shared L3): a 16×KC micro-panel of B (16 KB) stays in L1,
    // the MC×KC block of A (~144 KB) in L2, the KC×NC panel of B (2 MB) in L3.
    internal static int KC = 256, MC = 144, NC = 2048;

    /// <summary>Below this many multiply-adds a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1L << 20;

    public static void Run(GemmPath path, BLayout layout, int m, int n, int k, float* a, int lda, void* b, int ldb, float* c, int ldc,
        float* bias, bool accumulate, int maxThreads)
    {
        int tilesM = (m + MR - 1) / MR, tilesN = (n + NR - 1) / NR;
        int threads = (long)m * n * k < ParallelThreshold ? 1 : Math.Max(1, maxThreads);
        // Split the larger side: the thread then duplicates packing of the smaller operand only.
        bool splitM = tilesM >= tilesN ? tilesM >= threads || tilesN < threads : tilesN < threads && tilesM >= threads;
        threads = Math.Min(threads, splitM ? tilesM : tilesN);
        var job = new Job(path == GemmPath.Portable, layout, k, a, lda, b, ldb, c, ldc, bias, accumulate);
        if (threads <= 1) { job.Block(0, m, 0, n); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            if (splitM) { var (s, e) = Gemm.Part(m, threads, t, MR); if (s < e) job.Block(s, e, 0, n); }
            else { var (s, e) = Gemm.Part(n, threads, t, NR); if (s < e) job.Block(0, m, s, e); }
        });
    }

    private readonly struct Job(bool portable, BLayout layout, int k, float* a, int lda, void* b, int ldb, float* c, int ldc, float* bias, bool accumulate)
    {
        public void Block(int m0, int m1, int n0, int n1)
        {
            var ws = Workspace.Rent();
            try
            {
                int kcMax = KC, mcMax = MC, ncMax = NC;
                ws.Ensure(mcMax, kcMax, ncMax);
                for (int jc = n0; jc < n1; jc += ncMax)
                {
                    int nc = Math.Min(ncMax, n1 - jc);
                    for (int pc = 0; pc < k; pc += kcMax)
                    {
                        int kc = Math.Min(kcMax, k - pc);
                        switch (layout)
                        {
                            case BLayout.F32NT: PackBNT<F32Rows>(portable, (byte*)b, ldb, jc, nc, pc, kc, ws.Bp); break;
                            case BLayout.Bf16NT: PackBNT<Bf16Rows>(portable, (byte*)b, ldb, jc, nc, pc, kc, ws.Bp); break;
                            default: PackBNN(portable, (float*)b, ldb, jc, nc, pc, kc, ws.Bp); break;
                        }
                        bool first = pc == 0;
                        bool load = !first || accumulate;
                        float* biasBlock = first && bias != null ? bias + jc : null;
                        for (int ic = m0; ic < m1; ic += mcMax)
                        {
                            int mc = Math.Min(mcMax, m1 - ic);
                            PackA(portable, a, lda, ic, mc, pc, kc, ws.Ap);
                            Macro(portable, mc, nc, kc, ws.Ap, ws.Bp, c + (nint)ic * ldc + jc, ldc, load, biasBlock, ws.Tile);
                        }
                    }
                }
            }
            finally { Workspace.Return(ws); }
        }
    }

    private static void Macro(bool portable, int mc, int nc, int kc, float* ap, float* bp, float* c, nint ldc, bool load, float* bias, float* tile)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* bpj = bp + (nint)jr * kc;
            float* biasj = bias == null ? null : bias + jr;
            for (int ir = 0; ir < mc; ir += MR)
            {
                int mr = Math.Min(MR, mc - ir);
                float* api = ap + (nint)ir * kc;
                float* cij = c + ir * ldc + jr;
                if (mr == MR && nr == NR)
                {
                    if (portable) PortableKernels.Tile(kc, api, bpj, NR, cij, ldc, load, biasj, biasPerRow: false);
                    else Kernel6x16(kc, api, bpj, cij, ldc, load, biasj, biasPerRow: false);
                }
                else
                {
                    // Edge tile: full 6×16 into scratch (packed panels are zero-padded), then merge the valid part
                    // with the same operation order as the kernel so edge and interior elements round alike.
                    if (portable) PortableKernels.Tile(kc, api, bpj, NR, tile, NR, false, null, biasPerRow: false);
                    else Kernel6x16(kc, api, bpj, tile, NR, false, null, biasPerRow: false);
                    for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++)
                    {
                        float v = tile[i * NR + j];
                        if (biasj != null) v += biasj[j];
                        if (load) v = cij[i * ldc + j] + v;
                        cij[i * ldc + j] = v;
                    }
                }
            }
        }
    }

    /// <summary>
    /// The 6×16 AVX2/FMA register tile (12 accumulators), shared by this GEMM and <see cref="ConvGemm"/>: C[6, 16] (+)=
    /// A-panel · B-panel over kc, one FMA per k in k order. The bias is per column (16 values, a Linear's) or, with
    /// <paramref name="biasPerRow"/>, per row (6 values, a conv's output channels); it is added to the tile's sum before
    /// the load of C, as the edge-tile merges do.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel6x16(int kc, float* a, float* b, float* c, nint ldc, bool load, float* bias, bool biasPerRow)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadAlignedVector256(b);
            Vector256<float> b1 = Avx.LoadAlignedVector256(b + 8);
            Vector256<float> av = Avx.BroadcastScalarToVector256(a);
            c00 = Fma.MultiplyAdd(av, b0, c00); c01 = Fma.MultiplyAdd(av, b1, c01);
            av = Avx.BroadcastScalarToVector256(a + 1);
            c10 = Fma.MultiplyAdd(av, b0, c10); c11 = Fma.MultiplyAdd(av, b1, c11);
            av = Avx.BroadcastScalarToVector256(a + 2);
            c20 = Fma.MultiplyAdd(av, b0, c20); c21 = Fma.MultiplyAdd(av, b1, c21);
            av = Avx.BroadcastScalarToVector256(a + 3);
            c30 = Fma.MultiplyAdd(av, b0, c30); c31 = Fma.MultiplyAdd(av, b1, c31);
            av = Avx.BroadcastScalarToVector256(a + 4);
            c40 = Fma.MultiplyAdd(av, b0, c40); c41 = Fma.MultiplyAdd(av, b1, c41);
            av = Avx.BroadcastScalarToVector256(a + 5);
            c50 = Fma.MultiplyAdd(av, b0, c50); c51 = Fma.MultiplyAdd(av, b1, c51);
            a += MR;
            b += NR;
        }
        StoreRow(c, c00, c01, load, bias, biasPerRow, 0); c += ldc;
        StoreRow(c, c10, c11, load, bias, biasPerRow, 1); c += ldc;
        StoreRow(c, c20, c21, load, bias, biasPerRow, 2); c += ldc;
        StoreRow(c, c30, c31, load, bias, biasPerRow, 3); c += ldc;
        StoreRow(c, c40, c41, load, bias, biasPerRow, 4); c += ldc;
        StoreRow(c, c50, c51, load, bias, biasPerRow, 5);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector256<float> x0, Vector256<float> x1, bool load, float* bias, bool biasPerRow, int row)
    {
        if (bias != null)
        {
            if (biasPerRow) { var bv = Vector256.Create(bias[row]); x0 = Avx.Add(x0, bv); x1 = Avx.Add(x1, bv); }
            else { x0 = Avx.Add(x0, Avx.LoadVector256(bias)); x1 = Avx.Add(x1, Avx.LoadVector256(bias + 8)); }
        }
        if (load) { x0 = Avx.Add(Avx.LoadVector256(c), x0); x1 = Avx.Add(Avx.LoadVector256(c + 8), x1); }
        Avx.Store(c, x0);
        Avx.Store(c + 8, x1);
    }

    /// <summary>Packs A[ic..ic+mc, pc..pc+kc] into 6-row micro-panels (k-major, 6 values per k), zero-padding the last panel.</summary>
    private static void PackA(bool portable, float* a, nint lda, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int mr = Math.Min(MR, mc - ir);
            float* d = dst + (nint)ir * kc;
            float* r0 = a + (ic + ir) * lda + pc;
            int p = 0;
            if (mr == MR)
            {
                float* r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda;
                // The portable path packs with the scalar loop below (O(mk) next to the O(mnk) tile work).
                if (!portable)
                for (; p + 8 <= kc; p += 8)
                {
                    var x0 = Avx.LoadVector256(r0 + p); var x1 = Avx.LoadVector256(r1 + p);
                    var x2 = Avx.LoadVector256(r2 + p); var x3 = Avx.LoadVector256(r3 + p);
                    var x4 = Avx.LoadVector256(r4 + p); var x5 = Avx.LoadVector256(r5 + p);
                    Vector256<float> x6 = default, x7 = default;
                    Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                    // Each store writes 8 floats into a 6-float slot; the 2 extra are overwritten by the next store,
                    // and the last one spills into the next panel (packed later) or the workspace padding.
                    float* q = d + p * MR;
                    Avx.Store(q, x0); Avx.Store(q + 6, x1); Avx.Store(q + 12, x2); Avx.Store(q + 18, x3);
                    Avx.Store(q + 24, x4); Avx.Store(q + 30, x5); Avx.Store(q + 36, x6); Avx.Store(q + 42, x7);
                }
                for (; p < kc; p++)
                {
                    float* q = d + p * MR;
                    q[0] = r0[p]; q[1] = r1[p]; q[2] = r2[p]; q[3] = r3[p]; q[4] = r4[p]; q[5] = r5[p];
                }
            }
            else
            {
                for (; p < kc; p++)
                {
                    float* q = d + p * MR;
                    for (int i = 0; i < MR; i++) q[i] = i < mr ? r0[i * lda + p] : 0f;
                }
            }
        }
    }

    /// <summary>Packs the [n,k] row-major B[jc..jc+nc, pc..pc+kc] into 16-column micro-panels (k-major), widening to f32.</summary>
    private static void PackBNT<TRow>(bool portable, byte* b, nint ldb, int jc, int nc, int pc, int kc, float* dst) where TRow : struct, IRowFormat
    {
        nint rowBytes = ldb * TRow.ElementSize;
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (nint)jr * kc;
            byte* r0 = b + (jc + jr) * rowBytes + (nint)pc * TRow.ElementSize;
            if (nr == NR)
            {
                int p = 0;
                if (!portable)
                for (; p + 8 <= kc; p += 8)
                {
                    for (int half = 0; half < 2; half++)
                    {
                        byte* h = r0 + half * 8 * rowBytes;
                        var x0 = TRow.Load8(h, p); var x1 = TRow.Load8(h + rowBytes, p);
                        var x2 = TRow.Load8(h + 2 * rowBytes, p); var x3 = TRow.Load8(h + 3 * rowBytes, p);
                        var x4 = TRow.Load8(h + 4 * rowBytes, p); var x5 = TRow.Load8(h + 5 * rowBytes, p);
                        var x6 = TRow.Load8(h + 6 * rowBytes, p); var x7 = TRow.Load8(h + 7 * rowBytes, p);
                        Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                        float* q = d + p * NR + half * 8;
                        Avx.StoreAligned(q, x0); Avx.StoreAligned(q + 16, x1); Avx.StoreAligned(q + 32, x2); Avx.StoreAligned(q + 48, x3);
                        Avx.StoreAligned(q + 64, x4); Avx.StoreAligned(q + 80, x5); Avx.StoreAligned(q + 96, x6); Avx.StoreAligned(q + 112, x7);
                    }
                }
                for (; p < kc; p++)
                    for (int j = 0; j < NR; j++) d[p * NR + j] = TRow.Load1(r0 + j * rowBytes, p);
            }
            else
            {
                for (int p = 0; p < kc; p++)
                    for (int j = 0; j < NR; j++) d[p * NR + j] = j < nr ? TRow.Load1(r0 + j * rowBytes, p) : 0f;
            }
        }
    }

    /// <summary>Packs the [k,n] row-major B[pc..pc+kc, jc..jc+nc] into 16-column micro-panels (k-major).</summary>
    private static void PackBNN(bool portable, float* b, nint ldb, int jc, int nc, int pc, int kc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int nr = Math.Min(NR, nc - jr);
            float* d = dst + (nint)jr * kc;
            float* s = b + pc * ldb + jc + jr;
            if (nr == NR && portable)
            {
                for (int p = 0; p < kc; p++, s += ldb) PortableKernels.Copy(s, d + p * NR, NR);
            }
            else if (nr == NR)
            {
                for (int p = 0; p < kc; p++, s += ldb)
                {
                    Avx.StoreAligned(d + p * NR, Avx.LoadVector256(s));
                    Avx.StoreAligned(d + p * NR + 8, Avx.LoadVector256(s + 8));
                }
            }
            else
            {
                for (int p = 0; p < kc; p++, s += ldb)
                    for (int j = 0; j < NR; j++) d[p * NR + j] = j < nr ? s[j] : 0f;
            }
        }
    }

    /// <summary>In-register 8×8 transpose: on return x_q holds column q of the input rows.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Transpose8x8(ref Vector256<float> x0, ref Vector256<float> x1, ref Vector256<float> x2, ref Vector256<float> x3,
        ref Vector256<float> x4, ref Vector256<float> x5, ref Vector256<float> x6, ref Vector256<float> x7)
    {
        var t0 = Avx.UnpackLow(x0, x1); var t1 = Avx.UnpackHigh(x0, x1);
        var t2 = Avx.UnpackLow(x2, x3); var t3 = Avx.UnpackHigh(x2, x3);
        var t4 = Avx.UnpackLow(x4, x5); var t5 = Avx.UnpackHigh(x4, x5);
        var t6 = Avx.UnpackLow(x6, x7); var t7 = Avx.UnpackHigh(x6, x7);
        var u0 = Avx.Shuffle(t0, t2, 0x44); var u1 = Avx.Shuffle(t0, t2, 0xEE);
        var u2 = Avx.Shuffle(t1, t3, 0x44); var u3 = Avx.Shuffle(t1, t3, 0xEE);
        var u4 = Avx.Shuffle(t4, t6, 0x44); var u5 = Avx.Shuffle(t4, t6, 0xEE);
        var u6 = Avx.Shuffle(t5, t7, 0x44); var u7 = Avx.Shuffle(t5, t7, 0xEE);
        x0 = Avx.Permute2x128(u0, u4, 0x20); x1 = Avx.Permute2x128(u1, u5, 0x20);
        x2 = Avx.Permute2x128(u2, u6, 0x20); x3 = Avx.Permute2x128(u3, u7, 0x20);
        x4 = Avx.Permute2x128(u0, u4, 0x31); x5 = Avx.Permute2x128(u1, u5, 0x31);
        x6 = Avx.Permute2x128(u2, u6, 0x31); x7 = Avx.Permute2x128(u3, u7, 0x31);
    }

    /// <summary>Per-thread packing buffers, 64-byte aligned native memory, pooled across calls so steady state allocates nothing.</summary>
    private sealed class Workspace
    {
        private static readonly ConcurrentBag<Workspace> Pool = new();
        private nuint _apFloats, _bpFloats;

        public float* Ap { get; private set; }
        public float* Bp { get; private set; }
        public float* Tile { get; } = (float*)NativeMemory.AlignedAlloc(MR * NR * sizeof(float), 64);

        public static Workspace Rent() => Pool.TryTake(out var w) ? w : new Workspace();
        public static void Return(Workspace w) => Pool.Add(w);

        public void Ensure(int mc, int kc, int nc)
        {
            // +8 floats: PackA's overlapping 8-wide stores may run 2 floats past the last 6-row panel.
            nuint ap = (nuint)(((mc + MR - 1) / MR * MR) * kc + 8);
            nuint bp = (nuint)(((nc + NR - 1) / NR * NR) * kc);
            if (ap > _apFloats) { NativeMemory.AlignedFree(Ap); Ap = (float*)NativeMemory.AlignedAlloc(ap * sizeof(float), 64); _apFloats = ap; }
            if (bp > _bpFloats) { NativeMemory.AlignedFree(Bp); Bp = (float*)NativeMemory.AlignedAlloc(bp * sizeof(float), 64); _bpFloats = bp; }
        }

        ~Workspace()
        {
            NativeMemory.AlignedFree(Ap);
            NativeMemory.AlignedFree(Bp);
            NativeMemory.AlignedFree(Tile);
        }
    }
}
