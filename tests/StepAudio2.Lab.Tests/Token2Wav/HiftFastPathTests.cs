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

/// <summary><see cref="HiftScratch"/> reuses returned buffers and stays within its per-size and byte bounds.</summary>
public sealed class HiftScratchTests
{
    [Fact]
    public void ReusesReturnedBuffersWithinItsBounds()
    {
        var pool = new HiftScratch(capBytes: 4 * 100 * 8); // room for eight 100-float buffers
        var a = pool.Rent(2, 50);
        Assert.Equal(new[] { 2, 50 }, a.Shape);
        pool.Return(a);
        Assert.Equal(400, pool.PooledBytes);
        var b = pool.Rent(100); // same element count, other shape: the same storage comes back
        Assert.Same(a.Storage, b.Storage);
        Assert.Equal(0, pool.PooledBytes);

        var many = Enumerable.Range(0, 8).Select(_ => pool.Rent(100)).ToList();
        foreach (var t in many) pool.Return(t);
        Assert.Equal(6 * 400, pool.PooledBytes); // at most six of a size

        pool.Return(Tensors.Tensor.Zeros(Tensors.DType.F32, 300)); // 1200 bytes pass the cap: the other size goes first
        Assert.Equal(1200, pool.PooledBytes);
        pool.Return(Tensors.Tensor.Zeros(Tensors.DType.F32, 1000)); // larger than the cap on its own: dropped, nothing evicted
        Assert.Equal(1200, pool.PooledBytes);
        pool.Return(Tensors.Tensor.Zeros(Tensors.DType.F32, 10).Slice(0, 0, 5)); // a view of a larger storage is never pooled
        pool.Return(Tensors.Tensor.Zeros(Tensors.DType.F64, 10));
        Assert.Equal(1200, pool.PooledBytes);
    }
}
