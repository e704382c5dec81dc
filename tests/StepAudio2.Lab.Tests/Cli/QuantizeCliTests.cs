using System.Text.Json;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary><c>steplab quantize</c> on the tiny checkpoint: the output equals the Python reference's MLX-layout checkpoint bit
/// for bit, recipes pick the right modules, the folder is complete and re-loads; bad input is exit code 2.</summary>
public sealed class QuantizeCliTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string TinyQuant => Path.Combine(TestPaths.ReferenceData, "tiny-quant");

    private static (int Code, string Out, string Err) Run(params string[] args) => InspectCliTests.Run(args);

    [Fact]
    public void RecipeOfTheReferenceCheckpointReproducesItBitForBit()
    {
        using var dir = TestPaths.Temp();
        // the per-module entries of tiny-quant's config.json, with embed_tokens listed (the recipe must name it to quantize it)
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(TinyQuant, "config.json")));
        var entries = cfg.RootElement.GetProperty("quantization").EnumerateObject()
            .Where(p => p.Name is not ("bits" or "group_size" or "mode"))
            .ToDictionary(p => p.Name, p => JsonSerializer.Deserialize<JsonElement>(p.Value.GetRawText()));
        entries["model.embed_tokens"] = JsonSerializer.Deserialize<JsonElement>("{\"group_size\": 32, \"bits\": 4}");
        string recipe = dir.File("recipe.json");
        File.WriteAllText(recipe, JsonSerializer.Serialize(entries));
        string output = Path.Combine(dir.Path, "out");

        var (code, stdout, stderr) = Run("quantize", "--model", Tiny, "--bits", "4", "--group-size", "32", "--recipe", recipe, "--out", output);
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains("re-loaded", stdout);

        using var ours = ShardedCheckpoint.Open(output);
        using var reference = ShardedCheckpoint.Open(TinyQuant);
        Assert.Equal(reference.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal), ours.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        foreach (var info in reference.Tensors)
        {
            var a = ours.Get(info.Name);
            var b = reference.Get(info.Name);
            Assert.Equal(b.DType, a.DType);
            Assert.Equal(b.Shape, a.Shape);
            Assert.True(Bytes(a).AsSpan().SequenceEqual(Bytes(b)), $"{info.Name} differs from the reference");
        }
        // config: same quantization entries as the reference's (embed_tokens is at the default, so not listed)
        var ourCfg = StepAudio2Config.Load(output).Quantization!;
        var refCfg = StepAudio2Config.Load(TinyQuant).Quantization!;
        Assert.Equal(refCfg.Default, ourCfg.Default);
        Assert.Equal(refCfg.Overrides.OrderBy(kv => kv.Key), ourCfg.Overrides.OrderBy(kv => kv.Key));
        using var ourJson = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "config.json")));
        Assert.Equal(ourJson.RootElement.GetProperty("quantization").GetRawText(), ourJson.RootElement.GetProperty("quantization_config").GetRawText());
        // everything else of the folder is copied
        Assert.True(File.Exists(Path.Combine(output, "token2wav", "flow.yaml")));
    }

    [Fact]
    public void DefaultRecipeQuantizesOnlyTheDecoderLinearsAndHead8AddsEmbeddingsAndHead()
    {
        using var dir = TestPaths.Temp();
        string dec = Path.Combine(dir.Path, "dec"), head = Path.Combine(dir.Path, "head");
        var (code, stdout, stderr) = Run("quantize", "--model", Tiny, "--bits", "8", "--group-size", "32", "--out", dec);
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains("quantized 14 modules to 8 bits", stdout);
        using (var ck = ShardedCheckpoint.Open(dec))
        {
            var model = new StepAudio2Model(ck, StepAudio2Config.Load(dec));
            Assert.All(model.Model.Layers, l => Assert.Equal(8, l.Mlp.DownProj.Quantized!.Bits));
            Assert.Null(model.Model.EmbedTokensQuantized);
            Assert.Null(model.LmHead.Quantized);
            Assert.Null(model.Encoder.Blocks[0].Attn.Query.Quantized);
            Assert.Equal(DType.BF16, ck.Get("encoder.blocks.0.attn.query.weight").DType);
        }
        (code, _, stderr) = Run("quantize", "--model", Tiny, "--bits", "4", "--group-size", "32", "--recipe", "decoder-head8", "--out", head);
        Assert.True(code == StepLabCli.Ok, stderr);
        using (var ck = ShardedCheckpoint.Open(head))
        {
            var model = new StepAudio2Model(ck, StepAudio2Config.Load(head));
            Assert.Equal(8, model.Model.EmbedTokensQuantized!.Bits);
            Assert.Equal(8, model.LmHead.Quantized!.Bits);
            Assert.Equal(4, model.Model.Layers[0].Mlp.DownProj.Quantized!.Bits);
            Assert.Equal(4, model.Model.Layers[1].SelfAttn.QProj.Quantized!.Bits);
        }
        // group 64: only down_proj (in = 64) is divisible; the 32-wide layers stay float, as mlx-lm leaves them
        string g64 = Path.Combine(dir.Path, "g64");
        (code, stdout, stderr) = Run("quantize", "--model", Tiny, "--bits", "4", "--out", g64);
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains("12 left float", stdout);
        using (var ck = ShardedCheckpoint.Open(g64))
        {
            var model = new StepAudio2Model(ck, StepAudio2Config.Load(g64));
            Assert.Equal(64, model.Model.Layers[0].Mlp.DownProj.Quantized!.GroupSize);
            Assert.Null(model.Model.Layers[0].Mlp.UpProj.Quantized);
        }
    }

    [Fact]
    public void SmallShardLimitWritesSeveralShardsThatReload()
    {
        using var dir = TestPaths.Temp();
        string output = Path.Combine(dir.Path, "out");
        var r = CheckpointQuantizer.Run(Tiny, output, new QuantizeOptions(4, 32, MaxShardBytes: 4 << 20));
        Assert.True(r.Shards >= 4, $"{r.Shards} shards");
        Assert.Equal(r.Shards, Directory.GetFiles(output, "model-*.safetensors").Length);
        using var ck = ShardedCheckpoint.Open(output);
        _ = new StepAudio2Model(ck, StepAudio2Config.Load(output));
    }

    [Fact]
    public void BadInputIsExitCode2()
    {
        using var dir = TestPaths.Temp();
        Assert.Equal(StepLabCli.BadInput, Run("quantize", "--model", Tiny, "--bits", "7", "--out", Path.Combine(dir.Path, "a")).Code);
        Assert.Equal(StepLabCli.BadInput, Run("quantize", "--model", Tiny, "--bits", "4", "--group-size", "48", "--out", Path.Combine(dir.Path, "b")).Code);
        Assert.Equal(StepLabCli.BadInput, Run("quantize", "--model", Path.Combine(dir.Path, "none"), "--bits", "4", "--out", Path.Combine(dir.Path, "c")).Code);
        Assert.Equal(StepLabCli.BadInput, Run("quantize", "--model", Tiny, "--bits", "4", "--recipe", "nonsense", "--out", Path.Combine(dir.Path, "d")).Code);
        File.WriteAllText(dir.File("bad.json"), "{\"lm_head\": {\"bits\": 8");
        Assert.Equal(StepLabCli.BadInput, Run("quantize", "--model", Tiny, "--bits", "4", "--recipe", dir.File("bad.json"), "--out", Path.Combine(dir.Path, "f")).Code);
        File.WriteAllText(dir.File("default.json"), "{\"bits\": 8}");
        var (rc, _, rerr) = Run("quantize", "--model", Tiny, "--bits", "4", "--recipe", dir.File("default.json"), "--out", Path.Combine(dir.Path, "g"));
        Assert.Equal(StepLabCli.BadInput, rc);
        Assert.Contains("--bits", rerr);
        File.WriteAllText(dir.File("x.txt"), "occupied");
        var (code, _, err) = Run("quantize", "--model", Tiny, "--bits", "4", "--out", dir.Path);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("not empty", err);
        (code, _, err) = Run("quantize", "--model", TinyQuant, "--bits", "4", "--out", Path.Combine(dir.Path, "e"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("already quantized", err);
    }

    private static byte[] Bytes(Tensor t)
    {
        var c = t.Contiguous();
        unsafe { return new ReadOnlySpan<byte>(c.Storage.Pointer + c.Offset * c.DType.SizeOf(), (int)c.ByteCount).ToArray(); }
    }
}
