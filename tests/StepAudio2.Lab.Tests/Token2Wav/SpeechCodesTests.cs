using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>Speech codes from people (strict: text, .npy, safetensors) and from the LLM (the examples' &lt; 6561 filter).</summary>
public sealed class SpeechCodesTests
{
    [Fact]
    public void FilterKeepsExactlyTheCodesBelow6561InOrder()
    {
        Assert.Equal([0, 17, 6560, 5], SpeechCodes.Filter([0, 6561, 17, 6560, 6655, 5, 6561]));
        Assert.Empty(SpeechCodes.Filter([6561, 6562]));
    }

    [Theory]
    [InlineData("1 2 3", new[] { 1, 2, 3 })]
    [InlineData("1,2,3", new[] { 1, 2, 3 })]
    [InlineData("[1, 2, 3]", new[] { 1, 2, 3 })]
    [InlineData("# codes of a reply\n0\n6560 # last valid\r\n\n42\n", new[] { 0, 6560, 42 })]
    public void ParseAcceptsSpacesCommasBracketsLinesAndComments(string text, int[] expected) =>
        Assert.Equal(expected, SpeechCodes.Parse(text, "--codes"));

    [Theory]
    [InlineData("1 6561 2", "speech code 6561 at position 1 is outside 0..6560")]
    [InlineData("1 -1", "speech code -1 at position 1")]
    [InlineData("1 two 3", "'two' is not an integer speech code")]
    [InlineData("1 2.5", "'2.5' is not an integer")]
    [InlineData("  # nothing\n", "holds no speech codes")]
    public void ParseRejectsWhatIsNotACodeNamingSourceAndPosition(string text, string fault)
    {
        var e = Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Parse(text, "--codes"));
        Assert.Contains(fault, e.Message);
        Assert.StartsWith("--codes", e.Message);
    }

    [Fact]
    public void LoadReadsTextNpyAndSafetensors()
    {
        using var tmp = TestPaths.Temp();
        File.WriteAllText(tmp.File("c.txt"), "5 6 7\n");
        Assert.Equal([5, 6, 7], SpeechCodes.Load(tmp.File("c.txt")));

        NpyWriter.Write(tmp.File("c32.npy"), Tensor.FromArray(new[] { 9, 8, 6560 }, 3));
        Assert.Equal([9, 8, 6560], SpeechCodes.Load(tmp.File("c32.npy")));
        NpyWriter.Write(tmp.File("c64.npy"), Tensor.FromArray(new long[] { 1, 2 }, 1, 2));
        Assert.Equal([1, 2], SpeechCodes.Load(tmp.File("c64.npy")));

        // a reference dump: input.codes among others
        var dump = Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");
        using (var st = SafetensorsFile.Open(dump))
            Assert.Equal(st.Get("input.codes").ToInt64Array().Select(c => (int)c), SpeechCodes.Load(dump));
        using (var st = SafetensorsFile.Open(dump))
            Assert.Equal(st.Get("input.prompt_tokens").ToInt64Array().Select(c => (int)c), SpeechCodes.Load(dump, "input.prompt_tokens"));
    }

    [Fact]
    public void LoadRejectsFloatsWrongShapesOutOfRangeAndMissingFilesNamingThem()
    {
        using var tmp = TestPaths.Temp();
        NpyWriter.Write(tmp.File("f.npy"), Tensor.FromArray(new[] { 1f, 2f }, 2));
        Assert.Contains("must be integers", Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(tmp.File("f.npy"))).Message);
        NpyWriter.Write(tmp.File("m.npy"), Tensor.FromArray(new[] { 1, 2, 3, 4 }, 2, 2));
        Assert.Contains("[N] or [1, N]", Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(tmp.File("m.npy"))).Message);
        NpyWriter.Write(tmp.File("big.npy"), Tensor.FromArray(new long[] { 3, 7000 }, 2));
        var big = Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(tmp.File("big.npy")));
        Assert.Contains("7000 at position 1", big.Message);
        Assert.Contains("big.npy", big.Message);

        File.WriteAllBytes(tmp.File("junk.bin"), [0x00, 0xFF, 0x13, 0x00, 0x42, 0x00, 0x00, 0x00, 0x01]);
        Assert.Contains("junk.bin", Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(tmp.File("junk.bin"))).Message);
        var two = tmp.File("two.safetensors");
        SafetensorsWriter.Write(two, [new("a", Tensor.FromArray(new[] { 1 }, 1)), new("b", Tensor.FromArray(new[] { 2 }, 1))]);
        Assert.Contains("holds 2 tensors and no 'input.codes'", Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(two)).Message);
        Assert.Contains("no such tensor", Assert.ThrowsAny<LabDataException>(() => SpeechCodes.Load(two, "c")).Message);
        Assert.Throws<FileNotFoundException>(() => SpeechCodes.Load(tmp.File("none.txt")));
    }
}
