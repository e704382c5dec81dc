using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;
using T2W = StepAudio2.Lab.Models.Token2Wav.Token2Wav;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// <see cref="T2W"/> on the tiny token2wav folder (flow + HiFT of reference-data/make_flow.py and
/// make_hift.py, ONNX prompt models of make_onnx_fixtures.py) against the Python reference dump token2wav-short.
/// </summary>
public sealed class Token2WavTests(ITestOutputHelper output)
{
    private static string Dir => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");
    private static string FemalePrompt => Path.Combine(TestPaths.SharedAudio, "default_female.wav");

    private static Token2WavInputs DumpInputs()
    {
        using var dump = SafetensorsFile.Open(DumpPath);
        return Token2WavInputs.Read(dump);
    }

    [Fact]
    public void TheDumpsInputsGiveTheReferenceMelAndWaveform()
    {
        using var t2w = T2W.Load(Dir, promptModels: false);
        Assert.Null(t2w.Prompts);
        Assert.Equal(960, t2w.SamplesPerCode);
        var i = DumpInputs();
        var trace = new Trace();
        var r = t2w.Generate(i.Codes!, i.PromptTokens!, i.PromptMel!, i.Xvector!, i.Noise, i.HiftNoise, trace: trace);
        using var dump = SafetensorsFile.Open(DumpPath);
        double flow = TestMath.RelL2(r.Mel, dump.Get("flow"));
        double wav = TestMath.RelL2(Tensor.FromArray(r.Waveform, 1, r.Waveform.Length), dump.Get("hift"));
        output.WriteLine($"flow rel-L2 {flow:E2}, waveform rel-L2 {wav:E2}");
        Assert.True(flow <= 1e-5, $"flow rel-L2 {flow:E2}");
        Assert.True(wav <= 1e-3, $"waveform rel-L2 {wav:E2}"); // NSF phase accumulates in float32 (docs/model.md §9)
        Assert.Equal(20 * 960, r.Waveform.Length);
        Assert.Equal(i.Codes, r.Codes);
        Assert.Equal(0, r.DroppedCodes);
        Assert.True(r.FlowTime > TimeSpan.Zero && r.HiftTime > TimeSpan.Zero);
        // the inputs actually used are in the trace, as the dump names them
        foreach (var name in new[] { "input.codes", "input.prompt_tokens", "input.xvector", "input.prompt_mel", "input.noise", "input.hift_noise" })
            Assert.Equal(dump.Get(name).ToDoubleArray(), trace[name].ToDoubleArray());
        Assert.Equal(r.Waveform, trace["hift"].ToFloatArray());
    }

    [Fact]
    public void CodesAreFilteredAndOneSeedGivesOneWaveform()
    {
        using var t2w = T2W.Load(Dir, promptModels: false);
        var i = DumpInputs();
        int[] codes = [12, 6561, 400, 6600, 3000];
        var a = t2w.Generate(codes, i.PromptTokens!, i.PromptMel!, i.Xvector!, seed: 7);
        Assert.Equal([12, 400, 3000], a.Codes);
        Assert.Equal(2, a.DroppedCodes);
        Assert.Equal(3 * 960, a.Waveform.Length);
        Assert.Equal([1, 80, 6], a.Mel.Shape);
        Assert.All(a.Waveform, s => Assert.InRange(s, -0.99f, 0.99f));
        Assert.Contains(a.Waveform, s => s != 0);

        var b = t2w.Generate(codes, i.PromptTokens!, i.PromptMel!, i.Xvector!, seed: 7);
        Assert.Equal(a.Waveform, b.Waveform);
        var c = t2w.Generate(codes, i.PromptTokens!, i.PromptMel!, i.Xvector!, seed: 8);
        Assert.NotEqual(a.Waveform, c.Waveform);

        // the seeded noises are what an explicit N(0,1) draw would be: the generated ones are recorded with their shapes
        var trace = new Trace(["input.*"]);
        t2w.Generate(codes, i.PromptTokens!, i.PromptMel!, i.Xvector!, seed: 7, trace: trace);
        Assert.Equal([1, 80, 2 * (12 + 3)], trace["input.noise"].Shape);
        Assert.Equal([1, 3 * 960, 9], trace["input.hift_noise"].Shape);
        var d = t2w.Generate(codes, i.PromptTokens!, i.PromptMel!, i.Xvector!, trace["input.noise"], trace["input.hift_noise"], seed: 12345);
        Assert.Equal(a.Waveform, d.Waveform);
    }

    [Fact]
    public void ThePromptWavGoesThroughTheOnnxModelsAndTheCache()
    {
        using var t2w = T2W.Load(Dir);
        Assert.NotNull(t2w.Prompts);
        var r = t2w.TokensToWav([1, 2, 3, 4], FemalePrompt, seed: 3);
        Assert.Equal(4 * 960, r.Waveform.Length);
        var again = t2w.TokensToWav([1, 2, 3, 4], FemalePrompt, seed: 3);
        Assert.Equal(r.Waveform, again.Waveform);
        Assert.Equal(1, t2w.Prompts!.ComputeCount); // the second call used the cached features
        var clip = r.ToClip();
        Assert.Equal(24000, clip.SampleRate);
        Assert.Equal(4 * 960, clip.Frames);
    }

    [Fact]
    public void BadFoldersAndArgumentsAreClearErrors()
    {
        Assert.Contains("no such token2wav folder", Assert.Throws<DirectoryNotFoundException>(() => T2W.Load(Path.Combine(Dir, "nope"))).Message);
        using var tmp = TestPaths.Temp();
        foreach (var f in new[] { "flow.pt", "flow.yaml" }) File.Copy(Path.Combine(Dir, f), tmp.File(f));
        Assert.Contains("hift.pt", Assert.Throws<FileNotFoundException>(() => T2W.Load(tmp.Path, promptModels: false)).Message);
        File.Copy(Path.Combine(Dir, "hift.pt"), tmp.File("hift.pt"));
        // without ONNX files, null means "when present": loads without the prompt front end
        using var noOnnx = T2W.Load(tmp.Path, promptModels: null);
        Assert.Null(noOnnx.Prompts);
        Assert.Contains("campplus.onnx", Assert.Throws<InvalidOperationException>(() => noOnnx.PreparePrompt(FemalePrompt)).Message);
        Assert.Contains("speech_tokenizer_v2_25hz.onnx", Assert.Throws<FileNotFoundException>(() => T2W.Load(tmp.Path, promptModels: true)).Message);

        var i = DumpInputs();
        Assert.Contains("none of the 2 codes", Assert.Throws<ArgumentException>(() => noOnnx.Generate([6561, 6561], i.PromptTokens!, i.PromptMel!, i.Xvector!)).Message);
        Assert.Contains("NSF noise", Assert.Throws<ArgumentException>(() =>
            noOnnx.Generate([1, 2], i.PromptTokens!, i.PromptMel!, i.Xvector!, hiftNoise: Tensor.FromArray(new float[9 * 960], 1, 960, 9))).Message);
    }
}
