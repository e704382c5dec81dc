using System.Buffers.Binary;
using System.Text.Json;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// <c>steplab trace --token2wav</c> (token2wav parity end to end through <c>steplab compare</c>), <c>steplab token2wav</c>
/// (a playable 24 kHz WAV) and their bad-input exits, in-process on the tiny token2wav folder.
/// </summary>
public sealed class Token2WavCliTests
{
    private static string Dir => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
    private static string Dump => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");
    private static string FemalePrompt => Path.Combine(TestPaths.SharedAudio, "default_female.wav");

    /// <summary>
    /// The acceptance tolerances of issue 6, as <c>compare --override</c> globs: flow at rel-L2 ≤ 1e-5 (the f32 tier's bound)
    /// with an element bound of 1e-4 absolute, because a handful of conformer elements move by up to 3e-5 in float32
    /// (summation order) while the tensor's rel-L2 stays near 5e-7; the whole HiFT chain at rel-L2 ≤ 1e-3 (the NSF
    /// phase accumulates in float32, docs/model.md §9). Inputs are compared at the default f32 tier (they are copied: exact).
    /// </summary>
    public static readonly string[] Overrides = ["flow*=rtol=1e-5,atol=1e-4,rel_l2=1e-5", "hift*=rtol=1e-3,atol=1e-3,rel_l2=1e-3"];

    [Fact]
    public void TraceFromTheDumpsInputsMatchesTheReferenceThroughCompare()
    {
        using var tmp = TestPaths.Temp();
        var trace = tmp.File("t2w.safetensors");
        var (code, stdout, err) = InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", Dump, "--out", trace);
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("20 codes, 12 prompt tokens → mel [1, 80, 40] → 19200 samples", stdout);
        Assert.DoesNotContain("generated:", stdout);
        using (var st = SafetensorsFile.Open(trace))
        {
            var order = DumpFile.ReadOrder(st.Metadata)!;
            Assert.Contains("input.hift_noise", order);
            Assert.Contains("flow.decoder.estimator.step.9", order);
            Assert.Equal("hift", order[^1]);
        }
        var (cmp, table, _) = InspectCliTests.Run(["compare", trace, Dump, "--override", .. Overrides]);
        Assert.True(cmp == StepLabCli.Ok, table);
        Assert.Contains("54 compared, 0 failing, 0 missing in candidate", table);

        // with no options at all the documented floors apply by default and are named in the closing lines
        var (plain, plainTable, _) = InspectCliTests.Run("compare", trace, Dump);
        Assert.True(plain == StepLabCli.Ok, plainTable);
        Assert.Contains("flow floor (flow*): rtol 1e-05, atol 1e-04, rel-L2 ≤ 1e-05", plainTable);
        Assert.Contains("hift-chain floor (hift*): rtol 0.001, atol 0.001, rel-L2 ≤ 0.001", plainTable);
        Assert.Contains("54 compared, 0 failing", plainTable);

        // the same trace fails the strict f32 tier and the port rule without the floors: the floors are what let the NSF
        // chain through, not a loose default
        var (strict, strictTable, _) = InspectCliTests.Run("compare", trace, Dump, "--tier", "f32");
        Assert.Equal(StepLabCli.Failed, strict);
        Assert.Contains("hift.m_source", strictTable);
        var (bare, bareTable, _) = InspectCliTests.Run("compare", trace, Dump, "--no-default-rules");
        Assert.Equal(StepLabCli.Failed, bare);
        Assert.Contains("first failure: #", bareTable);
    }

    [Fact]
    public void TraceDrawsAbsentNoisesFromTheSeedAndNeedsPromptFeatures()
    {
        using var tmp = TestPaths.Temp();
        var partial = tmp.File("partial.safetensors");
        using (var st = SafetensorsFile.Open(Dump))
            DumpFile.Save(partial, new[] { "input.codes", "input.prompt_tokens", "input.xvector", "input.prompt_mel" }.Select(n => (n, st.Get(n).Contiguous())).ToList());
        var (code, stdout, err) = InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", partial, "--seed", "5", "--capture", "hift", "--out", tmp.File("a.safetensors"));
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("generated: input.noise (seed 5), input.hift_noise (seed 6)", stdout);
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", partial, "--seed", "5", "--capture", "hift", "--out", tmp.File("b.safetensors")).Code);
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", partial, "--seed", "6", "--capture", "hift", "--out", tmp.File("c.safetensors")).Code);
        using var a = SafetensorsFile.Open(tmp.File("a.safetensors"));
        using var b = SafetensorsFile.Open(tmp.File("b.safetensors"));
        using var c = SafetensorsFile.Open(tmp.File("c.safetensors"));
        Assert.Equal(["input.codes", "input.prompt_tokens", "input.xvector", "input.prompt_mel", "input.noise", "input.hift_noise", "hift"], DumpFile.ReadOrder(a.Metadata));
        Assert.Equal([1, 80, 64], a.Get("input.noise").Shape);
        Assert.Equal([1, 19200, 9], a.Get("input.hift_noise").Shape);
        foreach (var name in new[] { "input.noise", "input.hift_noise" })
        {
            var v = a.Get(name).ToDoubleArray();
            double mean = v.Average(), std = Math.Sqrt(v.Select(x => (x - mean) * (x - mean)).Average());
            Assert.InRange(mean, -0.1, 0.1); // N(0,1) draws
            Assert.InRange(std, 0.9, 1.1);
        }
        Assert.Equal(a.Get("hift").ToFloatArray(), b.Get("hift").ToFloatArray());
        Assert.NotEqual(a.Get("hift").ToFloatArray(), c.Get("hift").ToFloatArray());

        // without prompt features and without --prompt: exit 2 naming what is missing
        var codesOnly = tmp.File("codes.safetensors");
        using (var st = SafetensorsFile.Open(Dump)) DumpFile.Save(codesOnly, [("input.codes", st.Get("input.codes").Contiguous())]);
        var (bad, _, message) = InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", codesOnly, "--out", tmp.File("x.safetensors"));
        Assert.Equal(StepLabCli.BadInput, bad);
        Assert.Contains("input.prompt_tokens, input.xvector, input.prompt_mel", message);
        // with --prompt they come from the ONNX models
        var (withPrompt, promptOut, promptErr) = InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", codesOnly, "--prompt", FemalePrompt, "--out", tmp.File("p.safetensors"));
        Assert.True(withPrompt == StepLabCli.Ok, promptErr);
        Assert.Contains("prompt features from default_female.wav", promptOut);
        // the LLM form still requires its own options
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("trace", "--out", tmp.File("y.safetensors")).Code);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("trace", "--token2wav", Dir, "--out", tmp.File("y.safetensors")).Code);
        var (mixed, _, mixedErr) = InspectCliTests.Run("trace", "--token2wav", Dir, "--inputs", Dump, "--model", Dir, "--out", tmp.File("y.safetensors"));
        Assert.Equal(StepLabCli.BadInput, mixed);
        Assert.Contains("takes no --model or --audio", mixedErr);
    }

    [Fact]
    public void Token2WavWritesA24kHzWavOf960SamplesPerCode()
    {
        using var tmp = TestPaths.Temp();
        var wav = tmp.File("out.wav");
        var (code, stdout, err) = InspectCliTests.Run("token2wav", "--token2wav", Dir, "--prompt", FemalePrompt, "--codes-file", Dump, "--out", wav, "--seed", "3");
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("20 codes → 0.80 s of 24 kHz audio (19200 samples, float32)", stdout);

        // canonical IEEE-float RIFF header: format 3, mono, 24 kHz, 32 bits, fact = frames, data = 4 bytes × 480·2N
        var bytes = File.ReadAllBytes(wav);
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(bytes, 0, 4));
        Assert.Equal((uint)(bytes.Length - 8), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal("WAVE", System.Text.Encoding.ASCII.GetString(bytes, 8, 4));
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(20)));
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(22)));
        Assert.Equal(24000u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(24)));
        Assert.Equal(32, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(34)));
        Assert.Equal("fact", System.Text.Encoding.ASCII.GetString(bytes, 38, 4));
        Assert.Equal(480u * 2 * 20, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(46)));
        Assert.Equal("data", System.Text.Encoding.ASCII.GetString(bytes, 50, 4));
        Assert.Equal(4u * 480 * 2 * 20, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(54)));

        var clip = AudioFile.Read(wav);
        Assert.Equal(24000, clip.SampleRate);
        Assert.Equal(1, clip.ChannelCount);
        Assert.Equal(480 * 2 * 20, clip.Frames);
        var samples = clip.Channel(0).ToArray();
        Assert.All(samples, s => Assert.InRange(s, -0.99f, 0.99f));
        Assert.True(samples.Select(s => (double)s * s).Average() > 1e-8, "silent output");

        // the same codes from the command line, a .npy and a text file give the same audio; --pcm16 writes 16-bit PCM
        using var st = SafetensorsFile.Open(Dump);
        var codes = st.Get("input.codes").ToInt64Array();
        NpyWriter.Write(tmp.File("codes.npy"), Tensor.FromArray(codes, codes.Length));
        File.WriteAllText(tmp.File("codes.txt"), string.Join("\n", codes));
        foreach (var (option, value) in new[] { ("--codes", string.Join(" ", codes)), ("--codes-file", tmp.File("codes.npy")), ("--codes-file", tmp.File("codes.txt")) })
        {
            var other = tmp.File("other.wav");
            var (c2, _, e2) = InspectCliTests.Run("token2wav", "--token2wav", Dir, "--prompt", FemalePrompt, option, value, "--out", other, "--seed", "3");
            Assert.True(c2 == StepLabCli.Ok, e2);
            Assert.Equal(bytes, File.ReadAllBytes(other));
        }
        var pcm = tmp.File("pcm.wav");
        var (c3, json, e3) = InspectCliTests.Run("token2wav", "--token2wav", Dir, "--prompt-features", Dump, "--codes", "0 1 6560", "--out", pcm, "--pcm16", "--json");
        Assert.True(c3 == StepLabCli.Ok, e3);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(3 * 960, doc.RootElement.GetProperty("samples").GetInt32());
        Assert.Equal("pcm16", doc.RootElement.GetProperty("format").GetString());
        var pcmBytes = File.ReadAllBytes(pcm);
        Assert.Equal(1, BinaryPrimitives.ReadUInt16LittleEndian(pcmBytes.AsSpan(20)));
        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(pcmBytes.AsSpan(34)));
        Assert.Equal(3 * 960, AudioFile.Read(pcm).Frames);
    }

    [Theory]
    [InlineData("missing-dir", "no such token2wav folder")]
    [InlineData("code-6561", "speech code 6561 at position 2 is outside 0..6560")]
    [InlineData("code-text", "'x' is not an integer speech code")]
    [InlineData("unreadable-file", "junk.bin")]
    [InlineData("absent-file", "no such codes file")]
    [InlineData("both-codes", "exactly one of --codes and --codes-file")]
    [InlineData("no-prompt", "exactly one of --prompt and --prompt-features")]
    [InlineData("absent-prompt", "no such voice prompt")]
    [InlineData("bad-out", "--out: no such folder")]
    public void BadInputExits2NamingTheFault(string fault, string message)
    {
        using var tmp = TestPaths.Temp();
        File.WriteAllBytes(tmp.File("junk.bin"), [0x00, 0x13, 0xFF, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05]);
        string[] args = fault switch
        {
            "missing-dir" => ["--token2wav", tmp.File("nope"), "--prompt", FemalePrompt, "--codes", "1 2"],
            "code-6561" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes", "1 2 6561"],
            "code-text" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes", "1 x"],
            "unreadable-file" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes-file", tmp.File("junk.bin")],
            "absent-file" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes-file", tmp.File("none.txt")],
            "both-codes" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes", "1", "--codes-file", Dump],
            "no-prompt" => ["--token2wav", Dir, "--codes", "1"],
            "absent-prompt" => ["--token2wav", Dir, "--prompt", tmp.File("none.wav"), "--codes", "1"],
            "bad-out" => ["--token2wav", Dir, "--prompt", FemalePrompt, "--codes", "1"],
            _ => throw new ArgumentException(fault),
        };
        var output = fault == "bad-out" ? tmp.File(Path.Combine("no", "dir", "o.wav")) : tmp.File("o.wav");
        var (code, _, err) = InspectCliTests.Run(["token2wav", .. args, "--out", output]);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(message, err);
        Assert.False(File.Exists(output));
    }
}
