using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Conv1d as one GEMM per call with an implicit im2col: Y[m, tout] = A[m, cin·K] · cols + bias, where row r = ci·K + k of
/// cols is input row ci read at j·stride + k·dilation − padding (zero outside). The cols matrix is never built: each
/// thread packs its own KC×NC panel straight from the channel-major input, and A (the weight, [Cout, Cin·K] as PyTorch
/// stores it) is packed once at load (<see cref="PackWeight"/>). The output comes out channel-major, so no transpose.
/// </summary>
/// <remarks>
/// Numerics match <see cref="GemmBlocked"/> run on an explicit im2col: each output sums in ci·K + k order in KC blocks,
/// the first block adding the bias, later blocks adding onto it. Threads take 256-column × 144-row tiles of the output
/// from a shared counter (whole 256-column strips when there are enough of them, so B is packed once per strip), so a
/// thread that the (busy, shared) machine deschedules does not hold the others up. The register tile is 6×32 with
/// AVX-512 (measured about 1.8× the 6×16 AVX2 tile per core on this Zen 4: the narrower tile runs out of issue slots,
/// not FMA pipes), else 6×16; both sum each output in the same order. Without AVX2/FMA (ARM64, SSE-only x86, or
/// <see cref="Gemm.ForcePath"/> in tests) the same panels go through <see cref="PortableKernels"/>' 128-bit tile, again in
/// the same order; only the plain scalar path is unsupported (<see cref="IsSupported"/>).
/// </remarks>
public static unsafe class ConvGemm
{
    private const int MR = 6, KC = 256, MC = 144, Chunk = 256;

    // Register tile width: 6×32 with AVX-512 (half the instructions per multiply-add of the 6×16 AVX2 tile, which is
    // what lets the tile keep both FMA pipes busy on Zen 4), else 6×16. Read-only static: the JIT folds it.
    private static readonly int NR = Avx512F.IsSupported ? 32 : 16;

    /// <summary>Whether this machine runs the kernels (AVX2 + FMA or hardware 128-bit vectors, and not forced to the
    /// scalar path by tests).</summary>
    public static bool IsSupported => Gemm.CurrentPath != GemmPath.Scalar;

    /// <summary>
    /// A [m, k] row-major → 6-row micro-panels [⌈m/6⌉][k][6] (zero-padded rows), the layout the 6×16 kernel streams; one
    /// array (pinned, so the kernels can hold a raw pointer) serves every KC block.
    /// </summary>
    public static float[] PackWeight(ReadOnlySpan<float> a, int m, int k)
    {
        if (a.Length != (long)m * k) throw new ArgumentException($"conv gemm: weight of {a.Length} values is not {m}×{k}");
        int panels = (m + MR - 1) / MR;
        var dst = GC.AllocateArray<float>(panels * MR * k + 8, pinned: true);
        for (int pnl = 0; pnl < panels; pnl++)
            for (int i = 0; i < MR; i++)
            {
                int row = pnl * MR + i;
                if (row >= m) break;
                var src = a.Slice(row * k, k);
                int o = pnl * MR * k + i;
                for (int p = 0; p < k; p++) dst[o + p * MR] = src[p];
            }
        return dst;
    }

    /// <summary>
    /// y[m, tout] = packedA · im2col(x) + bias for one batch item: x [cin, t] channel-major, rows of cols ordered
    /// ci·kernel + k; <paramref name="bias"/> has m entries or is null. y must not overlap x.
    /// </summary>
    public static void Conv(float[] packedA, int m, int cin, int kernel, float* x, int t, int stride, int padding, int dilation,
        float* bias, float* y, int tout, int threads)
    {
        var path = Gemm.CurrentPath;
        if (path == GemmPath.Scalar) throw new PlatformNotSupportedException("conv gemm needs hardware vectors (AVX2+FMA, NEON or SSE)");
        int kk = cin * kernel;
        if (packedA.Length < (m + MR - 1) / MR * MR * kk) throw new ArgumentException("conv gemm: packed weight too small for the shape");
        if (m == 0 || tout <= 0) return;
        // Work items are (256-column chunk, 144-row block) tiles of y, so short outputs (200 frames) still spread over
        // both cores; a chunk's B panel is packed once per row block, cheap next to the 144·kc·256 multiply-adds.
        int chunks = (tout + Chunk - 1) / Chunk, blocks = (m + MC - 1) / MC;
        bool tiles = chunks < 4 * Math.Max(1, threads) && blocks > 1; // few columns: split rows too, packing B once per tile
        int items = tiles ? chunks * blocks : chunks;
        long work = (long)m * kk * tout;
        threads = work < (1L << 20) ? 1 : Math.Min(Math.Max(1, threads), items);
        fixed (float* pa = packedA)
        {
            var job = new Job(path == GemmPath.Portable, pa, m, cin, kernel, x, t, stride, padding, dilation, bias, y, tout);
            if (threads == 1) { for (int c = 0; c < items; c++) Dispatch(job, c); return; }
            int next = -1;
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, _ =>
            {
                for (int c = Interlocked.Increment(ref next); c < items; c = Interlocked.Increment(ref next)) Dispatch(job, c);
            });
        }

        void Dispatch(Job job, int item)
        {
            if (tiles) job.Run(item % chunks, item / chunks, item / chunks + 1);
            else job.Run(item, 0, blocks);
        }
    }

    /// <summary>ConvTranspose1d weight [Cin, Cout, K] → packed A[(co·K + k), ci] for <see cref="ConvTranspose"/>.</summary>
    public static float[] PackTransposeWeight(ReadOnlySpan<float> w, int cin, int cout, int kernel)
    {
        if (w.Length != (long)cin * cout * kernel) throw new ArgumentException($"conv_transpose gemm: weight of {w.Length} values is not {cin}×{cout}×{kernel}");
        var a = new float[w.Length];
        for (int ci = 0; ci < cin; ci++)
            for (int r = 0; r < cout * kernel; r++) a[(long)r * cin + ci] = w[ci * cout * kernel + r];
        return PackWeight(a, cout * kernel, cin);
    }

    /// <summary>
    /// ConvTranspose1d (dilation 1, no output padding) for one batch item: cols[(co·K + k), ti] = Σ_ci W[ci, co, k]·x[ci, ti]
    /// as one GEMM on the channel-major input, then overlap-add y[co, ti·stride + k − padding] += cols, in ti then k order
    /// (the order of <see cref="CpuBackend.ConvTranspose1d"/>). <paramref name="cols"/> holds cout·K·t floats of scratch.
    /// </summary>
    public static void ConvTranspose(float[] packedA, int cin, int cout, int kernel, float* x, int t, int stride, int padding,
        float* bias, float* y, int tout, float* cols, int threads)
    {
        Conv(packedA, cout * kernel, cin, 1, x, t, 1, 0, 1, null, cols, t, threads);
        int parts = Math.Min(Math.Max(1, threads), cout);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            var (c0, c1) = Gemm.Part(cout, parts, part, 1);
            for (int co = c0; co < c1; co++)
            {
                float* yrow = y + (nint)co * tout;
                new Span<float>(yrow, tout).Fill(bias == null ? 0f : bias[co]);
                float* crow = cols + (nint)co * kernel * t;
                for (int ti = 0; ti < t; ti++)
                {
                    int to0 = ti * stride - padding;
                    for (int k = 0; k < kernel; k++)
                    {
                        int to = to0 + k;
                        if ((uint)to < (uint)tout) yrow[to] += crow[(nint)k * t + ti];
                    }
                }
            }
        });
    }

    private readonly struct Job(bool portable, float* a, int m, int cin, int kernel, float* x, int t, int stride, int padding, int dilation,
        float* bias, float* y, int tout)
    {
        /// <summary>Output columns of <paramref name="chunk"/>, row blocks [block0, block1).</summary>
        public void Run(int chunk, int block0, int block1)
        {
            int j0 = chunk * Chunk, nc = Math.Min(Chunk, tout - j0), kk = cin * kernel;
            float* bp = Workspace.Panel(KC * Chunk);
            float* tile = Workspace.Tile();
            for (int pc = 0; pc < kk; pc += KC)
            {
                int kc = Math.Min(KC, kk - pc);
                PackB(pc, kc, j0, nc, bp);
                bool first = pc == 0;
                for (int block = block0; block < block1; block++)
                {
                    int ic = block * MC, mc = Math.Min(MC, m - ic);
                    for (int jr = 0; jr < nc; jr += NR)
                    {
                        int nr = Math.Min(NR, nc - jr);
                        float* bpj = bp + (nint)jr * kc;
                        for (int ir = 0; ir < mc; ir += MR)
                        {
                            int row = ic + ir, mr = Math.Min(MR, m - row);
                            float* api = a + (nint)row * kk + (nint)pc * MR; // panel row/6 starts at (row/6)·6·kk = row·kk
                            float* cij = y + (nint)row * tout + j0 + jr;
                            float* b6 = first && bias != null ? bias + row : null;
                            if (mr == MR && nr == NR) Tile(portable, kc, api, bpj, cij, tout, !first, b6);
                            else
                            {
                                Tile(portable, kc, api, bpj, tile, NR, false, null);
                                for (int i = 0; i < mr; i++)
                                for (int j = 0; j < nr; j++)
                                {
                                    float v = tile[i * NR + j];
                                    if (b6 != null) v += b6[i];
                                    if (!first) v = cij[(nint)i * tout + j] + v;
                                    cij[(nint)i * tout + j] = v;
                                }
                            }
                        }
                    }
                }
            }
        }

        /// <summary>cols[pc..pc+kc, j0..j0+nc] → 16-column micro-panels (k-major), zero-padded past nc.</summary>
        private void PackB(int pc, int kc, int j0, int nc, float* dst)
        {
            // p outer: the (ci, k) split of a cols row (an integer division) is done once per row, not once per panel
            for (int p = 0; p < kc; p++)
            {
                int r = pc + p, ci = r / kernel, k = r - ci * kernel;
                float* src = x + (nint)ci * t;
                int off = k * dilation - padding;
                for (int jr = 0; jr < nc; jr += NR)
                {
                    int nr = Math.Min(NR, nc - jr);
                    float* d = dst + (nint)jr * kc + (nint)p * NR;
                    int start = (j0 + jr) * stride + off;
                    if (stride == 1 && nr == NR && start >= 0 && start + NR <= t)
                    {
                        if (portable) PortableKernels.Copy(src + start, d, NR);
                        else for (int q = 0; q < NR; q += 8) Avx.StoreAligned(d + q, Avx.LoadVector256(src + start + q));
                    }
                    else
                    {
                        for (int j = 0; j < NR; j++)
                        {
                            int ti = start + j * stride;
                            d[j] = j < nr && (uint)ti < (uint)t ? src[ti] : 0f;
                        }
                    }
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Tile(bool portable, int kc, float* a, float* b, float* c, nint ldc, bool load, float* bias)
    {
        if (portable) PortableKernels.Tile(kc, a, b, NR, c, ldc, load, bias, biasPerRow: true);
        else if (NR == 32) Kernel6x32(kc, a, b, c, ldc, load, bias);
        else GemmBlocked.Kernel6x16(kc, a, b, c, ldc, load, bias, biasPerRow: true); // the one 6×16 tile, per-row (channel) bias
    }

    // 6×32 with 512-bit registers: the same per-element operation order as the 6×16 tile (k order, one FMA per k).
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x32(int kc, float* a, float* b, float* c, nint ldc, bool load, float* bias)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx512F.LoadAlignedVector512(b);
            var b1 = Avx512F.LoadAlignedVector512(b + 16);
            var av = Vector512.Create(a[0]);
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
            a += MR;
            b += 32;
        }
        StoreRow512(c, c00, c01, load, bias); c += ldc;
        StoreRow512(c, c10, c11, load, bias == null ? null : bias + 1); c += ldc;
        StoreRow512(c, c20, c21, load, bias == null ? null : bias + 2); c += ldc;
        StoreRow512(c, c30, c31, load, bias == null ? null : bias + 3); c += ldc;
        StoreRow512(c, c40, c41, load, bias == null ? null : bias + 4); c += ldc;
        StoreRow512(c, c50, c51, load, bias == null ? null : bias + 5);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow512(float* c, Vector512<float> x0, Vector512<float> x1, bool load, float* bias)
    {
        if (bias != null) { var bv = Vector512.Create(*bias); x0 += bv; x1 += bv; }
        if (load) { x0 = Vector512.Load(c) + x0; x1 = Vector512.Load(c + 16) + x1; }
        x0.Store(c);
        x1.Store(c + 16);
    }

    /// <summary>Per-thread 64-byte aligned scratch, grown on demand and kept for the thread's life (pool threads persist).</summary>
    private static class Workspace
    {
        [ThreadStatic] private static float* _panel;
        [ThreadStatic] private static int _panelFloats;
        [ThreadStatic] private static float* _tile;

        public static float* Panel(int floats)
        {
            if (_panelFloats < floats)
            {
                if (_panel != null) NativeMemory.AlignedFree(_panel);
                _panel = (float*)NativeMemory.AlignedAlloc((nuint)floats * sizeof(float), 64);
                _panelFloats = floats;
            }
            return _panel;
        }

        public static float* Tile()
        {
            if (_tile == null) _tile = (float*)NativeMemory.AlignedAlloc((nuint)(MR * 32 * sizeof(float)), 64);
            return _tile;
        }
    }
}
