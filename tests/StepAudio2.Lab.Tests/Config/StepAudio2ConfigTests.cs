using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Tests.Config;

public sealed class StepAudio2ConfigTests
{
    [Fact]
    public void RealConfigBindsEveryField()
    {
        var c = StepAudio2Config.Load(TestPaths.SharedModel);
        Assert.Equal("step_audio_2", c.ModelType);
        Assert.Equal(3584, c.Text.HiddenSize);
        Assert.Equal(18944, c.Text.IntermediateSize);
        Assert.Equal(28, c.Text.NumAttentionHeads);
        Assert.Equal(4, c.Text.NumKeyValueHeads);
        Assert.Equal(28, c.Text.NumHiddenLayers);
        Assert.Equal(158720, c.Text.VocabSize);
        Assert.Equal(1e-6, c.Text.RmsNormEps);
        Assert.Equal(1_000_000.0, c.Text.RopeTheta);
        Assert.Equal(16384, c.Text.MaxPositionEmbeddings);
        Assert.Equal(151643, c.Text.EosTokenId);
        Assert.Equal(128, c.Text.HeadDim);
        Assert.Equal(7, c.Text.GroupSize);
        Assert.Equal(128, c.Audio.NMels);
        Assert.Equal(1500, c.Audio.NAudioCtx);
        Assert.Equal(1280, c.Audio.NAudioState);
        Assert.Equal(20, c.Audio.NAudioHead);
        Assert.Equal(64, c.Audio.HeadDim);
        Assert.Equal(32, c.Audio.NAudioLayer);
        Assert.Equal(3584, c.Audio.LlmDim);
        Assert.Equal(3, c.Audio.KernelSize);
        Assert.Equal(2, c.Audio.AdapterStride);
    }

    private static string RealJson() => File.ReadAllText(Path.Combine(TestPaths.SharedModel, "config.json"));

    [Theory]
    [InlineData("\"hidden_size\": 3584,", "", "text_config.hidden_size", "missing")]
    [InlineData("\"n_audio_head\": 20,", "\"n_audio_head\": \"twenty\",", "audio_encoder_config.n_audio_head", "expected an integer")]
    [InlineData("\"num_hidden_layers\": 28,", "\"num_hidden_layers\": -1,", "text_config.num_hidden_layers", "must be positive")]
    [InlineData("\"rope_theta\": 1000000.0,", "\"rope_theta\": \"big\",", "text_config.rope_theta", "expected a number")]
    [InlineData("\"llm_dim\": 3584,", "\"llm_dim\": 4096,", "audio_encoder_config.llm_dim", "must equal")]
    [InlineData("\"num_attention_heads\": 28,", "\"num_attention_heads\": 27,", "text_config.hidden_size", "not divisible")]
    public void InvalidFieldsAreNamed(string find, string replace, string key, string fault)
    {
        string json = RealJson();
        Assert.Contains(find, json);
        var e = Assert.Throws<ConfigException>(() => StepAudio2Config.Parse(json.Replace(find, replace), "my/config.json"));
        Assert.Equal(key, e.Key);
        Assert.Contains(fault, e.Message);
        Assert.StartsWith("my/config.json", e.Message);
    }

    [Fact]
    public void GarbageJsonIsTyped()
    {
        var e = Assert.Throws<ConfigException>(() => StepAudio2Config.Parse("{\"text_config\": [1, 2", "c.json"));
        Assert.Contains("not valid JSON", e.Message);
    }

    [Fact]
    public void MissingSectionIsNamed()
    {
        var e = Assert.Throws<ConfigException>(() => StepAudio2Config.Parse("{\"text_config\": {}}", "c.json"));
        Assert.Equal("audio_encoder_config", e.Key);
        Assert.Contains("required field is missing", e.Message);
    }

    [Fact]
    public void MissingFileIsTyped()
    {
        using var tmp = TestPaths.Temp();
        var e = Assert.Throws<ConfigException>(() => StepAudio2Config.Load(tmp.Path));
        Assert.Contains("file not found", e.Message);
    }
}
