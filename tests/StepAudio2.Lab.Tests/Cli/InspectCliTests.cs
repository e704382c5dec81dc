using System.Text.Json;
using StepAudio2.Lab.Cli;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary><c>steplab inspect</c> run in-process: output, JSON and the exit-code contract (0 ok, 1 incomplete, 2 bad input).</summary>
public sealed class InspectCliTests
{
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = StepLabCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    [Fact]
    public void RealIndexWithoutShardsListsAll832TensorsAndNamesTheMissingShards()
    {
        var (code, stdout, _) = Run("inspect", TestPaths.SharedModel);
        Assert.Equal(StepLabCli.Failed, code);
        Assert.Contains(": 832 tensors", stdout);
        for (int i = 1; i <= 4; i++) Assert.Contains($"missing shard: model-0000{i}-of-00004.safetensors", stdout);
        Assert.Contains("total_size 16,630,358,528 bytes declared", stdout);
        Assert.Contains("lm_head.weight", stdout);

        var (jcode, json, _) = Run("inspect", TestPaths.SharedModel, "--json");
        Assert.Equal(StepLabCli.Failed, jcode);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(832, doc.RootElement.GetProperty("tensor_count").GetInt32());
        Assert.False(doc.RootElement.GetProperty("complete").GetBoolean());
        var missing = doc.RootElement.GetProperty("index").GetProperty("missing_shards").EnumerateArray().Select(m => m.GetProperty("shard").GetString()).ToList();
        Assert.Equal(4, missing.Count);
        Assert.Equal(832, doc.RootElement.GetProperty("index").GetProperty("missing_shards").EnumerateArray().Sum(m => m.GetProperty("tensors").GetInt32()));
    }

    [Fact]
    public void TinyShardedBf16CheckpointInspectsCleanly()
    {
        var (code, stdout, _) = Run("inspect", Path.Combine(TestPaths.ReferenceData, "tiny"), "--json");
        Assert.Equal(StepLabCli.Ok, code);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.True(root.GetProperty("complete").GetBoolean());
        Assert.Equal("checkpoint", root.GetProperty("format").GetString());
        var tensors = root.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(root.GetProperty("tensor_count").GetInt32(), tensors.Count);
        Assert.All(tensors, t => Assert.Equal("bf16", t.GetProperty("dtype").GetString()));
        var embed = tensors.Single(t => t.GetProperty("name").GetString() == "model.embed_tokens.weight");
        Assert.Equal([158720, 32], embed.GetProperty("shape").EnumerateArray().Select(d => d.GetInt32()).ToArray());
        Assert.Equal(3, tensors.Select(t => t.GetProperty("file").GetString()).Distinct().Count());
        Assert.Equal(root.GetProperty("index").GetProperty("declared_total_size").GetInt64(), root.GetProperty("total_bytes").GetInt64());
    }

    [Theory]
    [InlineData("safetensors", "fixtures/safetensors/all_dtypes.safetensors")]
    [InlineData("npz", "fixtures/numpy/savez.npz")]
    [InlineData("torch", "fixtures/torch/state_dict.pt")]
    public void EveryFormatInspects(string format, string relative)
    {
        var path = Path.Combine(TestPaths.ReferenceData, relative);
        Assert.True(File.Exists(path), path);
        var (code, stdout, err) = Run("inspect", path, "--json");
        Assert.True(code == StepLabCli.Ok, err);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(format, doc.RootElement.GetProperty("format").GetString());
        Assert.True(doc.RootElement.GetProperty("tensor_count").GetInt32() > 0);
    }

    [Fact]
    public void BadInputExitsWith2AndNamesTheFile()
    {
        using var tmp = TestPaths.Temp();
        var bad = tmp.File("bad.safetensors");
        File.WriteAllBytes(bad, [0x10, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'x']);
        var (code, _, err) = Run("inspect", bad);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(bad, err);
        Assert.Equal(StepLabCli.BadInput, Run("inspect", tmp.File("nope.safetensors")).Code);
        Assert.Equal(StepLabCli.BadInput, Run("inspect").Code);
        Assert.Equal(StepLabCli.BadInput, Run("inspect", bad, "--no-such-option").Code);
    }
}

/// <summary><c>steplab tokenize</c> on the real tokenizer files.</summary>
public sealed class TokenizeCliTests
{
    [Fact]
    public void PrintsTheIdsOfTheSpecExample()
    {
        var (code, stdout, _) = InspectCliTests.Run("tokenize", "--model", TestPaths.SharedModel, "<|BOT|>system\nYou are a helpful assistant.<|EOT|>");
        Assert.Equal(StepLabCli.Ok, code);
        Assert.StartsWith("151666 8948 198 2610 525 264 10950 17847 13 151665", stdout);
        var (jcode, json, _) = InspectCliTests.Run("tokenize", "--model", TestPaths.SharedModel, "</think>", "--json");
        Assert.Equal(StepLabCli.Ok, jcode);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal([522, 26865, 29], doc.RootElement.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal("</think>", doc.RootElement.GetProperty("decoded").GetString());
        using var empty = TestPaths.Temp();
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("tokenize", "--model", empty.Path, "x").Code);
    }
}
