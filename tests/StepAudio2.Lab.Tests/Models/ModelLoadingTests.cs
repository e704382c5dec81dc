using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>Weights come by exact key and asserted shape, stay bf16 in the mapped shards, and nothing is left over.</summary>
public sealed class ModelLoadingTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    [Fact]
    public void Bf16WeightsStayMappedWithoutASecondCopy()
    {
        var config = StepAudio2Config.Load(Tiny);
        long before = GC.GetAllocatedBytesForCurrentThread(); // this thread only: other test classes run in parallel
        using var checkpoint = ShardedCheckpoint.Open(Tiny);
        var model = new StepAudio2Model(checkpoint, config);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        long weightBytes = checkpoint.Tensors.Sum(t => t.ByteLength);
        Assert.True(weightBytes > 20_000_000, $"tiny checkpoint holds {weightBytes} bytes of weights");
        // widening the bf16 weights would allocate 2× their size; a second bf16 copy 1×; loading may only build the module tree
        Assert.True(allocated < weightBytes / 10, $"loading allocated {allocated:N0} bytes for {weightBytes:N0} bytes of weights");
        Assert.Equal(DType.BF16, model.Model.EmbedTokens.DType);
        Assert.True(model.Model.EmbedTokens.Storage.IsMapped);
        Assert.True(model.LmHead.Weight.Storage.IsMapped);
        Assert.True(model.Encoder.Blocks[0].Attn.Query.Weight.Storage.IsMapped);
    }

    [Theory]
    [InlineData("missing", "encoder.blocks.1.attn.key.weight", "missing")]
    [InlineData("extra", "encoder.blocks.1.attn.key.bias", "unexpected")]
    [InlineData("misshaped", "adapter.linear2.weight", "does not match")]
    public void BadCheckpointsNameTheKey(string kind, string key, string fault)
    {
        using var tmp = TestPaths.Temp();
        using (var tiny = ShardedCheckpoint.Open(Tiny))
        {
            var tensors = tiny.Tensors.Where(t => !(kind == "missing" && t.Name == key))
                .Select(t => new KeyValuePair<string, Tensor>(t.Name,
                    kind == "misshaped" && t.Name == key ? Tensor.Zeros(DType.BF16, t.Shape[0], t.Shape[1] + 1) : tiny.Get(t.Name)))
                .ToList();
            if (kind == "extra") tensors.Add(new(key, Tensor.Zeros(DType.BF16, 32)));
            SafetensorsWriter.Write(tmp.File("model.safetensors"), tensors);
        }
        File.Copy(Path.Combine(Tiny, "config.json"), tmp.File("config.json"));
        using var checkpoint = ShardedCheckpoint.Open(tmp.Path);
        var e = Assert.Throws<WeightException>(() => new StepAudio2Model(checkpoint, StepAudio2Config.Load(tmp.Path)));
        Assert.Equal(key, e.Key);
        Assert.Contains(fault, e.Message);
        Assert.Contains(kind == "missing" ? tmp.Path : tmp.File("model.safetensors"), e.Message);
    }
}
