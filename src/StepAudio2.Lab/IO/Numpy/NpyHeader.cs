using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>The parsed, validated header of one .npy array.</summary>
/// <param name="Version">Format version as (major, minor): (1,0), (2,0) or (3,0).</param>
/// <param name="Descr">The dtype descriptor exactly as written (<c>'&lt;f4'</c>, <c>'|b1'</c>, …).</param>
/// <param name="BigEndian">True when multi-byte elements are stored big-endian and must be swapped on load.</param>
/// <param name="FortranOrder">True when the data is stored column-major.</param>
/// <param name="DataOffset">Byte offset of the first data byte from the start of the .npy (= prefix + header length).</param>
public sealed record NpyHeader((int Major, int Minor) Version, string Descr, DType DType, bool BigEndian, bool FortranOrder, int[] Shape, long DataOffset)
{
    public long ElementCount => Tensor.CountElements(Shape);

    /// <summary>Bytes of array data that must follow the header, exactly.</summary>
    public long DataByteLength => ElementCount * DType.SizeOf();

    /// <summary>Whether the stored bytes are already the in-memory layout of a little-endian tensor (mappable zero-copy).</summary>
    public bool IsNativeLayout => !BigEndian || DType.SizeOf() == 1;
}

/// <summary>Maps NumPy dtype descriptors ("&lt;f4", "&gt;i8", "|b1") to <see cref="DType"/> and back.</summary>
public static class NpyDescr
{
    /// <summary>The little-endian descriptor numpy writes for <paramref name="dtype"/>; bf16 has none (throws).</summary>
    public static string For(DType dtype) => dtype switch
    {
        DType.F32 => "<f4",
        DType.F64 => "<f8",
        DType.F16 => "<f2",
        DType.I64 => "<i8",
        DType.I32 => "<i4",
        DType.I16 => "<i2",
        DType.I8 => "|i1",
        DType.U8 => "|u1",
        DType.U32 => "<u4",
        DType.Bool => "|b1",
        DType.BF16 => throw new ArgumentException("numpy has no bfloat16 dtype; convert to f32 first (or pass the BFloat16AsFloat32 option)", nameof(dtype)),
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    /// <summary>Parses a simple (non-structured) descriptor; on failure <paramref name="fault"/> says why.</summary>
    public static bool TryParse(string descr, out DType dtype, out bool bigEndian, out string fault)
    {
        dtype = default;
        bigEndian = false;
        fault = "";
        ReadOnlySpan<char> s = descr;
        if (s.Length > 0 && s[0] is '<' or '>' or '|' or '=')
        {
            // '|' means "byte order not applicable" and '=' means native; both are little-endian on every platform we run on.
            bigEndian = s[0] == '>';
            s = s[1..];
        }
        switch (s)
        {
            case "f2": dtype = DType.F16; break;
            case "f4": dtype = DType.F32; break;
            case "f8": dtype = DType.F64; break;
            case "i1": dtype = DType.I8; break;
            case "i2": dtype = DType.I16; break;
            case "i4": dtype = DType.I32; break;
            case "i8": dtype = DType.I64; break;
            case "u1": dtype = DType.U8; break;
            case "u4": dtype = DType.U32; break;
            case "b1": dtype = DType.Bool; break;
            default:
                fault = s switch
                {
                    "O" or "O8" or "O4" => $"object dtype '{descr}' (pickled Python objects) is refused: loading it would run pickle",
                    "u2" or "u8" => $"unsupported dtype '{descr}': unsigned {s[1..].ToString()}-byte integers have no DType equivalent",
                    "V2" => $"unsupported dtype '{descr}' (raw 2-byte void; this is how ml_dtypes' bfloat16 is saved, which numpy cannot describe)",
                    _ when s.Length > 0 && s[0] is 'S' or 'U' or 'V' or 'a' => $"unsupported dtype '{descr}' (string/void dtypes are not tensors)",
                    _ when s.Length > 0 && s[0] is 'c' => $"unsupported dtype '{descr}' (complex numbers are not supported)",
                    _ when s.Length > 0 && s[0] is 'M' or 'm' => $"unsupported dtype '{descr}' (datetime/timedelta are not supported)",
                    _ => $"unknown dtype descriptor '{descr}' (supported: f2 f4 f8 i1 i2 i4 i8 u1 b1, byte order < > | =)",
                };
                return false;
        }
        if (dtype.SizeOf() == 1) bigEndian = false;
        return true;
    }
}
