using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Single-precision matrix products on the CPU: a packed, cache-blocked AVX2/FMA GEMM (6×16 register tile), a
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

    // Thread-static so a test forcing the fallback does not slow down tests running beside it; the scalar path runs
    // entirely on the calling thread, so the flag is seen wherever it matters.
    [ThreadStatic] private static bool _forceScalar;

    /// <summary>Test hook: route this thread's calls through the portable scalar fallback, as on a machine without AVX2/FMA.</summary>
    internal static bool ForceScalar { get => _forceScalar; set => _forceScalar = value; }

    /// <summary>Whether the AVX2/FMA kernels are in use (false on machines without them, or when forced off by tests).</summary>
    internal static bool UseSimd => !ForceScalar && Avx2.IsSupported && Fma.IsSupported;

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
        if (!UseSimd) { GemmScalar.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, MaxThreads); return; }
        GemmBlocked.Run(BLayout.F32NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, MaxThreads);
    }

    /// <summary>C[m,n] = A[m,k] · B[k,n], all row-major with row strides.</summary>
    public static void SgemmNN(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false)
    {
        Validate(m, n, k, a, lda, k, b, ldb, n, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, null, accumulate); return; }
        if (!UseSimd) { GemmScalar.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate, MaxThreads); return; }
        GemmBlocked.Run(BLayout.F32NN, m, n, k, a, lda, b, ldb, c, ldc, null, accumulate, MaxThreads);
    }

    /// <summary>Same as <see cref="SgemmNT"/> but B holds bfloat16 bits (value = float bits &lt;&lt; 16), read in place:
    /// only small packed panels (GEMM) or registers (GEMV) ever hold widened values.</summary>
    public static void GemmBf16NT(int m, int n, int k, float* a, int lda, ushort* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        Validate(m, n, k, a, lda, k, b, ldb, k, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, bias, accumulate); return; }
        if (!UseSimd) { GemmScalar.NT<Bf16Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<Bf16Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, MaxThreads); return; }
        GemmBlocked.Run(BLayout.Bf16NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, MaxThreads);
    }

    /// <summary><see cref="SgemmNT"/> on at most <paramref name="threads"/> threads (1: the calling thread only), for
    /// callers that already run independent products in parallel (e.g. one attention head per worker).</summary>
    public static void SgemmNTOn(int threads, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Validate(m, n, k, a, lda, k, b, ldb, k, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, bias, accumulate); return; }
        if (!UseSimd) { GemmScalar.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NT<F32Rows>(m, n, k, a, lda, (byte*)b, ldb, c, ldc, bias, accumulate, threads); return; }
        GemmBlocked.Run(BLayout.F32NT, m, n, k, a, lda, b, ldb, c, ldc, bias, accumulate, threads);
    }

    /// <summary><see cref="SgemmNN"/> on at most <paramref name="threads"/> threads (1: the calling thread only).</summary>
    public static void SgemmNNOn(int threads, int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        Validate(m, n, k, a, lda, k, b, ldb, n, c, ldc);
        if (m == 0 || n == 0) return;
        if (k == 0) { BiasOnly(m, n, c, ldc, null, accumulate); return; }
        if (!UseSimd) { GemmScalar.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate); return; }
        if (m <= Gemv.MaxRows) { Gemv.NN(m, n, k, a, lda, b, ldb, c, ldc, accumulate, threads); return; }
        GemmBlocked.Run(BLayout.F32NN, m, n, k, a, lda, b, ldb, c, ldc, null, accumulate, threads);
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
