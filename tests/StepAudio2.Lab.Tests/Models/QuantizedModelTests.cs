using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>
/// reference-data/tiny-quant: the tiny checkpoint in MLX's quantized layout with per-module overrides (made by the Python
/// reference). It loads with the right module quantized the right way, and its quantized forward equals the reference's
/// dequantise-then-float32 forward at every traced path; bad checkpoints fail naming the key.
/// </summary>
public sealed class QuantizedModelTests
{
    private static string TinyQuant => Path.Combine(TestPaths.ReferenceData, "tiny-quant");

    [Fact]
    public void OverridesAndScalesDecideWhichModulesAreQuantized()
    {
        var config = StepAudio2Config.Load(TinyQuant);
        Assert.NotNull(config.Quantization);
        using var checkpoint = Fixtures.OpenCheckpoint(TinyQuant);
        var model = new StepAudio2Model(checkpoint, config);
        var l0 = model.Model.Layers[0];
        var l1 = model.Model.Layers[1];
        Assert.Null(l0.SelfAttn.QProj.Quantized);                       // listed as false
        Assert.Equal((2, 32), Spec(l0.SelfAttn.KProj));                  // listed
        Assert.Equal((4, 32), Spec(l0.SelfAttn.VProj));                  // not listed, .scales present → default
        Assert.Equal((3, 32), Spec(l0.Mlp.GateProj));
        Assert.Equal((5, 32), Spec(l0.Mlp.UpProj));
        Assert.Equal((6, 32), Spec(l1.SelfAttn.OProj));
        Assert.Equal((8, 64), Spec(l1.Mlp.DownProj));
        Assert.Equal((8, 32), Spec(model.LmHead));
        Assert.Equal(4, model.Model.EmbedTokensQuantized!.Bits);
        Assert.Null(model.Encoder.Blocks[0].Attn.Query.Quantized);

        static (int, int) Spec(StepAudio2.Lab.Models.Nn.Linear l) => (l.Quantized!.Bits, l.Quantized.GroupSize);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void QuantizedForwardEqualsDequantisedReferenceAtEveryPath(bool portable)
    {
        var config = StepAudio2Config.Load(TinyQuant);
        using var checkpoint = Fixtures.OpenCheckpoint(TinyQuant);
        var model = new StepAudio2Model(checkpoint, config);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(TinyQuant, "dumps", "llm-short.safetensors"), out _);
        if (portable) QuantGemm.ForcePath = QuantPath.Portable; // what an ARM64 / no-AVX2 machine runs
        try
        {
            LlmParityTests.AssertForwardAndGreedyMatch(model, dump);
        }
        finally { QuantGemm.ForcePath = null; }
    }

    [Fact]
    public void ScalesWithoutAQuantizationConfigFailNamingTheKey()
    {
        using var dir = CopyWithConfig(c => c.Replace("\"quantization\"", "\"quantization_x\"").Replace("\"quantization_config\"", "\"quantization_y\""));
        using var checkpoint = Fixtures.OpenCheckpoint(dir.Path);
        var e = Assert.Throws<WeightException>(() => new StepAudio2Model(checkpoint, StepAudio2Config.Load(dir.Path)));
        Assert.Equal("model.embed_tokens.scales", e.Key);
        Assert.Contains("quantization", e.Message);
    }

    [Fact]
    public void AnOverrideThatDisagreesWithTheTensorsFailsNamingTheKey()
    {
        // down_proj of layer 1 is stored at 8 bits / group 64; claim 4 bits / group 64
        using var dir = CopyWithConfig(c => c.Replace("\"model.layers.1.mlp.down_proj\": {\n      \"group_size\": 64,\n      \"bits\": 8", "\"model.layers.1.mlp.down_proj\": {\n      \"group_size\": 64,\n      \"bits\": 4"));
        using var checkpoint = Fixtures.OpenCheckpoint(dir.Path);
        var e = Assert.Throws<WeightException>(() => new StepAudio2Model(checkpoint, StepAudio2Config.Load(dir.Path)));
        Assert.Equal("model.layers.1.mlp.down_proj.weight", e.Key);
        Assert.Contains("[32, 8]", e.Message);
    }

    [Fact]
    public void AModuleListedFalseButStoredQuantizedFailsNamingTheKey()
    {
        using var dir = CopyWithConfig(c => c.Replace("\"model.layers.0.self_attn.k_proj\": {\n      \"group_size\": 32,\n      \"bits\": 2\n    }", "\"model.layers.0.self_attn.k_proj\": false"));
        using var checkpoint = Fixtures.OpenCheckpoint(dir.Path);
        var e = Assert.Throws<WeightException>(() => new StepAudio2Model(checkpoint, StepAudio2Config.Load(dir.Path)));
        Assert.Equal("model.layers.0.self_attn.k_proj.scales", e.Key);
    }

    [Theory]
    [InlineData("\"mode\": \"affine\"", "\"mode\": \"mxfp4\"", "quantization.mode")]
    [InlineData("\"bits\": 4,\n    \"mode\"", "\"bits\": 7,\n    \"mode\"", "quantization.bits")]
    [InlineData("\"model.layers.0.self_attn.q_proj\": false", "\"model.layers.0.self_attn.q_proj\": 3", "quantization.model.layers.0.self_attn.q_proj")]
    public void BadQuantizationConfigFailsNamingTheField(string from, string to, string field)
    {
        string text = File.ReadAllText(Path.Combine(TinyQuant, "config.json"));
        Assert.Contains(from, text);
        var e = Assert.Throws<ConfigException>(() => StepAudio2Config.Parse(text.Replace(from, to)));
        Assert.Equal(field, e.Key);
    }

    private static TempDir CopyWithConfig(Func<string, string> edit)
    {
        var dir = TestPaths.Temp();
        foreach (var f in Directory.GetFiles(TinyQuant))
            File.Copy(f, Path.Combine(dir.Path, Path.GetFileName(f)));
        string cfg = Path.Combine(dir.Path, "config.json");
        string text = File.ReadAllText(cfg), edited = edit(text);
        Assert.NotEqual(text, edited);
        File.WriteAllText(cfg, edited);
        return dir;
    }
}
