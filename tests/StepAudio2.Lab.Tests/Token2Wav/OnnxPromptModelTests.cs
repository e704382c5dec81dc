using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// The ORT paths of the voice prompt: the tiny ONNX models of make_onnx_fixtures.py return exactly the tokens PyTorch
/// computed and the x-vector within 1e-5; malformed signatures fail on open with file, index and expected vs found named.
/// </summary>
public sealed class OnnxPromptModelTests
{
    private static readonly Lazy<SafetensorsFile> s_io =
        new(() => SafetensorsFile.Open(TestPaths.Fixture("voice_prompt", "onnx_io.safetensors")));

    internal static string Model(string file) => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", file);

    [Theory]
    [InlineData("full")]
    [InlineData("masked")]
    [InlineData("odd")]
    [InlineData("one")]
    public void Tokenizer_ReturnsThePyTorchTokensExactly(string name)
    {
        var mel = s_io.Value.Get($"tokenizer.{name}.mel");
        int length = s_io.Value.Get($"tokenizer.{name}.length").AsSpan<int>()[0];
        var expected = s_io.Value.Get($"tokenizer.{name}.tokens");
        int expectedLength = s_io.Value.Get($"tokenizer.{name}.token_length").AsSpan<int>()[0];

        using var tok = S3Tokenizer.Open(Model(S3Tokenizer.FileName));
        var tokens = tok.Tokenize(mel, length);

        Assert.Equal(expected.Shape[1], tokens.Length);
        Assert.Equal(S3Tokenizer.TokenCount(mel.Shape[2]), tokens.Length);
        Assert.Equal(S3Tokenizer.TokenCount(length), expectedLength); // the model's own length output agrees with the formula
        Assert.Equal(expected.AsSpan<int>().ToArray(), tokens);
        using var tok64 = S3Tokenizer.Open(Model("tokenizer_int64.onnx")); // int64 length input and ids
        Assert.Equal(tokens, tok64.Tokenize(mel, length));
    }

    [Fact]
    public void Tokenizer_MaskingChangesTheTokens_AndAcceptsRank2Mel()
    {
        var mel = s_io.Value.Get("tokenizer.masked.mel");
        using var tok = S3Tokenizer.Open(Model(S3Tokenizer.FileName));
        var masked = tok.Tokenize(mel, 41);
        var full = tok.Tokenize(mel);
        Assert.NotEqual(masked, full); // the length input really reaches the model
        var rank2 = Tensor.FromArray(mel.ToFloatArray(), 128, mel.Shape[2]);
        Assert.Equal(masked, tok.Tokenize(rank2, 41));
        // Tokens cover several FSQ cells, not one constant code (the fixture would not test much otherwise).
        Assert.True(full.Distinct().Count() > 3, string.Join(",", full));
    }

    [Fact]
    public void Tokenizer_ReportsNamesAndRejectsBadArguments()
    {
        using var tok = S3Tokenizer.Open(Model(S3Tokenizer.FileName));
        Assert.Equal(["feats", "feats_length"], tok.InputNames);
        Assert.Equal("indices", tok.OutputNames[0]);
        Assert.Throws<ArgumentException>(() => tok.Tokenize(Tensor.Zeros(DType.F32, 1, 80, 10)));
        Assert.Throws<ArgumentException>(() => tok.Tokenize(Tensor.Zeros(DType.F64, 128, 10)));
        Assert.Throws<ArgumentException>(() => tok.Tokenize(Tensor.Zeros(DType.F32, 128, 0)));
        Assert.ThrowsAny<ArgumentException>(() => tok.Tokenize(Tensor.Zeros(DType.F32, 128, 10), 11));
        var tooLong = Assert.Throws<ArgumentException>(() => tok.Tokenize(Tensor.Zeros(DType.F32, 128, 3001)));
        Assert.Contains("30 s", tooLong.Message);
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(4, 1)]
    [InlineData(5, 2)]
    [InlineData(7, 2)]
    [InlineData(64, 16)]
    [InlineData(770, 193)]
    [InlineData(3000, 750)]
    public void TokenCount_FollowsTheTwoStride2Convs(int frames, int tokens) => Assert.Equal(tokens, S3Tokenizer.TokenCount(frames));

    [Theory]
    [InlineData(50)]
    [InlineData(123)]
    [InlineData(3)]
    public void CampPlus_ReturnsThePyTorchXvector(int frames)
    {
        var fbank = s_io.Value.Get($"campplus.t{frames}.fbank");
        var expected = s_io.Value.Get($"campplus.t{frames}.xvector");
        using var camp = CampPlus.Open(Model(CampPlus.FileName));
        var x = camp.Embed(fbank);
        Assert.Equal([1, 192], x.Shape);
        double rel = TestMath.RelL2(x, expected);
        Assert.True(rel <= 1e-5, $"rel-L2 {rel:E3}");
        // [T, 80] without the batch dim is the same call.
        Assert.Equal(x.ToFloatArray(), camp.Embed(Tensor.FromArray(fbank.ToFloatArray(), frames, 80)).ToFloatArray());
        Assert.Equal(["input"], camp.InputNames);
    }

    [Fact]
    public void CampPlus_RejectsBadFeatures()
    {
        using var camp = CampPlus.Open(Model(CampPlus.FileName));
        Assert.Throws<ArgumentException>(() => camp.Embed(Tensor.Zeros(DType.F32, 10, 128)));
        Assert.Throws<ArgumentException>(() => camp.Embed(Tensor.Zeros(DType.F32, 2, 10, 80)));
        Assert.Throws<ArgumentException>(() => camp.Embed(Tensor.Zeros(DType.F32, 0, 80)));
    }

    [Fact]
    public void WrongInputRank_FailsOnOpen_NamingFileIndexAndSignatures()
    {
        var path = Model("bad_rank_tokenizer.onnx");
        var e = Assert.Throws<OnnxModelException>(() => S3Tokenizer.Open(path));
        Assert.Equal(path, e.FilePath);
        Assert.Equal("input 0 'feats'", e.Key);
        Assert.Contains("rank 2, not 3", e.Message);
        Assert.Contains("expected float32 [1, 128, L]", e.Message);
        Assert.Contains("found float32 [128, L]", e.Message);
    }

    [Fact]
    public void WrongInputDtype_FailsOnOpen_NamingFileIndexAndSignatures()
    {
        var path = Model("bad_dtype_campplus.onnx");
        var e = Assert.Throws<OnnxModelException>(() => CampPlus.Open(path));
        Assert.IsAssignableFrom<LabDataException>(e);
        Assert.Equal("input 0 'input'", e.Key);
        Assert.Contains("wrong element type", e.Message);
        Assert.Contains("expected float32 [1, T, 80], found float64 [1, T, 80]", e.Message);
    }

    [Fact]
    public void SwappedModels_FailOnTheInputCount()
    {
        var e1 = Assert.Throws<OnnxModelException>(() => S3Tokenizer.Open(Model(CampPlus.FileName)));
        Assert.Equal("inputs", e1.Key);
        Assert.Contains("has 1 inputs (0 'input' float32 [1, T, 80]); expected 2", e1.Message);
        var e2 = Assert.Throws<OnnxModelException>(() => CampPlus.Open(Model(S3Tokenizer.FileName)));
        Assert.Contains("has 2 inputs", e2.Message);
    }

    [Fact]
    public void CorruptOrMissingFiles_GiveTypedErrors()
    {
        using var tmp = TestPaths.Temp();
        var garbage = tmp.File("garbage.onnx");
        File.WriteAllBytes(garbage, "this is not a protobuf at all"u8.ToArray());
        var e = Assert.Throws<OnnxModelException>(() => CampPlus.Open(garbage));
        Assert.Equal(garbage, e.FilePath);
        Assert.Contains("cannot load", e.Message);

        var truncated = tmp.File("truncated.onnx");
        var bytes = File.ReadAllBytes(Model(CampPlus.FileName));
        File.WriteAllBytes(truncated, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        Assert.Throws<OnnxModelException>(() => CampPlus.Open(truncated));

        Assert.Throws<FileNotFoundException>(() => S3Tokenizer.Open(tmp.File("absent.onnx")));
    }
}
