using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Parity;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>The per-layer KV cache appends in place (no copy of the prefix per token) and attention reads its views.</summary>
public sealed class KvCacheTests
{
    [Fact]
    public void AppendWritesOnlyTheNewRowsAndReturnsViewsOfOneBuffer()
    {
        var cache = new LayerKvCache(kvHeads: 2, headDim: 4);
        var k1 = TestData.RandnTensor(1, 2, 3, 4);
        var (ka, _) = cache.Append(k1, k1);
        var k2 = TestData.RandnTensor(2, 2, 1, 4);
        var (kb, vb) = cache.Append(k2, k2);
        Assert.Same(ka.Storage, kb.Storage); // same buffer: the first three rows were not copied again
        Assert.Equal([1, 2, 4, 4], kb.Shape);
        Assert.False(kb.IsContiguous);
        var all = kb.Contiguous().ToFloatArray();
        var e1 = k1.ToFloatArray();
        var e2 = k2.ToFloatArray();
        for (int h = 0; h < 2; h++)
        {
            for (int i = 0; i < 12; i++) Assert.Equal(e1[h * 12 + i], all[h * 16 + i]);
            for (int i = 0; i < 4; i++) Assert.Equal(e2[h * 4 + i], all[h * 16 + 12 + i]);
        }
        // attention over the strided views equals attention over contiguous copies
        var q = TestData.RandnTensor(3, 1, 4, 1, 4);
        var viaViews = Ops.ScaledDotProductAttention(q, kb, vb, 0.5f, causal: true).ToFloatArray();
        var viaCopies = Ops.ScaledDotProductAttention(q, kb.Contiguous(), vb.Contiguous(), 0.5f, causal: true).ToFloatArray();
        Assert.Equal(viaCopies, viaViews);
    }
}
