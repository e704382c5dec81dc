using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// <c>steplab features</c> run in-process: each kind's file equals the Python reference of its frontend, and bad input
/// exits 2 with one line.
/// </summary>
public sealed class FeaturesCliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args) => InspectCliTests.Run(args);

    /// <summary>A float32 WAV of fixture samples: the CLI then reads exactly the samples the reference used.</summary>
    private static string WriteWav(TempDir tmp, Tensor samples, int rate)
    {
        var path = tmp.File($"in{rate}.wav");
        WavWriter.Write(path, samples.ToFloatArray(), rate);
        return path;
    }

    private static double MaxAbs(Tensor a, Tensor b)
    {
        Assert.Equal(b.Shape, a.Shape);
        var x = a.ToDoubleArray();
        var y = b.ToDoubleArray();
        return x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
    }

    [Theory]
    [InlineData(".safetensors")]
    [InlineData(".npz")]
    [InlineData(".npy")]
    public void S3Mel_MatchesReference_InEveryFormat(string ext)
    {
        using var fx = SafetensorsFile.Open(TestPaths.Fixture("mel", "mel_reference.safetensors"));
        using var tmp = TestPaths.Temp();
        var wav = WriteWav(tmp, fx.Get("s3.wav"), 16000);
        var outFile = tmp.File("s3" + ext);

        var (code, stdout, err) = Run("features", wav, "--kind", "s3mel", "--out", outFile);

        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("features.s3mel [128, 137]", stdout);
        using var written = TensorFiles.Open(outFile);
        var mel = ext == ".npy" ? written.Get(written.Tensors[0].Name) : written.Get("features.s3mel");
        Assert.True(MaxAbs(mel, fx.Get("s3.mel")) <= 1e-4, $"max abs {MaxAbs(mel, fx.Get("s3.mel")):E3}");
    }

    [Fact]
    public void Mel128_MatchesTheLlmReferenceMel()
    {
        using var dump = SafetensorsFile.Open(Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "audio-short.safetensors"));
        using var tmp = TestPaths.Temp();
        var wav = WriteWav(tmp, dump.Get("input.wav"), 16000);
        var outFile = tmp.File("mel.safetensors");
        var (code, _, err) = Run("features", wav, "--kind", "mel128", "--out", outFile);
        Assert.True(code == StepLabCli.Ok, err);
        using var written = SafetensorsFile.Open(outFile);
        var mel = written.Get("features.mel128");
        Assert.Equal([128, 309], mel.Shape);
        Assert.True(MaxAbs(mel, dump.Get("input.mel.0")) <= 1e-4);
    }

    [Fact]
    public void Fbank80_IsTheMeanSubtractedKaldiFbank()
    {
        using var fx = SafetensorsFile.Open(TestPaths.Fixture("prompt_features", "fbank.safetensors"));
        using var tmp = TestPaths.Temp();
        var wav = WriteWav(tmp, fx.Get("female.wav16k"), 16000);
        var outFile = tmp.File("fbank.npy");
        var (code, _, err) = Run("features", wav, "--kind", "fbank80", "--out", outFile);
        Assert.True(code == StepLabCli.Ok, err);
        using var written = TensorFiles.Open(outFile);
        var fbank = written.Get(written.Tensors[0].Name);
        var expected = fx.Get("female.cmn");
        Assert.Equal(expected.Shape, fbank.Shape); // [T, 80]
        Assert.True(TestMath.RelL2(fbank, expected) <= 1e-5, $"rel-L2 {TestMath.RelL2(fbank, expected):E3}");
    }

    [Theory]
    [InlineData("default_male", "default_male.wav")]
    [InlineData("music_stereo", "music_playing_followed_by_a_woman_speaking.wav")]
    public void Mel24k_OfARealClip_MatchesThePromptMelReference(string fixture, string clip)
    {
        using var fx = SafetensorsFile.Open(TestPaths.Fixture("voice_prompt", fixture + ".safetensors"));
        using var tmp = TestPaths.Temp();
        var outFile = tmp.File("mel24k.npz");
        var (code, _, err) = Run("features", Path.Combine(TestPaths.SharedAudio, clip), "--kind", "mel24k", "--out", outFile);
        Assert.True(code == StepLabCli.Ok, err);
        using var written = TensorFiles.Open(outFile);
        var mel = written.Get("features.mel24k");
        var expected = fx.Get("features.mel24k");
        Assert.Equal(expected.Shape, mel.Shape); // [1, T, 80]
        Assert.True(TestMath.RelL2(mel, expected) <= 1e-5, $"rel-L2 {TestMath.RelL2(mel, expected):E3}");
    }

    [Fact]
    public void BadInput_ExitsTwoWithOneLine()
    {
        using var tmp = TestPaths.Temp();
        var clip = Path.Combine(TestPaths.SharedAudio, "default_male.wav");
        var junk = tmp.File("junk.wav");
        File.WriteAllBytes(junk, "RIFF\x10\0\0\0WAVEjunk"u8.ToArray());

        foreach (var args in new[]
        {
            new[] { "features", clip, "--kind", "mfcc", "--out", tmp.File("x.safetensors") },
            new[] { "features", clip, "--kind", "s3mel", "--out", tmp.File("x.txt") },
            new[] { "features", junk, "--kind", "s3mel", "--out", tmp.File("x.npy") },
            new[] { "features", tmp.File("absent.wav"), "--kind", "fbank80", "--out", tmp.File("x.npy") },
        })
        {
            var (code, stdout, err) = Run(args);
            Assert.Equal(StepLabCli.BadInput, code);
            Assert.Equal("", stdout);
            Assert.Single(err.TrimEnd('\n').Split('\n'));
            Assert.StartsWith("steplab: ", err);
        }
        Assert.DoesNotContain(Directory.GetFiles(tmp.Path), f => Path.GetFileName(f).StartsWith("x."));
    }
}
