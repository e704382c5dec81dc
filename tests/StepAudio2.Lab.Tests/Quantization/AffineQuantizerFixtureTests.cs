using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Quantization;

/// <summary>
/// Our MLX affine quantizer against an independent numpy implementation of MLX's algorithm
/// (reference-data/steplab_ref/quant.py → fixtures/quant): packed words, scales and biases bit for bit, for every
/// bits/group size on f32 and bf16 inputs; dequantisation bit for bit (scale·q then + bias, float32).
/// </summary>
public sealed class AffineQuantizerFixtureTests
{
    public static TheoryData<string, int, int> Cases()
    {
        var data = new TheoryData<string, int, int>();
        foreach (var dtype in new[] { "f32", "bf16" })
            foreach (int bits in QuantizedWeight.SupportedBits)
                foreach (int gs in QuantizedWeight.SupportedGroupSizes)
                    data.Add(dtype, bits, gs);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void PackedScalesBiasesAndDequantisedValuesAreBitExact(string dtype, int bits, int groupSize)
    {
        using var fx = Fixtures.OpenSafetensors(TestPaths.Fixture("quant", $"affine-{dtype}.safetensors"), out _);
        var input = fx.Get("input");
        Assert.Equal(dtype == "f32" ? DType.F32 : DType.BF16, input.DType);
        string key = $"b{bits}.g{groupSize}";

        var q = AffineQuantizer.Quantize(input, bits, groupSize);

        var expectedWeight = fx.Get(key + ".weight");
        Assert.Equal(DType.U32, expectedWeight.DType);
        Assert.Equal(expectedWeight.Shape, q.Weight.Shape);
        Assert.Equal(expectedWeight.AsSpan<uint>().ToArray(), q.Weight.AsSpan<uint>().ToArray());
        foreach (var (part, actual) in new[] { ("scales", q.Scales), ("biases", q.Biases) })
        {
            var expected = fx.Get($"{key}.{part}");
            Assert.Equal(expected.DType, actual.DType);
            Assert.Equal(expected.Shape, actual.Shape);
            Assert.True(RawBytes(expected).SequenceEqual(RawBytes(actual)), $"{key}.{part} differ in their bits");
        }
        var dequant = AffineQuantizer.Dequantize(q).AsSpan<float>().ToArray();
        var expectedDequant = fx.Get(key + ".dequant").AsSpan<float>().ToArray();
        Assert.Equal(expectedDequant.Select(BitConverter.SingleToInt32Bits), dequant.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void FixtureCoversBothEdgesAndTheStepFloor()
    {
        // the fixture must exercise negative scales (max end as edge), zero biases (q0 = 0) and the 1e-7 floor
        using var fx = Fixtures.OpenSafetensors(TestPaths.Fixture("quant", "affine-f32.safetensors"), out _);
        var scales = fx.Get("b4.g32.scales").ToFloatArray();
        var biases = fx.Get("b4.g32.biases").ToFloatArray();
        Assert.Contains(scales, s => s < 0);
        Assert.Contains(scales, s => s > 0);
        Assert.Contains(biases, b => b == 0f);
        Assert.Contains(scales, s => MathF.Abs(s) == 1e-7f);
    }

    [Fact]
    public void BitStreamIsLittleEndianLeastSignificantFirst()
    {
        // 3-bit codes 0..7 then 7..0: code i sits at bits 3i..3i+2 of the row's stream
        var w = new float[32];
        for (int i = 0; i < 32; i++) w[i] = i % 8;
        w[31] = 7; // max 7, min 0: step 1, edge 7 → scale −1, bias 7, q = 7 − w
        var q = AffineQuantizer.Quantize(Tensor.FromArray(w, 1, 32), 3, 32);
        Assert.Equal(-1f, q.Scales.ToFloatArray()[0]);
        Assert.Equal(7f, q.Biases.ToFloatArray()[0]);
        var words = q.Weight.AsSpan<uint>();
        Assert.Equal(3, words.Length);
        ulong stream = words[0] | ((ulong)words[1] << 32);
        for (int i = 0; i < 21; i++) Assert.Equal((uint)(7 - w[i]), (uint)(stream >> (3 * i)) & 7u);
        var codes = new uint[32];
        AffineQuantizer.UnpackRow(words, 3, 0, codes);
        for (int i = 0; i < 32; i++) Assert.Equal((uint)(7 - w[i]), codes[i]);
    }

    [Fact]
    public void BadShapesAndSettingsAreRefusedWithTheShape()
    {
        var w = Tensor.Zeros(DType.F32, 4, 48);
        Assert.Contains("48", Assert.Throws<ArgumentException>(() => AffineQuantizer.Quantize(w, 4, 32)).Message);
        Assert.Contains("bits 7", Assert.Throws<ArgumentException>(() => AffineQuantizer.Quantize(Tensor.Zeros(DType.F32, 4, 64), 7, 32)).Message);
        Assert.Contains("group size 16", Assert.Throws<ArgumentException>(() => AffineQuantizer.Quantize(Tensor.Zeros(DType.F32, 4, 64), 4, 16)).Message);
        var q = AffineQuantizer.Quantize(Tensor.Zeros(DType.F32, 4, 64), 4, 32);
        var fault = QuantizedWeight.Validate(Tensor.Zeros(DType.U32, 4, 9), q.Scales, q.Biases, 4, 32);
        Assert.NotNull(fault);
        Assert.Equal("weight", fault!.Value.Which);
        Assert.Contains("[4, 8]", fault.Value.Message);
        fault = QuantizedWeight.Validate(q.Weight, q.Scales, Tensor.Zeros(DType.BF16, 4, 2), 4, 32);
        Assert.Equal("biases", fault!.Value.Which);
    }

    private static byte[] RawBytes(Tensor t) => t.DType switch
    {
        DType.F32 => t.AsSpan<float>().ToArray().SelectMany(BitConverter.GetBytes).ToArray(),
        _ => t.AsSpan<ushort>().ToArray().SelectMany(BitConverter.GetBytes).ToArray(),
    };
}
