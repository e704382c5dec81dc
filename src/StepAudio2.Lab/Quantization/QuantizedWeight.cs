using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Quantization;

/// <summary>
/// One matrix in MLX's affine quantized layout (what <c>mx.quantize(w, group_size, bits, mode="affine")</c> returns and
/// <c>mlx.nn.QuantizedLinear</c>/<c>QuantizedEmbedding</c> store): <see cref="Weight"/> uint32 [out, in·bits/32], each
/// row one little-endian bit stream of b-bit codes (code i in bits i·b … i·b+b−1, least significant first);
/// <see cref="Scales"/> and <see cref="Biases"/> [out, in/group_size] in the source dtype; w = scale·q + bias.
/// </summary>
public sealed class QuantizedWeight
{
    public static readonly int[] SupportedBits = [2, 3, 4, 5, 6, 8];
    public static readonly int[] SupportedGroupSizes = [32, 64, 128];

    private QuantizedWeight(Tensor weight, Tensor scales, Tensor biases, int bits, int groupSize, int inFeatures)
    {
        Weight = weight;
        Scales = scales;
        Biases = biases;
        Bits = bits;
        GroupSize = groupSize;
        InFeatures = inFeatures;
    }

    public Tensor Weight { get; }
    public Tensor Scales { get; }
    public Tensor Biases { get; }
    public int Bits { get; }
    public int GroupSize { get; }
    public int OutFeatures => Weight.Shape[0];
    public int InFeatures { get; }
    public int Groups => InFeatures / GroupSize;
    /// <summary>uint32 words per packed row (in·bits/32).</summary>
    public int WordsPerRow => Weight.Shape[1];
    /// <summary>Bytes streamed to use the matrix once (packed codes plus scales and biases).</summary>
    public long ByteCount => Weight.ByteCount + Scales.ByteCount + Biases.ByteCount;

    /// <summary>Checks bits/group size and the three shapes against each other; a fault names the tensor and shape.</summary>
    public static QuantizedWeight Create(Tensor weight, Tensor scales, Tensor biases, int bits, int groupSize)
    {
        if (Validate(weight, scales, biases, bits, groupSize) is { } fault) throw new ArgumentException(fault.Message);
        return new QuantizedWeight(weight.Contiguous(), scales.Contiguous(), biases.Contiguous(), bits, groupSize, scales.Shape[1] * groupSize);
    }

    /// <summary>Why the triple is not a valid quantized matrix (Which: "weight", "scales" or "biases"), or null.</summary>
    public static (string Which, string Message)? Validate(Tensor weight, Tensor scales, Tensor biases, int bits, int groupSize)
    {
        if (Array.IndexOf(SupportedBits, bits) < 0) return ("weight", $"bits {bits} not supported (2, 3, 4, 5, 6 or 8)");
        if (Array.IndexOf(SupportedGroupSizes, groupSize) < 0) return ("weight", $"group size {groupSize} not supported (32, 64 or 128)");
        if (weight.DType != DType.U32 || weight.Rank != 2)
            return ("weight", $"packed weight must be u32 [out, in·bits/32], found {weight.DType.ShortName()} {Tensor.ShapeString(weight.Shape)}");
        if (scales.Rank != 2 || !scales.DType.IsFloating() || scales.DType == DType.F64)
            return ("scales", $"scales must be f32/bf16/f16 [out, in/group_size], found {scales.DType.ShortName()} {Tensor.ShapeString(scales.Shape)}");
        if (biases.DType != scales.DType || !biases.Shape.SequenceEqual(scales.Shape))
            return ("biases", $"biases {biases.DType.ShortName()} {Tensor.ShapeString(biases.Shape)} must match scales {scales.DType.ShortName()} {Tensor.ShapeString(scales.Shape)}");
        int outF = weight.Shape[0];
        long inF = (long)scales.Shape[1] * groupSize;
        if (scales.Shape[0] != outF)
            return ("scales", $"scales {Tensor.ShapeString(scales.Shape)} do not have the weight's {outF} rows");
        if (inF * bits != (long)weight.Shape[1] * 32)
            return ("weight", $"packed weight {Tensor.ShapeString(weight.Shape)} does not hold {inF} {bits}-bit codes per row (scales {Tensor.ShapeString(scales.Shape)}, group size {groupSize}: expected [{outF}, {inF * bits / 32}])");
        return null;
    }

    /// <summary>The expected packed shape of an [out, in] matrix.</summary>
    public static int[] PackedShape(int outFeatures, int inFeatures, int bits) => [outFeatures, checked(inFeatures * bits / 32)];

    public override string ToString() => $"QuantizedWeight({Bits} bits, group {GroupSize}, [{OutFeatures}, {InFeatures}], scales {Scales.DType.ShortName()})";
}
