using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// Voice-prompt features of real clips with the tiny ONNX models against make_onnx_fixtures.py (tokens exact, x-vector
/// and prompt mel rel-L2 ≤ 1e-5), trace entries, and the per-file cache (memory and disk, invalidated by edits).
/// </summary>
public sealed class VoicePromptTests(ITestOutputHelper output)
{
    private const double RelTolerance = 1e-5;

    private static VoicePrompt OpenTiny(string? cache = null) =>
        VoicePrompt.Open(Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav"), cache);

    public static TheoryData<string, string> Clips => new()
    {
        { "default_male", "default_male.wav" },                                          // 48 kHz mono: both paths resample
        { "music_stereo", "music_playing_followed_by_a_woman_speaking.wav" },            // 16 kHz stereo: channel 0 vs channel mean
    };

    [Theory]
    [MemberData(nameof(Clips))]
    public void RealClip_MatchesThePythonReference(string fixture, string clip)
    {
        using var expected = SafetensorsFile.Open(TestPaths.Fixture("voice_prompt", fixture + ".safetensors"));
        var path = Path.Combine(TestPaths.SharedAudio, clip);
        using var prompt = OpenTiny();
        var trace = new Trace();

        var f = prompt.Prepare(path, trace);

        var tokens = expected.Get("input.prompt_tokens").AsSpan<int>().ToArray();
        Assert.Equal(tokens, f.PromptTokens);
        int p = tokens.Length;
        Assert.Equal([1, 2 * p, 80], f.PromptMel.Shape);
        double relX = TestMath.RelL2(f.Xvector, expected.Get("input.xvector"));
        double relMel = TestMath.RelL2(f.PromptMel, expected.Get("input.prompt_mel"));
        output.WriteLine($"{clip}: P = {p}, x-vector rel-L2 {relX:E3}, prompt mel rel-L2 {relMel:E3}");
        Assert.True(relX <= RelTolerance, $"x-vector rel-L2 {relX:E3}");
        Assert.True(relMel <= RelTolerance, $"prompt mel rel-L2 {relMel:E3}");
        Assert.Equal(Path.GetFullPath(path), f.SourcePath);

        Assert.Equal(["input.prompt_tokens", "input.xvector", "input.prompt_mel"], trace.Order);
        Assert.Equal(DType.I32, trace["input.prompt_tokens"].DType);
        Assert.Equal(tokens, trace["input.prompt_tokens"].AsSpan<int>().ToArray());
        Assert.Equal(f.PromptMel.ToFloatArray(), trace["input.prompt_mel"].ToFloatArray());
    }

    [Fact]
    public void PromptMel_IsPaddedByRepeatingTheLastFrame_WhenTheMelIsShort()
    {
        // default_male: 385 mel frames at 24 kHz but P = 193 tokens, so 2P = 386 needs one repeated frame.
        using var expected = SafetensorsFile.Open(TestPaths.Fixture("voice_prompt", "default_male.safetensors"));
        Assert.Equal(385, expected.Get("features.mel24k").Shape[1]);
        using var prompt = OpenTiny();
        var f = prompt.Prepare(Path.Combine(TestPaths.SharedAudio, "default_male.wav"));
        Assert.Equal(193, f.PromptLength);
        var mel = f.PromptMel.ToFloatArray();
        Assert.Equal(mel.AsSpan(384 * 80, 80).ToArray(), mel.AsSpan(385 * 80, 80).ToArray());
    }

    [Fact]
    public void Cache_ServesMemoryThenDisk_AndRecomputesAfterAnEdit()
    {
        using var tmp = TestPaths.Temp();
        var clip = tmp.File("prompt.wav");
        File.Copy(Path.Combine(TestPaths.SharedAudio, "default_male.wav"), clip);
        var cache = Path.Combine(tmp.Path, "cache");

        VoicePromptFeatures first;
        using (var prompt = OpenTiny(cache))
        {
            first = prompt.Prepare(clip);
            var trace = new Trace();
            Assert.Same(first, prompt.Prepare(clip, trace));
            Assert.Equal(1, prompt.ComputeCount);
            Assert.Equal(first.PromptTokens, trace["input.prompt_tokens"].AsSpan<int>().ToArray()); // a cache hit still records
            Assert.Equal(1, prompt.CachedCount);
        }
        var cached = Assert.Single(Directory.GetFiles(cache));
        Assert.EndsWith(".safetensors", cached);

        using (var prompt = OpenTiny(cache)) // a new process would see the same: served from disk, nothing computed
        {
            var again = prompt.Prepare(clip);
            Assert.Equal(0, prompt.ComputeCount);
            Assert.Equal(first.PromptTokens, again.PromptTokens);
            Assert.Equal(first.Xvector.ToFloatArray(), again.Xvector.ToFloatArray());
            Assert.Equal(first.PromptMel.ToFloatArray(), again.PromptMel.ToFloatArray());
            Assert.Equal(Path.GetFullPath(clip), again.SourcePath);
        }

        // Editing the prompt (new last-write time) makes a new key: recomputed, a second cache file.
        File.SetLastWriteTimeUtc(clip, File.GetLastWriteTimeUtc(clip).AddMinutes(1));
        using (var prompt = OpenTiny(cache))
        {
            prompt.Prepare(clip);
            Assert.Equal(1, prompt.ComputeCount);
        }
        Assert.Equal(2, Directory.GetFiles(cache).Length);
    }

    [Fact]
    public void ChangingAModelFile_InvalidatesTheDiskCache()
    {
        using var tmp = TestPaths.Temp();
        var models = Path.Combine(tmp.Path, "token2wav");
        Directory.CreateDirectory(models);
        foreach (var f in new[] { S3Tokenizer.FileName, CampPlus.FileName })
            File.Copy(OnnxPromptModelTests.Model(f), Path.Combine(models, f));
        var clip = Path.Combine(TestPaths.SharedAudio, "default_male.wav");
        var cache = Path.Combine(tmp.Path, "cache");
        using (var prompt = VoicePrompt.Open(models, cache)) prompt.Prepare(clip);
        using (var prompt = VoicePrompt.Open(models, cache))
        {
            prompt.Prepare(clip);
            Assert.Equal(0, prompt.ComputeCount);
        }
        var camp = Path.Combine(models, CampPlus.FileName);
        File.SetLastWriteTimeUtc(camp, File.GetLastWriteTimeUtc(camp).AddMinutes(1));
        using (var prompt = VoicePrompt.Open(models, cache))
        {
            prompt.Prepare(clip);
            Assert.Equal(1, prompt.ComputeCount);
        }
    }

    [Fact]
    public void CorruptDiskCache_IsIgnoredAndRewritten()
    {
        using var tmp = TestPaths.Temp();
        var clip = tmp.File("prompt.wav");
        File.Copy(Path.Combine(TestPaths.SharedAudio, "default_male.wav"), clip);
        var cache = Path.Combine(tmp.Path, "cache");
        using (var prompt = OpenTiny(cache)) prompt.Prepare(clip);
        var file = Assert.Single(Directory.GetFiles(cache));
        var good = File.ReadAllBytes(file);
        File.WriteAllBytes(file, good.AsSpan(0, good.Length / 3).ToArray());

        using var again = OpenTiny(cache);
        var f = again.Prepare(clip);
        Assert.Equal(1, again.ComputeCount);
        Assert.Equal(193, f.PromptLength);
        Assert.Equal(good, File.ReadAllBytes(file)); // rewritten whole
    }

    [Fact]
    public void BadPrompts_GiveTypedErrors()
    {
        using var tmp = TestPaths.Temp();
        using var prompt = OpenTiny();
        Assert.Throws<FileNotFoundException>(() => prompt.Prepare(tmp.File("absent.wav")));
        var junk = tmp.File("junk.wav");
        File.WriteAllBytes(junk, new byte[100]);
        var e = Assert.ThrowsAny<LabDataException>(() => prompt.Prepare(junk));
        Assert.Equal(Path.GetFullPath(junk), Path.GetFullPath(e.FilePath));
        Assert.Throws<DirectoryNotFoundException>(() => VoicePrompt.Open(tmp.File("no-such-dir")));
    }
}
