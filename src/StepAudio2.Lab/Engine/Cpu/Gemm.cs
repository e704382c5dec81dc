using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Single-precision matrix products on the CPU: a packed, cache-blocked GEMM (a 12×32 AVX-512 register tile where the
/// CPU has AVX-512F, else a 6×16 AVX2/FMA one; a portable
/// <see cref="Vector128{T}"/> tile of the same shape elsewhere, e.g. ARM64 NEON or x86 without AVX2), a
/// memory-bound GEMV path for m ≤ 4 (LLM decoding), and bf16-weight variants that read the weight in place
/// (e.g. from a memory-mapped safetensors file) and widen it to f32 only inside small packed panels or registers.
/// </summary>
/// <remarks>
/// Numerics are plain f32 FMA accumulation. The GEMM path (m &gt; 4) sums each output element in k order, so its
/// result does not depend on <see cref="MaxThreads"/>; the GEMV path (m ≤ 4) uses 8-lane partial sums.
/// C must not overlap A, B or bias. All strides are in elements; a row stride must be at least the row's width.
/// </remarks>
public static unsafe class Gemm
{
    private static int _maxThreads = Environment.ProcessorCount;

    // Thread-static so a test forcing a path does not change tests running beside it; a forced call's worker threads
    // take the path chosen on the calling thread (it is passed down), so the flag is seen wherever it matters.
    [ThreadStatic] private static GemmPath? _forcePath;

    /// <summary>Test/bench hook: run this thread's calls on the given path (one at most <see cref="BestPath"/>), as on a
    /// machine without AVX2/FMA; null restores the best path.</summary>
    internal static GemmPath? ForcePath
    {
        get => _forcePath;
        set
        {
            if (value > BestPath) throw new PlatformNotSupportedException($"gemm path {value} is not supported on this machine (best: {BestPath})");
            _forcePath = value;
        }
    }

    /// <summary>Test hook: route this thread's calls through the plain scalar fallback (<see cref="GemmScalar"/>).</summary>
    internal static bool ForceScalar { get => _forcePath == GemmPath.Scalar; set => _forcePath = value ? GemmPath.Scalar : null; }

    /// <summary>The best path of this machine (honours DOTNET_EnableAVX512=0, the .NET 10 name of the AVX-512 switch, and DOTNET_EnableAVX2=0 through IsSupported).</summary>
    internal static GemmPath BestPath =>
        Avx2.IsSupported && Fma.IsSupported ? (Avx512F.IsSupported ? GemmPath.Avx512 : GemmPath.Avx2)
        : Vector128.IsHardwareAccelerated ? GemmPath.Portable : GemmPath.Scalar;

    /// <summary>The path this thread's calls take.</summary>
    internal static GemmPath CurrentPath => _forcePath ?? BestPath;

    /// <summary>Degree of parallelism used (default <see cref="Environment.ProcessorCount"/>); settable for benchmarks.</summary>
    public static int MaxThreads
    {
        get => _maxThreads;
        set
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(value, 1);
            _maxThreads = value;
        }
    }

    /// <summary>C[m,n] = A[m,k] · B[n,k]ᵀ (+ bias[n]) — "linear" layout: B is a PyTorch Linear weight [out,in], row-major.
    /// lda/ldb/ldc are row strides in elements. bias may be null. If accumulate, C += result.</summary>
    public static void SgemmNT(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        Validate(m, n, k, a, lda, k, b, ldb, k, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, bias, accumulate); return; }
        var path = CurrentPath;
        if (path == GemmPath.Scalar) { GemmScalar.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<F32Rows>(path, m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, MaxThreads); return; }
        GemmBlocked.Run(path, BLayout.F32NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, MaxThreads);
    }

    /// <summary>C[m,n] = A[m,k] · B[k,n], all row-major with row strides.</summary>
    public static void SgemmNN(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false)
    {
        Validate(m, n, k, a, lda, k, b, ldb, n, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, null, accumulate); return; }
        var path = CurrentPath;
        if (path == GemmPath.Scalar) { GemmScalar.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NN(path, m, n, k, a, lda, b, ldb, c, ldc, accumulate, MaxThreads); return; }
        GemmBlocked.Run(path, BLayout.F32NN, m, n, k, a, lda, b, ldb, c, ldc, null, accumulate, MaxThreads);
    }

    /// <summary>Same as <see cref="SgemmNT"/> but B holds bfloat16 bits (value = float bits &lt;&lt; 16), read in place:
    /// only small packed panels (GEMM) or registers (GEMV) ever hold widened values.</summary>
    public static void GemmBf16NT(int m, int n, int k, float* a, int lda, ushort* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        Validate(m, n, k, a, lda, k, b, ldb, k, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, bias, accumulate); return; }
        var path = CurrentPath;
        if (path == GemmPath.Scalar) { GemmScalar.NT<Bf16Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<Bf16Rows>(path, m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, MaxThreads); return; }
        GemmBlocked.Run(path, BLayout.Bf16NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, MaxThreads);
    }

    /// <summary><see cref="SgemmNT"/> on at most <paramref name="threads"/> threads (1: the calling thread only), for
    /// callers that already run independent products in parallel (e.g. one attention head per worker).</summary>
    public static void SgemmNTOn(int threads, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Validate(m, n, k, a, lda, k, b, ldb, k, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, bias, accumulate); return; }
        var path = CurrentPath;
        if (path == GemmPath.Scalar) { GemmScalar.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<F32Rows>(path, m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, threads); return; }
        GemmBlocked.Run(path, BLayout.F32NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, threads);
    }

    /// <summary><see cref="SgemmNN"/> on at most <paramref name="threads"/> threads (1: the calling thread only).</summary>
    public static void SgemmNNOn(int threads, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Validate(m, n, k, a, lda, k, b, ldb, n, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, null, accumulate); return; }
        var path = CurrentPath;
        if (path == GemmPath.Scalar) { GemmScalar.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NN(path, m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return; }
        GemmBlocked.Run(path, BLayout.F32NN, m, n, k, a, lda, b, ldb, c, ldc, null, accumulate, threads);
    }

    private static void Validate(int m, int n, int k, void* a, int lda, int aCols, void* b, int ldb, int bCols, float* c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (lda < aCols) throw new ArgumentOutOfRangeException(nameof(lda), lda, $"lda must be at least the row width of A ({aCols}).");
        if (ldb < bCols) throw new ArgumentOutOfRangeException(nameof(ldb), ldb, $"ldb must be at least the row width of B ({bCols}).");
        if (ldc < n) throw new ArgumentOutOfRangeException(nameof(ldc), ldc, $"ldc must be at least the row width of C ({n}).");
        if (m > 0 && k > 0 && a == null) throw new ArgumentNullException(nameof(a));
        if (n > 0 && k > 0 && b == null) throw new ArgumentNullException(nameof(b));
        if (m > 0 && n > 0 && c == null) throw new ArgumentNullException(nameof(c));
    }

    // k = 0: the product is empty, so C becomes bias (or 0), or gains bias when accumulating.
    private static void BiasOnly(int m, int n, float* c, int ldc, float* bias, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + (nint)i * ldc, n);
            if (bias == null) { if (!accumulate) row.Clear(); }
            else if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(row, new ReadOnlySpan<float>(bias, n), row);
            else new ReadOnlySpan<float>(bias, n).CopyTo(row);
        }
    }

    /// <summary>Splits [0, count) into <paramref name="parts"/> contiguous ranges whose starts are multiples of <paramref name="unit"/>.</summary>
    internal static (int Start, int End) Part(int count, int parts, int index, int unit)
    {
        int units = (count + unit - 1) / unit;
        int s = (int)((long)units * index / parts) * unit;
        int e = index == parts - 1 ? count : (int)((long)units * (index + 1) / parts) * unit;
        return (Math.Min(s, count), Math.Min(e, count));
    }
}

/// <summary>Which kernels <see cref="Gemm"/> (and <see cref="ConvGemm"/>) run, slowest first.</summary>
internal enum GemmPath
{
    /// <summary>Plain loops (no hardware vectors).</summary>
    Scalar,
    /// <summary><see cref="Vector128{T}"/> kernels through the cross-platform APIs: NEON on ARM64, SSE on x86 without AVX2.</summary>
    Portable,
    /// <summary>AVX2/FMA (and AVX-512 in <see cref="ConvGemm"/>) kernels.</summary>
    Avx2,
    /// <summary>The AVX2 path with <see cref="GemmBlocked"/>'s 12×32 AVX-512 tile: 24 of the 32 zmm registers accumulate, so
    /// a core with two 512-bit FMA ports does twice the AVX2 tile's work per cycle. GEMV and conv kernels stay as on AVX2.</summary>
    Avx512,
}
