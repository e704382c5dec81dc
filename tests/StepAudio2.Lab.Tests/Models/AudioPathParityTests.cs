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

        var mels = dump.Tensors.Select(t => t.Name).Where(n => n.StartsWith("input.mel.")).OrderBy(n => int.Parse(n[10..])).Select(dump.Get).ToList();
        Assert.Equal(dumpName == "audio-short" ? 1 : 2, mels.Count);
        var (batch, lengths) = BatchMels(mels);

        var trace = new Trace();
        var (encoded, encLengths) = encoder.Forward(batch, lengths, trace);
        adaptor.Forward(encoded, trace);

        var compared = 0;
        foreach (var info in dump.Tensors.Where(t => !t.Name.StartsWith("input.")))
        {
            Assert.True(trace.Contains(info.Name), $"the C# trace lacks '{info.Name}'");
            var expected = dump.Get(info.Name).ToDoubleArray();
            var actual = trace[info.Name];
            Assert.Equal(info.Shape, actual.Shape);
            var a = actual.ToDoubleArray();
            double num = 0, den = 0;
            for (int i = 0; i < a.Length; i++) { num += (a[i] - expected[i]) * (a[i] - expected[i]); den += expected[i] * expected[i]; }
            double relL2 = Math.Sqrt(num / den);
            Assert.True(relL2 <= 1e-5, $"{info.Name}: rel-L2 {relL2:E3} > 1e-5");
            compared++;
        }
        Assert.True(compared >= 30, $"only {compared} activations compared");
        // the adaptor's valid lengths equal the <audio_patch> counts of spec §2.6
        for (int i = 0; i < mels.Count; i++)
            Assert.Equal((((mels[i].Shape[1] - 1) / 4) - 1) / 2 + 1, Adaptor.OutputLength(encLengths[i]));
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
        var expected = dump.Get("adapter").ToDoubleArray();
        var actual = trace["adapter"].ToDoubleArray();
        double num = 0, den = 0;
        for (int i = 0; i < actual.Length; i++) { num += (actual[i] - expected[i]) * (actual[i] - expected[i]); den += expected[i] * expected[i]; }
        Assert.True(Math.Sqrt(num / den) <= 1e-4, $"adapter rel-L2 {Math.Sqrt(num / den):E3}"); // mel differs ≤ 1e-4 from the reference's
    }

    /// <summary>Zero right-padding to the longest chunk, lengths L − 2 (spec §2.7).</summary>
    private static (Tensor Batch, int[] Lengths) BatchMels(IReadOnlyList<Tensor> mels)
    {
        int nMels = mels[0].Shape[0], tPad = mels.Max(m => m.Shape[1]);
        var data = new float[mels.Count * nMels * tPad];
        for (int b = 0; b < mels.Count; b++)
        {
            var m = mels[b].ToFloatArray();
            int t = mels[b].Shape[1];
            for (int c = 0; c < nMels; c++) Array.Copy(m, c * t, data, (b * nMels + c) * tPad, t);
        }
        return (Tensor.FromArray(data, mels.Count, nMels, tPad), mels.Select(m => m.Shape[1] - 2).ToArray());
    }
}
