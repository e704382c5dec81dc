// TEMPORARY naive stand-in with the final signatures; replaced by the packed SIMD kernels (engine issue).
namespace StepAudio2.Lab.Engine.Cpu;

public static unsafe class Gemm
{
    public static int MaxThreads { get; set; } = Environment.ProcessorCount;

    public static void SgemmNT(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        Parallel.For(0, m, i =>
        {
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(a[(long)i * lda + p], b[(long)j * ldb + p], s);
                if (bias != null) s += bias[j];
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + s : s;
            }
        });
    }

    public static void SgemmNN(int m, int n, int k, float* a, int lda, float* b, int ldb, float* c, int ldc, bool accumulate = false)
    {
        Parallel.For(0, m, i =>
        {
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(a[(long)i * lda + p], b[(long)p * ldb + j], s);
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + s : s;
            }
        });
    }

    public static void GemmBf16NT(int m, int n, int k, float* a, int lda, ushort* b, int ldb, float* c, int ldc, float* bias = null, bool accumulate = false)
    {
        Parallel.For(0, m, i =>
        {
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s = MathF.FusedMultiplyAdd(a[(long)i * lda + p], BitConverter.Int32BitsToSingle(b[(long)j * ldb + p] << 16), s);
                if (bias != null) s += bias[j];
                c[(long)i * ldc + j] = accumulate ? c[(long)i * ldc + j] + s : s;
            }
        });
    }
}
