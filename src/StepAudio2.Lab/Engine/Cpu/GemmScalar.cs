namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>Plain single-threaded fallback for machines without hardware vectors (no AVX2/FMA, no NEON/SSE acceleration; or
/// <see cref="Gemm.ForceScalar"/> in tests): plain f32 dot products, no intrinsics.</summary>
internal static unsafe class GemmScalar
{
    public static void NT<TRow>(int m, int n, int k, float* a, nint lda, byte* b, nint ldb, float* c, nint ldc, float* bias, bool accumulate)
        where TRow : struct, IRowFormat
    {
        nint rowBytes = ldb * TRow.ElementSize;
        for (int i = 0; i < m; i++)
        {
            float* ai = a + i * lda;
            float* ci = c + i * ldc;
            for (int j = 0; j < n; j++)
            {
                byte* bj = b + j * rowBytes;
                float s = 0f;
                for (int p = 0; p < k; p++) s += ai[p] * TRow.Load1(bj, p);
                ci[j] = Finish(s, ci[j], bias, j, accumulate);
            }
        }
    }

    public static void NN(int m, int n, int k, float* a, nint lda, float* b, nint ldb, float* c, nint ldc, bool accumulate)
    {
        for (int i = 0; i < m; i++)
        {
            float* ai = a + i * lda;
            float* ci = c + i * ldc;
            for (int j = 0; j < n; j++)
            {
                float s = 0f;
                for (int p = 0; p < k; p++) s += ai[p] * b[p * ldb + j];
                ci[j] = Finish(s, ci[j], null, j, accumulate);
            }
        }
    }

    private static float Finish(float s, float old, float* bias, int j, bool accumulate)
    {
        if (bias != null) s += bias[j];
        return accumulate ? old + s : s;
    }
}
