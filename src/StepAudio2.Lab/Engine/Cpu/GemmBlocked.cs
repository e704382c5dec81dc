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
/// Goto/BLIS-style GEMM: B is packed into KC×NC panels of NR-column micro-panels, A into MC×KC blocks of MR-row
/// micro-panels, and a register tile does the arithmetic: 6×16 with AVX2/FMA (12 ymm accumulators), 12×32 with AVX-512
/// (<see cref="GemmPath.Avx512"/>: 24 zmm accumulators, two B vectors and a broadcast of A in the 32 zmm registers). On
/// the portable path
/// (<see cref="GemmPath.Portable"/>) the same packed layout is packed with plain or 128-bit moves and swept by
/// <see cref="PortableKernels"/>' 6×8 <see cref="Vector128{T}"/> tile, so both paths share the blocking and the k order.
/// </summary>
/// <remarks>
/// Threads split C into disjoint row or column ranges. Split by rows (the usual case: more rows than columns), the threads
/// pack each group of B panels once between them and then sweep their rows over it (<see cref="RunSharedB"/>): packing B
/// in every thread cost ~10 % of an encoder GEMM. Split by columns, each thread runs the whole blocked loop on its own
/// buffers. Neither waits inside a parallel loop, so neither can deadlock when the thread pool is busy and Parallel.For
/// runs the parts one after another.
/// </remarks>
internal static unsafe class GemmBlocked
{
    public const int MR = 6, NR = 16;
    /// <summary>The AVX-512 tile: 12 rows × 32 columns.</summary>
    public const int MR512 = 12, NR512 = 32;

    // Blocking for Zen-class cores (48 KB L1d, 1 MB L2, shared L3): a 16×KC micro-panel of B (16 KB) stays in L1,
    // the MC×KC block of A (~144 KB) in L2, the KC×NC panel of B (2 MB) in L3.
    internal static int KC = 256, MC = 144, NC = 2048;

    // Blocking of the AVX-512 tile (Sapphire/Emerald Rapids: 48 KB L1d, 2 MB L2): the 32×KC micro-panel of B (32 KB)
    // stays in L1 beside the 12×KC micro-panel of A streaming past it; the MC×KC block of A in L2; B's panel in L2/L3.
    internal static int KC512 = 256, MC512 = 240, NC512 = 2048;

    /// <summary>Below this many multiply-adds a second thread costs more than it saves.</summary>
    private const long ParallelThreshold = 1L << 20;

    /// <summary>Budget of a shared packed-B buffer (floats): the KC panels of one NC column block are packed in groups
    /// that fit it, so a 7B model's [18944, 3584] weight never needs its whole f32 copy.</summary>
    internal static int SharedPackFloats = 4 << 20;

    public static void Run(GemmPath path, BLayout layout, int m, int n, int k, float* a, int lda, void* b, int ldb, float* c, int ldc,
        float* bias, bool accumulate, int maxThreads)
    {
        bool wide = path == GemmPath.Avx512;
        int mr = wide ? MR512 : MR, nr = wide ? NR512 : NR;
        int tilesM = (m + mr - 1) / mr, tilesN = (n + nr - 1) / nr;
        int threads = (long)m * n * k < ParallelThreshold ? 1 : Math.Max(1, maxThreads);
        // Split the larger side: the thread then duplicates packing of the smaller operand only.
        bool splitM = tilesM >= tilesN ? tilesM >= threads || tilesN < threads : tilesN < threads && tilesM >= threads;
        threads = Math.Min(threads, splitM ? tilesM : tilesN);
        var job = new Job(path, layout, k, a, lda, b, ldb, c, ldc, bias, accumulate);
        if (threads <= 1) { job.Block(0, m, 0, n); return; }
        if (splitM) { RunSharedB(path, layout, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, threads); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var (s, e) = Gemm.Part(n, threads, t, nr); if (s < e) job.Block(0, m, s, e);
        });
    }

    /// <summary>
    /// Rows split across threads, B packed once for all of them: for each NC column block, a group of KC panels is packed
    /// with the threads taking disjoint micro-panel columns, then each thread sweeps its rows over the group. Two
    /// Parallel.For calls per group and no barrier inside either, so a busy pool that runs the parts one after another
    /// still finishes. Every C element sees the same kernels in the same pc order as <see cref="Job.Block"/>: same bits.
    /// </summary>
    private static void RunSharedB(GemmPath path, BLayout layout, int m, int n, int k, float* a, int lda, void* b, int ldb, float* c, int ldc,
        float* bias, bool accumulate, int threads)
    {
        bool portable = path == GemmPath.Portable, wide = path == GemmPath.Avx512;
        int mr = wide ? MR512 : MR, nr = wide ? NR512 : NR;
        int kcMax = wide ? KC512 : KC, ncMax = wide ? NC512 : NC;
        int groupK = Math.Max(1, SharedPackFloats / (RoundUp(Math.Min(ncMax, n), nr) * kcMax)) * kcMax;
        var shared = SharedPanel.Rent(RoundUp(Math.Min(ncMax, n), nr) * (nint)Math.Min(groupK, RoundUp(k, kcMax)));
        var options = new ParallelOptions { MaxDegreeOfParallelism = threads };
        try
        {
            float* bp = shared.Data;
            for (int jc = 0; jc < n; jc += ncMax)
            {
                int nc = Math.Min(ncMax, n - jc), ncPad = RoundUp(nc, nr);
                for (int pg = 0; pg < k; pg += groupK)
                {
                    int kg = Math.Min(groupK, k - pg);
                    int jcc = jc, pgg = pg;
                    Parallel.For(0, threads, options, t =>
                    {
                        var (s, e) = Gemm.Part(nc, threads, t, nr);
                        if (s >= e) return;
                        for (int pc = 0; pc < kg; pc += kcMax)
                        {
                            int kc = Math.Min(kcMax, kg - pc);
                            // micro-panels s/nr.. of this panel: the packers write them at the same place as one packer would
                            float* dst = bp + (nint)ncPad * pc + (nint)s * kc;
                            PackB(layout, portable, nr, b, ldb, jcc + s, e - s, pgg + pc, kc, dst);
                        }
                    });
                    Parallel.For(0, threads, options, t =>
                    {
                        var (s, e) = Gemm.Part(m, threads, t, mr);
                        if (s >= e) return;
                        var ws = Workspace.Rent();
                        try
                        {
                            ws.Ensure(wide ? MC512 : MC, kcMax, 0, mr, nr);
                            for (int pc = 0; pc < kg; pc += kcMax)
                            {
                                int kc = Math.Min(kcMax, kg - pc);
                                bool first = pgg + pc == 0;
                                Sweep(path, a, lda, s, e, pgg + pc, kc, bp + (nint)ncPad * pc, nc, c + jcc, ldc,
                                    !first || accumulate, first && bias != null ? bias + jcc : null, ws);
                            }
                        }
                        finally { Workspace.Return(ws); }
                    });
                }
            }
        }
        finally { SharedPanel.Return(shared); }
    }

    private static int RoundUp(int x, int unit) => (x + unit - 1) / unit * unit;

    private static void PackB(BLayout layout, bool portable, int nr, void* b, int ldb, int jc, int nc, int pc, int kc, float* dst)
    {
        switch (layout)
        {
            case BLayout.F32NT: PackBNT<F32Rows>(portable, nr, (byte*)b, ldb, jc, nc, pc, kc, dst); break;
            case BLayout.Bf16NT: PackBNT<Bf16Rows>(portable, nr, (byte*)b, ldb, jc, nc, pc, kc, dst); break;
            default: PackBNN(portable, nr, (float*)b, ldb, jc, nc, pc, kc, dst); break;
        }
    }

    /// <summary>Rows [m0, m1) of C[:, jc..jc+nc] (+)= A[:, pc..pc+kc] · the packed KC×NC panel <paramref name="bp"/>, in MC row
    /// blocks; <paramref name="c"/> points at column jc of row 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
    private static void Sweep(GemmPath path, float* a, nint lda, int m0, int m1, int pc, int kc, float* bp, int nc, float* c, nint ldc,
        bool load, float* biasBlock, Workspace ws)
    {
        bool wide = path == GemmPath.Avx512;
        int mcMax = wide ? MC512 : MC;
        for (int ic = m0; ic < m1; ic += mcMax)
        {
            int mc = Math.Min(mcMax, m1 - ic);
            if (wide)
            {
                PackA12(a, lda, ic, mc, pc, kc, ws.Ap);
                Macro512(mc, nc, kc, ws.Ap, bp, c + (nint)ic * ldc, ldc, load, biasBlock, ws.Tile);
            }
            else
            {
                bool portable = path == GemmPath.Portable;
                PackA(portable, a, lda, ic, mc, pc, kc, ws.Ap);
                Macro(portable, mc, nc, kc, ws.Ap, bp, c + (nint)ic * ldc, ldc, load, biasBlock, ws.Tile);
            }
        }
    }

    /// <summary>Floats of a B operand [n, k] packed whole by <see cref="PackAll"/>.</summary>
    public static nint PackedSize(GemmPath path, int n, int k)
    {
        int nr = path == GemmPath.Avx512 ? NR512 : NR;
        return (nint)RoundUp(n, nr) * k;
    }

    /// <summary>
    /// Packs all of B ([n, k] as <paramref name="layout"/> says) once, for <see cref="RunPacked"/> to multiply many row
    /// blocks of A by it (attention: one head's keys or values against blocks of query rows). Panel (jc, pc) sits at
    /// jc·k + roundup(nc, NR)·pc.
    /// </summary>
    public static void PackAll(GemmPath path, BLayout layout, int n, int k, void* b, int ldb, float* dst)
    {
        bool portable = path == GemmPath.Portable, wide = path == GemmPath.Avx512;
        int nr = wide ? NR512 : NR, kcMax = wide ? KC512 : KC, ncMax = wide ? NC512 : NC;
        for (int jc = 0; jc < n; jc += ncMax)
        {
            int nc = Math.Min(ncMax, n - jc);
            for (int pc = 0; pc < k; pc += kcMax)
                PackB(layout, portable, nr, b, ldb, jc, nc, pc, Math.Min(kcMax, k - pc), dst + (nint)jc * k + (nint)RoundUp(nc, nr) * pc);
        }
    }

    /// <summary>C[m, n] (+)= A[m, k] · B on the calling thread, B packed by <see cref="PackAll"/>: the same kernels and pc
    /// order as <see cref="Run"/> with the same path (m &gt; <see cref="Gemv.MaxRows"/>), so the same bits.</summary>
    public static void RunPacked(GemmPath path, int m, int n, int k, float* a, int lda, float* packed, float* c, int ldc, bool accumulate)
    {
        if (m == 0 || n == 0 || k == 0) throw new ArgumentOutOfRangeException(nameof(k), "RunPacked needs a non-empty product");
        bool wide = path == GemmPath.Avx512;
        int mr = wide ? MR512 : MR, nr = wide ? NR512 : NR;
        int kcMax = wide ? KC512 : KC, ncMax = wide ? NC512 : NC;
        var ws = Workspace.Rent();
        try
        {
            ws.Ensure(wide ? MC512 : MC, kcMax, 0, mr, nr);
            for (int jc = 0; jc < n; jc += ncMax)
            {
                int nc = Math.Min(ncMax, n - jc);
                for (int pc = 0; pc < k; pc += kcMax)
                    Sweep(path, a, lda, 0, m, pc, Math.Min(kcMax, k - pc), packed + (nint)jc * k + (nint)RoundUp(nc, nr) * pc, nc,
                        c + jc, ldc, pc != 0 || accumulate, null, ws);
            }
        }
        finally { Workspace.Return(ws); }
    }

    /// <summary>Floats of an A operand [m, k] packed whole by <see cref="PackAllA"/> (+8: the packers' overlapping stores
    /// may run 2 floats past the last panel).</summary>
    public static nint PackedASize(GemmPath path, int m, int k) => (nint)RoundUp(m, path == GemmPath.Avx512 ? MR512 : MR) * k + 8;

    /// <summary>
    /// Packs all of A ([m, k] row-major, row stride lda) once, KC block after KC block (block pc at roundup(m, MR)·pc), for
    /// <see cref="RunPackedA"/> to multiply by many B panels: the quantized prefill dequantises its weight a few dozen rows
    /// at a time, and packing A again for every such panel cost more than the panel's arithmetic.
    /// </summary>
    public static void PackAllA(GemmPath path, int m, int k, float* a, int lda, float* dst)
    {
        bool wide = path == GemmPath.Avx512;
        int kcMax = wide ? KC512 : KC, mPad = RoundUp(m, wide ? MR512 : MR);
        // in pc order: a block's overlapping stores spill into the next block, which is packed after it
        for (int pc = 0; pc < k; pc += kcMax)
        {
            int kc = Math.Min(kcMax, k - pc);
            if (wide) PackA12(a, lda, 0, m, pc, kc, dst + (nint)mPad * pc);
            else PackA(path == GemmPath.Portable, a, lda, 0, m, pc, kc, dst + (nint)mPad * pc);
        }
    }

    /// <summary>C[m, n] = A · Bᵀ (+ bias) on the calling thread, A packed by <see cref="PackAllA"/>, B f32 [n, k] rows with
    /// stride ldb: the kernels, blocking and pc order of <see cref="Run"/> (m &gt; <see cref="Gemv.MaxRows"/>), so the same bits.</summary>
    public static void RunPackedA(GemmPath path, int m, int n, int k, float* packedA, float* b, int ldb, float* c, int ldc, float* bias)
    {
        if (m == 0 || n == 0 || k == 0) throw new ArgumentOutOfRangeException(nameof(k), "RunPackedA needs a non-empty product");
        bool portable = path == GemmPath.Portable, wide = path == GemmPath.Avx512;
        int mr = wide ? MR512 : MR, nr = wide ? NR512 : NR;
        int kcMax = wide ? KC512 : KC, mcMax = wide ? MC512 : MC, ncMax = wide ? NC512 : NC, mPad = RoundUp(m, mr);
        var ws = Workspace.Rent();
        try
        {
            ws.Ensure(mcMax, kcMax, ncMax, mr, nr);
            for (int jc = 0; jc < n; jc += ncMax)
            {
                int nc = Math.Min(ncMax, n - jc);
                for (int pc = 0; pc < k; pc += kcMax)
                {
                    int kc = Math.Min(kcMax, k - pc);
                    PackBNT<F32Rows>(portable, nr, (byte*)b, ldb, jc, nc, pc, kc, ws.Bp);
                    bool first = pc == 0;
                    float* biasBlock = first && bias != null ? bias + jc : null;
                    for (int ic = 0; ic < m; ic += mcMax)
                    {
                        int mc = Math.Min(mcMax, m - ic);
                        float* ap = packedA + (nint)mPad * pc + (nint)ic * kc;
                        if (wide) Macro512(mc, nc, kc, ap, ws.Bp, c + (nint)ic * ldc + jc, ldc, !first, biasBlock, ws.Tile);
                        else Macro(portable, mc, nc, kc, ap, ws.Bp, c + (nint)ic * ldc + jc, ldc, !first, biasBlock, ws.Tile);
                    }
                }
            }
        }
        finally { Workspace.Return(ws); }
    }

    private readonly struct Job(GemmPath path, BLayout layout, int k, float* a, int lda, void* b, int ldb, float* c, int ldc, float* bias, bool accumulate)
    {
        public void Block(int m0, int m1, int n0, int n1)
        {
            var ws = Workspace.Rent();
            try
            {
                bool portable = path == GemmPath.Portable, wide = path == GemmPath.Avx512;
                int mr = wide ? MR512 : MR, nr = wide ? NR512 : NR;
                int kcMax = wide ? KC512 : KC, mcMax = wide ? MC512 : MC, ncMax = wide ? NC512 : NC;
                ws.Ensure(mcMax, kcMax, ncMax, mr, nr);
                for (int jc = n0; jc < n1; jc += ncMax)
                {
                    int nc = Math.Min(ncMax, n1 - jc);
                    for (int pc = 0; pc < k; pc += kcMax)
                    {
                        int kc = Math.Min(kcMax, k - pc);
                        PackB(layout, portable, nr, b, ldb, jc, nc, pc, kc, ws.Bp);
                        bool first = pc == 0;
                        Sweep(path, a, lda, m0, m1, pc, kc, ws.Bp, nc, c + jc, ldc, !first || accumulate, first && bias != null ? bias + jc : null, ws);
                    }
                }
            }
            finally { Workspace.Return(ws); }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
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

    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
    private static void Macro512(int mc, int nc, int kc, float* ap, float* bp, float* c, nint ldc, bool load, float* bias, float* tile)
    {
        for (int jr = 0; jr < nc; jr += NR512)
        {
            int nr = Math.Min(NR512, nc - jr);
            float* bpj = bp + (nint)jr * kc;
            float* biasj = bias == null ? null : bias + jr;
            for (int ir = 0; ir < mc; ir += MR512)
            {
                int mr = Math.Min(MR512, mc - ir);
                float* api = ap + (nint)ir * kc;
                float* cij = c + ir * ldc + jr;
                if (mr == MR512 && nr == NR512) Kernel12x32(kc, api, bpj, cij, ldc, load, biasj);
                else
                {
                    // Edge tile, as in Macro: the full tile into scratch, then the valid part merged in the kernel's order.
                    Kernel12x32(kc, api, bpj, tile, NR512, false, null);
                    for (int i = 0; i < mr; i++)
                    for (int j = 0; j < nr; j++)
                    {
                        float v = tile[i * NR512 + j];
                        if (biasj != null) v += biasj[j];
                        if (load) v = cij[i * ldc + j] + v;
                        cij[i * ldc + j] = v;
                    }
                }
            }
        }
    }

    /// <summary>
    /// The 12×32 AVX-512 register tile (24 zmm accumulators): C[12, 32] (+)= A-panel · B-panel over kc, one FMA per k in
    /// k order, exactly the sums of <see cref="Kernel6x16"/>; the per-column bias is added to the tile's sum before the
    /// load of C.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel12x32(int kc, float* a, float* b, float* c, nint ldc, bool load, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Avx512F.LoadAlignedVector512(b);
            Vector512<float> b1 = Avx512F.LoadAlignedVector512(b + 16);
            Vector512<float> av = Vector512.Create(a[0]);
            c00 = Avx512F.FusedMultiplyAdd(av, b0, c00); c01 = Avx512F.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]);
            c10 = Avx512F.FusedMultiplyAdd(av, b0, c10); c11 = Avx512F.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]);
            c20 = Avx512F.FusedMultiplyAdd(av, b0, c20); c21 = Avx512F.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]);
            c30 = Avx512F.FusedMultiplyAdd(av, b0, c30); c31 = Avx512F.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]);
            c40 = Avx512F.FusedMultiplyAdd(av, b0, c40); c41 = Avx512F.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]);
            c50 = Avx512F.FusedMultiplyAdd(av, b0, c50); c51 = Avx512F.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]);
            c60 = Avx512F.FusedMultiplyAdd(av, b0, c60); c61 = Avx512F.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]);
            c70 = Avx512F.FusedMultiplyAdd(av, b0, c70); c71 = Avx512F.FusedMultiplyAdd(av, b1, c71);
            av = Vector512.Create(a[8]);
            c80 = Avx512F.FusedMultiplyAdd(av, b0, c80); c81 = Avx512F.FusedMultiplyAdd(av, b1, c81);
            av = Vector512.Create(a[9]);
            c90 = Avx512F.FusedMultiplyAdd(av, b0, c90); c91 = Avx512F.FusedMultiplyAdd(av, b1, c91);
            av = Vector512.Create(a[10]);
            cA0 = Avx512F.FusedMultiplyAdd(av, b0, cA0); cA1 = Avx512F.FusedMultiplyAdd(av, b1, cA1);
            av = Vector512.Create(a[11]);
            cB0 = Avx512F.FusedMultiplyAdd(av, b0, cB0); cB1 = Avx512F.FusedMultiplyAdd(av, b1, cB1);
            a += MR512;
            b += NR512;
        }
        StoreRow512(c, c00, c01, load, bias); c += ldc;
        StoreRow512(c, c10, c11, load, bias); c += ldc;
        StoreRow512(c, c20, c21, load, bias); c += ldc;
        StoreRow512(c, c30, c31, load, bias); c += ldc;
        StoreRow512(c, c40, c41, load, bias); c += ldc;
        StoreRow512(c, c50, c51, load, bias); c += ldc;
        StoreRow512(c, c60, c61, load, bias); c += ldc;
        StoreRow512(c, c70, c71, load, bias); c += ldc;
        StoreRow512(c, c80, c81, load, bias); c += ldc;
        StoreRow512(c, c90, c91, load, bias); c += ldc;
        StoreRow512(c, cA0, cA1, load, bias); c += ldc;
        StoreRow512(c, cB0, cB1, load, bias);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> x0, Vector512<float> x1, bool load, float* bias)
    {
        if (bias != null) { x0 = Avx512F.Add(x0, Avx512F.LoadVector512(bias)); x1 = Avx512F.Add(x1, Avx512F.LoadVector512(bias + 16)); }
        if (load) { x0 = Avx512F.Add(Avx512F.LoadVector512(c), x0); x1 = Avx512F.Add(Avx512F.LoadVector512(c + 16), x1); }
        Avx512F.Store(c, x0);
        Avx512F.Store(c + 16, x1);
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
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
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

    /// <summary>Packs A[ic..ic+mc, pc..pc+kc] into 12-row micro-panels (k-major, 12 values per k) for the AVX-512 tile,
    /// zero-padding the last panel.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
    private static void PackA12(float* a, nint lda, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR512)
        {
            int mr = Math.Min(MR512, mc - ir);
            float* d = dst + (nint)ir * kc;
            float* r0 = a + (ic + ir) * lda + pc;
            int p = 0;
            if (mr == MR512)
            {
                float* r1 = r0 + lda, r2 = r1 + lda, r3 = r2 + lda, r4 = r3 + lda, r5 = r4 + lda;
                float* r6 = r5 + lda, r7 = r6 + lda, r8 = r7 + lda, r9 = r8 + lda, r10 = r9 + lda, r11 = r10 + lda;
                for (; p + 8 <= kc; p += 8)
                {
                    var x0 = Avx.LoadVector256(r0 + p); var x1 = Avx.LoadVector256(r1 + p);
                    var x2 = Avx.LoadVector256(r2 + p); var x3 = Avx.LoadVector256(r3 + p);
                    var x4 = Avx.LoadVector256(r4 + p); var x5 = Avx.LoadVector256(r5 + p);
                    Vector256<float> x6 = default, x7 = default;
                    Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                    var y0 = Avx.LoadVector256(r6 + p); var y1 = Avx.LoadVector256(r7 + p);
                    var y2 = Avx.LoadVector256(r8 + p); var y3 = Avx.LoadVector256(r9 + p);
                    var y4 = Avx.LoadVector256(r10 + p); var y5 = Avx.LoadVector256(r11 + p);
                    Vector256<float> y6 = default, y7 = default;
                    Transpose8x8(ref y0, ref y1, ref y2, ref y3, ref y4, ref y5, ref y6, ref y7);
                    // Rows 0–5 then rows 6–11 of each k, 8 floats per store: each store's 2 extra floats are overwritten
                    // by the next one, the last spills into the next panel (packed later) or the workspace padding.
                    float* q = d + p * MR512;
                    Avx.Store(q, x0); Avx.Store(q + 6, y0); Avx.Store(q + 12, x1); Avx.Store(q + 18, y1);
                    Avx.Store(q + 24, x2); Avx.Store(q + 30, y2); Avx.Store(q + 36, x3); Avx.Store(q + 42, y3);
                    Avx.Store(q + 48, x4); Avx.Store(q + 54, y4); Avx.Store(q + 60, x5); Avx.Store(q + 66, y5);
                    Avx.Store(q + 72, x6); Avx.Store(q + 78, y6); Avx.Store(q + 84, x7); Avx.Store(q + 90, y7);
                }
                for (; p < kc; p++)
                {
                    float* q = d + p * MR512;
                    for (int i = 0; i < MR512; i++) q[i] = r0[i * lda + p];
                }
            }
            else
            {
                for (; p < kc; p++)
                {
                    float* q = d + p * MR512;
                    for (int i = 0; i < MR512; i++) q[i] = i < mr ? r0[i * lda + p] : 0f;
                }
            }
        }
    }

    /// <summary>Packs the [n,k] row-major B[jc..jc+nc, pc..pc+kc] into <paramref name="panel"/>-column micro-panels
    /// (k-major; 16 or 32 columns), widening to f32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
    private static void PackBNT<TRow>(bool portable, int panel, byte* b, nint ldb, int jc, int nc, int pc, int kc, float* dst) where TRow : struct, IRowFormat
    {
        nint rowBytes = ldb * TRow.ElementSize;
        for (int jr = 0; jr < nc; jr += panel)
        {
            int nr = Math.Min(panel, nc - jr);
            float* d = dst + (nint)jr * kc;
            byte* r0 = b + (jc + jr) * rowBytes + (nint)pc * TRow.ElementSize;
            if (nr == panel)
            {
                int p = 0;
                if (!portable)
                for (; p + 8 <= kc; p += 8)
                {
                    for (int half = 0; half < panel / 8; half++)
                    {
                        byte* h = r0 + half * 8 * rowBytes;
                        var x0 = TRow.Load8(h, p); var x1 = TRow.Load8(h + rowBytes, p);
                        var x2 = TRow.Load8(h + 2 * rowBytes, p); var x3 = TRow.Load8(h + 3 * rowBytes, p);
                        var x4 = TRow.Load8(h + 4 * rowBytes, p); var x5 = TRow.Load8(h + 5 * rowBytes, p);
                        var x6 = TRow.Load8(h + 6 * rowBytes, p); var x7 = TRow.Load8(h + 7 * rowBytes, p);
                        Transpose8x8(ref x0, ref x1, ref x2, ref x3, ref x4, ref x5, ref x6, ref x7);
                        float* q = d + p * panel + half * 8;
                        Avx.StoreAligned(q, x0); Avx.StoreAligned(q + panel, x1); Avx.StoreAligned(q + 2 * panel, x2); Avx.StoreAligned(q + 3 * panel, x3);
                        Avx.StoreAligned(q + 4 * panel, x4); Avx.StoreAligned(q + 5 * panel, x5); Avx.StoreAligned(q + 6 * panel, x6); Avx.StoreAligned(q + 7 * panel, x7);
                    }
                }
                for (; p < kc; p++)
                    for (int j = 0; j < panel; j++) d[p * panel + j] = TRow.Load1(r0 + j * rowBytes, p);
            }
            else
            {
                for (int p = 0; p < kc; p++)
                    for (int j = 0; j < panel; j++) d[p * panel + j] = j < nr ? TRow.Load1(r0 + j * rowBytes, p) : 0f;
            }
        }
    }

    /// <summary>Packs the [k,n] row-major B[pc..pc+kc, jc..jc+nc] into <paramref name="panel"/>-column micro-panels (k-major).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // loops run from the first call, not tier-0 code while the JIT catches up
    private static void PackBNN(bool portable, int panel, float* b, nint ldb, int jc, int nc, int pc, int kc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += panel)
        {
            int nr = Math.Min(panel, nc - jr);
            float* d = dst + (nint)jr * kc;
            float* s = b + pc * ldb + jc + jr;
            if (nr == panel && portable)
            {
                for (int p = 0; p < kc; p++, s += ldb) PortableKernels.Copy(s, d + p * panel, panel);
            }
            else if (nr == panel)
            {
                for (int p = 0; p < kc; p++, s += ldb)
                    for (int j = 0; j < panel; j += 8) Avx.StoreAligned(d + p * panel + j, Avx.LoadVector256(s + j));
            }
            else
            {
                for (int p = 0; p < kc; p++, s += ldb)
                    for (int j = 0; j < panel; j++) d[p * panel + j] = j < nr ? s[j] : 0f;
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

    /// <summary>A packed-B buffer shared by the threads of one <see cref="RunSharedB"/> call, 64-byte aligned, pooled.</summary>
    private sealed class SharedPanel
    {
        private static readonly ConcurrentBag<SharedPanel> Pool = new();
        private nint _floats;

        public float* Data { get; private set; }

        public static SharedPanel Rent(nint floats)
        {
            var p = Pool.TryTake(out var w) ? w : new SharedPanel();
            if (floats > p._floats)
            {
                NativeMemory.AlignedFree(p.Data);
                p.Data = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
                p._floats = floats;
            }
            return p;
        }

        public static void Return(SharedPanel p) => Pool.Add(p);

        ~SharedPanel() => NativeMemory.AlignedFree(Data);
    }

    /// <summary>Per-thread packing buffers, 64-byte aligned native memory, pooled across calls so steady state allocates nothing.</summary>
    private sealed class Workspace
    {
        private static readonly ConcurrentBag<Workspace> Pool = new();
        private nuint _apFloats, _bpFloats;

        public float* Ap { get; private set; }
        public float* Bp { get; private set; }
        public float* Tile { get; } = (float*)NativeMemory.AlignedAlloc(MR512 * NR512 * sizeof(float), 64); // fits either tile

        public static Workspace Rent() => Pool.TryTake(out var w) ? w : new Workspace();
        public static void Return(Workspace w) => Pool.Add(w);

        public void Ensure(int mc, int kc, int nc, int mr, int nr)
        {
            // +8 floats: PackA's overlapping 8-wide stores may run 2 floats past the last panel.
            nuint ap = (nuint)(((mc + mr - 1) / mr * mr) * kc + 8);
            nuint bp = (nuint)(((nc + nr - 1) / nr * nr) * kc);
            if (ap > _apFloats) { NativeMemory.AlignedFree(Ap); Ap = (float*)NativeMemory.AlignedAlloc(ap * sizeof(float), 64); _apFloats = ap; }
            if (nc > 0 && bp > _bpFloats) { NativeMemory.AlignedFree(Bp); Bp = (float*)NativeMemory.AlignedAlloc(bp * sizeof(float), 64); _bpFloats = bp; }
        }

        ~Workspace()
        {
            NativeMemory.AlignedFree(Ap);
            NativeMemory.AlignedFree(Bp);
            NativeMemory.AlignedFree(Tile);
        }
    }
}
