using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// The portable register tile shared by <see cref="GemmBlocked"/> and <see cref="ConvGemm"/> on machines without AVX2/FMA
/// (ARM64 NEON, x86 with SSE only): the packed 16- or 32-column micro-panels are swept in 8-column strips, each a 6×8
/// tile of twelve <see cref="Vector128{T}"/> accumulators (fits SSE's 16 registers; NEON has 32).
/// </summary>
/// <remarks>
/// Each output element is summed in k order with one multiply-add per k, as the AVX2 tile does, so the result does not
/// depend on threads or blocking. <see cref="Vector128.MultiplyAddEstimate(Vector128{float}, Vector128{float}, Vector128{float})"/>
/// fuses where the hardware can (NEON FMLA, x86 FMA): there the portable tile gives the AVX2 tile's bits; on SSE-only x86
/// it rounds the product first, so it is tested against the float64 oracle within the same tolerance.
/// </remarks>
internal static unsafe class PortableKernels
{
    public const int MR = 6;

    /// <summary>C[6, nr] (=|+=) A-panel · B-panel for a B micro-panel <paramref name="nr"/> (a multiple of 8) columns wide.
    /// Bias is per column (<paramref name="biasPerRow"/> false, <see cref="GemmBlocked"/>) or per row (<see cref="ConvGemm"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Tile(int kc, float* a, float* b, int nr, float* c, nint ldc, bool load, float* bias, bool biasPerRow)
    {
        for (int h = 0; h < nr; h += 8)
            Kernel6x8(kc, a, b + h, nr, c + h, ldc, load, bias == null ? null : biasPerRow ? bias : bias + h, biasPerRow);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x8(int kc, float* a, float* b, nint bStride, float* c, nint ldc, bool load, float* bias, bool biasPerRow)
    {
        Vector128<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector128<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector128.Load(b);
            var b1 = Vector128.Load(b + 4);
            var av = Vector128.Create(a[0]);
            c00 = Mad(av, b0, c00); c01 = Mad(av, b1, c01);
            av = Vector128.Create(a[1]);
            c10 = Mad(av, b0, c10); c11 = Mad(av, b1, c11);
            av = Vector128.Create(a[2]);
            c20 = Mad(av, b0, c20); c21 = Mad(av, b1, c21);
            av = Vector128.Create(a[3]);
            c30 = Mad(av, b0, c30); c31 = Mad(av, b1, c31);
            av = Vector128.Create(a[4]);
            c40 = Mad(av, b0, c40); c41 = Mad(av, b1, c41);
            av = Vector128.Create(a[5]);
            c50 = Mad(av, b0, c50); c51 = Mad(av, b1, c51);
            a += MR;
            b += bStride;
        }
        int step = biasPerRow ? 1 : 0;
        StoreRow(c, c00, c01, load, bias, biasPerRow); c += ldc;
        StoreRow(c, c10, c11, load, bias == null ? null : bias + step, biasPerRow); c += ldc;
        StoreRow(c, c20, c21, load, bias == null ? null : bias + 2 * step, biasPerRow); c += ldc;
        StoreRow(c, c30, c31, load, bias == null ? null : bias + 3 * step, biasPerRow); c += ldc;
        StoreRow(c, c40, c41, load, bias == null ? null : bias + 4 * step, biasPerRow); c += ldc;
        StoreRow(c, c50, c51, load, bias == null ? null : bias + 5 * step, biasPerRow);
    }

    // Same order as the AVX2 tiles' StoreRow: (sum + bias), then C + that.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreRow(float* c, Vector128<float> x0, Vector128<float> x1, bool load, float* bias, bool biasPerRow)
    {
        if (bias != null)
        {
            if (biasPerRow) { var bv = Vector128.Create(*bias); x0 += bv; x1 += bv; }
            else { x0 += Vector128.Load(bias); x1 += Vector128.Load(bias + 4); }
        }
        if (load) { x0 = Vector128.Load(c) + x0; x1 = Vector128.Load(c + 4) + x1; }
        x0.Store(c);
        x1.Store(c + 4);
    }

    /// <summary>a·b + c, fused where the hardware has a fused multiply-add.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector128<float> Mad(Vector128<float> a, Vector128<float> b, Vector128<float> c) => Vector128.MultiplyAddEstimate(a, b, c);

    /// <summary>Copies 16-float aligned-or-not rows with 128-bit moves (packing on the portable path).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Copy(float* src, float* dst, int count)
    {
        int i = 0;
        for (; i + 4 <= count; i += 4) Vector128.Load(src + i).Store(dst + i);
        for (; i < count; i++) dst[i] = src[i];
    }
}
