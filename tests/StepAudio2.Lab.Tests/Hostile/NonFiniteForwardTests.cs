using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO.Safetensors;
using static StepAudio2.Lab.Tests.Hostile.HostileFiles;

namespace StepAudio2.Lab.Tests.Hostile;

/// <summary>
/// A checkpoint with one NaN weight (a copy of the tiny checkpoint patched here): <c>trace</c> exits 2 and names the
/// module path where non-finite values first appear, instead of writing an all-NaN dump with exit 0.
/// </summary>
public sealed class NonFiniteForwardTests
{
    [Fact]
    public void Trace_names_the_first_module_whose_output_is_not_finite()
    {
        using var dir = TestPaths.Temp();
        string tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        foreach (var f in Directory.GetFiles(tiny)) File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));

        // bf16 NaN (0x7FC0) into the first element of encoder.blocks.1.attn.query.weight
        const string target = "encoder.blocks.1.attn.query.weight";
        string shard = Path.Combine(dir.Path, "model-00003-of-00003.safetensors");
        long offset;
        using (var st = SafetensorsFile.Open(shard))
            offset = st.Header.DataStart + st.Entries.Single(e => e.Name == target).Begin;
        using (var fs = new FileStream(shard, FileMode.Open, FileAccess.Write))
        {
            fs.Position = offset;
            fs.Write([0xC0, 0x7F]);
        }

        string wav = dir.File("tone.wav");
        File.WriteAllBytes(wav, Wav(16000, Tone(16000, 16000)));
        string dump = dir.File("trace.safetensors");
        var (code, _, err) = RunCli("trace", "--model", dir.Path, "--stage", "audio", "--audio", wav, "--out", dump);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("first at encoder.blocks.1.attn.query", err);
        Assert.True(File.Exists(dump)); // kept for inspection

        // The unpatched checkpoint traces the same clip cleanly: the verdict is about the NaN, not the clip.
        var (okCode, _, okErr) = RunCli("trace", "--model", tiny, "--stage", "audio", "--audio", wav, "--out", dir.File("ok.safetensors"));
        Assert.True(okCode == StepLabCli.Ok, okErr);
    }
}
