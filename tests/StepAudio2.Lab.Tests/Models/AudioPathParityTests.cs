using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>
/// The encoder and adaptor of the tiny checkpoint against the Python reference dumps (reference-data/make_tiny.py),
/// module path by module path, for a 3 s clip and a 27 s clip whose two chunks are batched together.
/// </summary>
public sealed class AudioPathParityTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    [Theory]
    [InlineData("audio-short")]
    [InlineData("audio-two_chunks")]
    public void EveryTracedModuleMatchesTheReference(string dumpName)
    {
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        var config = StepAudio2Config.Load(Tiny);
        var weights = new Weights(checkpoint);
        var encoder = new AudioEncoder(weights, config.Audio);
        var adaptor = new Adaptor(weights, config.Audio);
        weights.AssertAllUsed("encoder.");
        weights.AssertAllUsed("adapter.");

        var (batch, lengths) = TestMath.MelBatch(dump);
        Assert.Equal(dumpName == "audio-short" ? 1 : 2, lengths.Length);

        var trace = new Trace();
        var (encoded, encLengths) = encoder.Forward(batch, lengths, trace);
        adaptor.Forward(encoded, trace);

        var compared = 0;
        foreach (var info in dump.Tensors.Where(t => !t.Name.StartsWith("input.")))
        {
            Assert.True(trace.Contains(info.Name), $"the C# trace lacks '{info.Name}'");
            double relL2 = TestMath.RelL2(trace[info.Name], dump.Get(info.Name));
            Assert.True(relL2 <= 1e-5, $"{info.Name}: rel-L2 {relL2:E3} > 1e-5");
            compared++;
        }
        Assert.True(compared >= 30, $"only {compared} activations compared");
        // the adaptor's valid lengths equal the <audio_patch> counts of docs/model.md §2.6
        for (int i = 0; i < lengths.Length; i++)
            Assert.Equal((((lengths[i] + 2 - 1) / 4) - 1) / 2 + 1, Adaptor.OutputLength(encLengths[i]));
    }

    [Fact]
    public void FromTheRealAiffFileToTheAdaptorOutput()
    {
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", "audio-short.safetensors"), out _);
        var wav = StepAudio2.Lab.Audio.AudioInput.Load16k(Path.Combine(TestPaths.SharedAudio, "real_speech.aiff"));
        var refWav = dump.Get("input.wav").ToFloatArray();
        Assert.Equal(refWav.Length, wav.Length);
        Assert.True(wav.Zip(refWav, (a, b) => Math.Abs(a - b)).Max() <= 1e-5, "16 kHz waveform departs from torchaudio's by more than 1e-5");

        var prepared = StepAudio2.Lab.Audio.AudioInput.Prepare([wav]);
        var refMel = dump.Get("input.mel.0").ToFloatArray();
        Assert.Equal(dump.Get("input.mel.0").Shape, prepared.Mels[0].Shape);
        Assert.True(prepared.Mels[0].ToFloatArray().Zip(refMel, (a, b) => Math.Abs(a - b)).Max() <= 1e-4);

        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
        var trace = new Trace(["adapter"]);
        var (_, lengths) = model.EncodeAudio(prepared.Batch.Mels, prepared.MelLengths, trace);
        Assert.Equal(prepared.TokenCounts, lengths);
        double rel = TestMath.RelL2(trace["adapter"], dump.Get("adapter"));
        Assert.True(rel <= 1e-4, $"adapter rel-L2 {rel:E3}"); // mel differs ≤ 1e-4 from the reference's
    }
}
