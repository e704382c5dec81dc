using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tests.Parity;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// HiFT on the CPU backend's prepared convs (weights packed once per weight tensor, implicit-im2col GEMM) against the same
/// model on the backend's plain explicit-im2col path (<c>UsePackedConvs = false</c>), whose every module the parity
/// tests check against the PyTorch reference: the same waveform bit for bit (same sums in the same order), traced or
/// not, on repeated calls, with the caller's inputs untouched; and each model runs on the backend it was loaded with.
/// </summary>
public sealed class HiftFastPathTests
{
    private static string Ckpt => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", "hift.pt");
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "hift.safetensors");
    private static readonly CpuBackend Plain = new() { UsePackedConvs = false };

    [Fact]
    public void PackedDecodeEqualsThePlainOneTracedOrNotOnRepeatedCalls()
    {
        var packed = Hift.Load(Ckpt);
        var plain = Hift.Load(Ckpt, backend: Plain);
        Assert.Same(Plain, plain.Backend);
        Assert.Same(Ops.Default, packed.Backend);
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var mel = dump.Get("input.mel");
        var source = dump.Get("hift.m_source");
        var melBefore = mel.ToFloatArray();
        var sourceBefore = source.ToFloatArray();
        var reference = plain.Decode(mel, source, new Trace()).ToFloatArray();
        Assert.Equal(reference, packed.Decode(mel, source).ToFloatArray());
        Assert.Equal(reference, packed.Decode(mel, source, new Trace()).ToFloatArray());
        Assert.Equal(reference, packed.Decode(mel, source).ToFloatArray());
        Assert.Equal(melBefore, mel.ToFloatArray());
        Assert.Equal(sourceBefore, source.ToFloatArray());
        Assert.Contains(reference, v => v != 0);
    }

    [Fact]
    public void PackedForwardEqualsThePlainOneForABatchOfTwo()
    {
        var mel = TestData.RandnTensor(21, 2, 80, 6);
        var reference = Hift.Load(Ckpt, backend: Plain).Forward(mel, seed: 4, trace: new Trace()).ToFloatArray();
        var packed = Hift.Load(Ckpt);
        Assert.Equal(reference, packed.Forward(mel, seed: 4).ToFloatArray());
        Assert.Equal(reference, packed.Forward(mel, seed: 4).ToFloatArray());
    }
}
