namespace StepAudio2.Lab.Tensors;

/// <summary>Element types the workbench reads, writes and computes with (safetensors' set).</summary>
public enum DType
{
    F32,
    F16,
    BF16,
    F64,
    I64,
    I32,
    I16,
    I8,
    U8,
    Bool,
    /// <summary>Unsigned 32-bit words: MLX's packed quantized weights.</summary>
    U32,
}

public static class DTypeInfo
{
    public static int SizeOf(this DType dtype) => dtype switch
    {
        DType.F64 or DType.I64 => 8,
        DType.F32 or DType.I32 or DType.U32 => 4,
        DType.F16 or DType.BF16 or DType.I16 => 2,
        DType.I8 or DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    public static bool IsFloating(this DType dtype) =>
        dtype is DType.F32 or DType.F16 or DType.BF16 or DType.F64;

    /// <summary>The dtype string used in safetensors headers ("F32", "BF16", "BOOL", …).</summary>
    public static string SafetensorsName(this DType dtype) => dtype switch
    {
        DType.Bool => "BOOL",
        _ => dtype.ToString().ToUpperInvariant(),
    };

    public static bool TryParseSafetensorsName(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "F64": dtype = DType.F64; return true;
            case "I64": dtype = DType.I64; return true;
            case "I32": dtype = DType.I32; return true;
            case "I16": dtype = DType.I16; return true;
            case "I8": dtype = DType.I8; return true;
            case "U8": dtype = DType.U8; return true;
            case "BOOL": dtype = DType.Bool; return true;
            case "U32": dtype = DType.U32; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>Lower-case short name used in reports ("f32", "bf16", …), matching MLX/PyTorch spelling.</summary>
    public static string ShortName(this DType dtype) => dtype switch
    {
        DType.Bool => "bool",
        _ => dtype.ToString().ToLowerInvariant(),
    };
}
