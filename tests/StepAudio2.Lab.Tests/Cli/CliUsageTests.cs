using StepAudio2.Lab.Cli;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// The usage contract a newcomer meets first: one output rule for every command that writes a dump, parse errors that
/// name the option and the kind of value it expects, and <c>tokenize --tokenizer</c> like every other model command.
/// </summary>
public sealed class CliUsageTests
{
    private static string Clip => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    public static TheoryData<string> Extensions => new() { "x.txt", "x.st", "x", "x.safetensors.bak", "x.NPZ.json" };

    [Theory]
    [MemberData(nameof(Extensions))]
    public void EveryDumpWritingCommandRefusesAnOtherExtensionWithTheSameMessage(string name)
    {
        using var tmp = TestPaths.Temp();
        var output = tmp.File(name);
        string[][] commands =
        [
            ["mel", Clip, "--out", output],
            ["features", Clip, "--kind", "s3mel", "--out", output],
            ["trace", "--model", Tiny, "--stage", "audio", "--audio", Clip, "--out", output],
            ["trace", "--token2wav", Path.Combine(Tiny, "token2wav"), "--inputs", Path.Combine(Tiny, "dumps", "token2wav-short.safetensors"), "--out", output],
        ];
        foreach (var args in commands)
        {
            var (code, _, err) = InspectCliTests.Run(args);
            Assert.True(code == StepLabCli.BadInput, $"{args[0]}: exit {code}: {err}");
            Assert.Contains($"--out '{output}': a dump is written as .safetensors, .npz or .npy", err);
            Assert.False(File.Exists(output), $"{args[0]} wrote {name}");
        }
    }

    [Fact]
    public void ATraceIsNotWrittenAsOneNpyButMelAndFeaturesAre()
    {
        using var tmp = TestPaths.Temp();
        var (code, _, err) = InspectCliTests.Run("trace", "--model", Tiny, "--stage", "audio", "--audio", Clip, "--out", tmp.File("t.npy"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(".npy holds one tensor and this dump holds many; use .safetensors or .npz", err);
        foreach (var ext in new[] { ".safetensors", ".npz", ".npy", ".NPY" })
        {
            Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("mel", Clip, "--out", tmp.File("m" + ext)).Code);
            Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("features", Clip, "--kind", "s3mel", "--out", tmp.File("f" + ext)).Code);
        }
    }

    [Theory]
    [InlineData(new[] { "tokenize", "--model", "M", "--bogus", "hi" }, "unknown option '--bogus' for 'steplab tokenize'")]
    [InlineData(new[] { "compare", "a", "b", "--bogus=1" }, "unknown option '--bogus' for 'steplab compare'")]
    [InlineData(new[] { "tokenize", "--model", "M", "--json", "--bogus", "hi" }, "unknown option '--bogus' for 'steplab tokenize'")]
    [InlineData(new[] { "mel", "x.wav", "--out", "x.npy", "-z" }, "unknown option '-z' for 'steplab mel'")]
    [InlineData(new[] { "compare", "a", "b", "--rtol", "abc" }, "--rtol expects a number, got 'abc'")]
    [InlineData(new[] { "compare", "a", "b", "--atol", "1e-3x" }, "--atol expects a number, got '1e-3x'")]
    [InlineData(new[] { "trace", "--model", "m", "--audio", "a", "--greedy", "two", "--out", "t.safetensors" }, "--greedy expects a whole number, got 'two'")]
    [InlineData(new[] { "transcribe", "--model", "m", "a.wav", "--max-tokens", "1.5" }, "--max-tokens expects a whole number, got '1.5'")]
    public void ParseErrorsNameTheOptionAndTheKindOfValue(string[] args, string expected)
    {
        args = args.Select(a => a == "M" ? TestPaths.SharedModel : a).ToArray();
        var (code, stdout, err) = InspectCliTests.Run(args);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Equal("", stdout);
        Assert.Contains($"steplab: {expected}", err);
        Assert.DoesNotContain("System.", err);
        Assert.DoesNotContain("Unrecognized command or argument 'hi'", err); // the token after an unknown option is not the mistake
    }

    [Fact]
    public void NegativeNumbersAndOptionLikeValuesAreNotUnknownOptions()
    {
        // a value that starts with '-' after an option that takes one is that option's value, not an unknown option
        var (code, _, err) = InspectCliTests.Run("tokenize", "--tokenizer", TestPaths.SharedModel, "--", "-x");
        Assert.True(code == StepLabCli.Ok, err);
        var (code2, _, err2) = InspectCliTests.Run("compare", "a.safetensors", "b.safetensors", "--atol", "-1");
        Assert.Equal(StepLabCli.BadInput, code2);
        Assert.DoesNotContain("unknown option", err2);
    }

    [Fact]
    public void TokenizeTakesTheTokenizerFolderLikeTheOtherModelCommands()
    {
        var (code, stdout, err) = InspectCliTests.Run("tokenize", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "Hello world");
        Assert.True(code == StepLabCli.Ok, err);
        Assert.StartsWith("9707 1879", stdout);
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("tokenize", "--tokenizer", TestPaths.SharedModel, "Hello world").Code);
        // the tiny checkpoint has no tokenizer files of its own: without --tokenizer that is bad input naming the folder
        var (bad, _, badErr) = InspectCliTests.Run("tokenize", "--model", Tiny, "Hello world");
        Assert.Equal(StepLabCli.BadInput, bad);
        Assert.Contains("tiny", badErr);
        var (none, _, noneErr) = InspectCliTests.Run("tokenize", "Hello world");
        Assert.Equal(StepLabCli.BadInput, none);
        Assert.Contains("tokenize needs --model <dir> or --tokenizer <dir>", noneErr);
    }
}
