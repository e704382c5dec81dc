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
    public static float Load1(byte* row, nint index) => ((float*)row)[index];
}

/// <summary>Rows of bfloat16 bits: widening is exact (u16 → u32, shift left 16), so no rounding happens here.</summary>
internal readonly unsafe struct Bf16Rows : IRowFormat
{
    public static int ElementSize => 2;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Load8(byte* row, nint index)
        => Avx2.ShiftLeftLogical(Avx2.ConvertToVector256Int32((ushort*)row + index), 16).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Load1(byte* row, nint index) => BitConverter.Int32BitsToSingle(((ushort*)row)[index] << 16);
}
