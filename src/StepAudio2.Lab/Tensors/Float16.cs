using System.Runtime.CompilerServices;

namespace StepAudio2.Lab.Tensors;

/// <summary>
/// bfloat16 ↔ float32 conversion. .NET has no BFloat16 type, so bf16 values travel as their raw <c>ushort</c> bits.
/// Narrowing rounds to nearest, ties to even (PyTorch's <c>tensor.to(torch.bfloat16)</c>); NaN stays a quiet NaN.
/// </summary>
public static class BFloat16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if ((bits & 0x7FFF_FFFFu) > 0x7F80_0000u)
            return (ushort)((bits >> 16) | 0x0040u); // NaN: keep sign and payload top, force quiet bit
        uint lsb = (bits >> 16) & 1u;
        bits += 0x7FFFu + lsb;
        return (ushort)(bits >> 16);
    }

    public static void ToSingle(ReadOnlySpan<ushort> source, Span<float> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = BitConverter.Int32BitsToSingle(source[i] << 16);
    }

    public static void FromSingle(ReadOnlySpan<float> source, Span<ushort> destination)
    {
        if (destination.Length < source.Length) throw new ArgumentException("destination too short", nameof(destination));
        for (int i = 0; i < source.Length; i++) destination[i] = FromSingle(source[i]);
    }
}

/// <summary>IEEE binary16 ↔ float32 via <see cref="Half"/> (round-to-nearest-even on narrowing).</summary>
public static class Float16
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float ToSingle(ushort bits) => (float)BitConverter.UInt16BitsToHalf(bits);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort FromSingle(float value) => BitConverter.HalfToUInt16Bits((Half)value);
}
