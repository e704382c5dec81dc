using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>How a kernel reads elements of a weight row as f32; struct implementations specialise generic kernels at JIT time.</summary>
internal unsafe interface IRowFormat
{
    /// <summary>Bytes per element.</summary>
    static abstract int ElementSize { get; }
    /// <summary>Eight consecutive elements starting at element <paramref name="index"/>, widened to f32 (AVX2 only).</summary>
    static abstract Vector256<float> Load8(byte* row, nint index);
    /// <summary>The same eight elements as two 128-bit halves, through the cross-platform vector APIs (NEON, SSE).</summary>
    static abstract void Load8x2(byte* row, nint index, out Vector128<float> lo, out Vector128<float> hi);
    /// <summary>One element widened to f32.</summary>
    static abstract float Load1(byte* row, nint index);
}

/// <summary>Rows of f32 values.</summary>
internal readonly unsafe struct F32Rows : IRowFormat
{
    public static int ElementSize => 4;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, nint index) => Avx.LoadVector256((float*)row + index);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load8x2(byte* row, nint index, out Vector128<float> lo, out Vector128<float> hi)
    {
        lo = Vector128.Load((float*)row + index);
        hi = Vector128.Load((float*)row + index + 4);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, nint index) => ((float*)row)[index];
}

/// <summary>Rows of bfloat16 bits: widening is exact (u16 → u32, shift left 16), so no rounding happens here.</summary>
internal readonly unsafe struct Bf16Rows : IRowFormat
{
    public static int ElementSize => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, nint index)
        => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + index), 16).AsSingle();

    // One 16-byte load of eight bf16, zero-extended to u32 halves (NEON uxtl/ushll, SSE punpck) and shifted into the
    // f32 exponent/mantissa position: exact, like Load8.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Load8x2(byte* row, nint index, out Vector128<float> lo, out Vector128<float> hi)
    {
        var (l, h) = Vector128.Widen(Vector128.Load((ushort*)row + index));
        lo = Vector128.ShiftLeft(l, 16).AsSingle();
        hi = Vector128.ShiftLeft(h, 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, nint index) => BitConverter.Int32BitsToSingle(((ushort*)row)[index] << 16);
}
