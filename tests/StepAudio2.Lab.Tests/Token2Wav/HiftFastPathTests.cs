using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tests.Parity;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// The untraced HiFT decoder (in-place activations, pooled intermediates) against the traced one, whose every module the
/// parity tests check against the PyTorch reference: same waveform bit for bit, on repeated calls that reuse the pool,
/// and the caller's inputs untouched.
/// </summary>
public sealed class HiftFastPathTests
{
    private static string Ckpt => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", "hift.pt");
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "hift.safetensors");

    [Fact]
    public void UntracedDecodeEqualsTheTracedOneOnRepeatedCalls()
    {
        var hift = Hift.Load(Ckpt);
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var mel = dump.Get("input.mel");
        var source = dump.Get("hift.m_source");
        var melBefore = mel.ToFloatArray();
        var sourceBefore = source.ToFloatArray();
        var traced = hift.Decode(mel, source, new Trace()).ToFloatArray();
        var first = hift.Decode(mel, source).ToFloatArray();
        var second = hift.Decode(mel, source).ToFloatArray(); // pooled buffers now hold the first call's values
        Assert.Equal(traced, first);
        Assert.Equal(traced, second);
        Assert.Equal(melBefore, mel.ToFloatArray());
        Assert.Equal(sourceBefore, source.ToFloatArray());
        Assert.Contains(traced, v => v != 0);
    }

    [Fact]
    public void UntracedForwardEqualsTheTracedOneForABatchOfTwo()
    {
        var hift = Hift.Load(Ckpt);
        var mel = TestData.RandnTensor(21, 2, 80, 6);
        var traced = hift.Forward(mel, seed: 4, trace: new Trace()).ToFloatArray();
        Assert.Equal(traced, hift.Forward(mel, seed: 4).ToFloatArray());
        Assert.Equal(traced, hift.Forward(mel, seed: 4).ToFloatArray());
    }
}
