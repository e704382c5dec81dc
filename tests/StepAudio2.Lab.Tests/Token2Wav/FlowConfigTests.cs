using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>flow.yaml binding: the real file to the docs/model.md §7.6 values, the tiny file, and the strict subset reader's errors.</summary>
public sealed class FlowConfigTests
{
    private static string RealYaml => Path.Combine(TestPaths.SharedModel, "token2wav", "flow.yaml");
    private static string TinyYaml => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", "flow.yaml");

    [Fact]
    public void RealFlowYamlBindsToTheSpecValues()
    {
        var c = FlowConfig.Load(RealYaml);
        Assert.Equal((512, 80, 192, "mel", 6561), (c.InputSize, c.OutputSize, c.SpkEmbedDim, c.OutputType, c.VocabSize));
        var e = c.Encoder;
        Assert.Equal(new FlowEncoderConfig(512, 512, "linear", 3, 6, 4, 2, 2, 8, "rel_pos_espnet", "rel_selfattn", true, 2048, 0.1, 0.1, 0.1, true), e);
        Assert.Equal(64, e.HeadDim);
        Assert.Equal(0.7, c.Decoder.InferenceCfgRate);
        Assert.Equal(new DitConfig(320, 80, 4.0, 16, 8, 64, 512), c.Decoder.Estimator);
        Assert.Equal(2048, c.Decoder.Estimator.MlpHidden);
        Assert.Equal(512, c.Decoder.Estimator.InnerDim);
        Assert.Equal(2, c.TokenMelRatio);
    }

    [Fact]
    public void LoadTakesTheToken2WavFolderToo()
    {
        Assert.Equal(FlowConfig.Load(RealYaml), FlowConfig.Load(Path.GetDirectoryName(RealYaml)!));
    }

    [Fact]
    public void TinyFlowYamlBinds()
    {
        var c = FlowConfig.Load(TinyYaml);
        Assert.Equal(64, c.InputSize);
        Assert.Equal(new FlowEncoderConfig(64, 64, "linear", 3, 2, 2, 2, 2, 4, "rel_pos_espnet", "rel_selfattn", true, 128, 0.1, 0.1, 0.1, true), c.Encoder);
        Assert.Equal(new DitConfig(320, 80, 4.0, 2, 4, 16, 64), c.Decoder.Estimator);
        Assert.Equal(256, c.Decoder.Estimator.MlpHidden);
    }

    [Fact]
    public void ReaderKeepsTagsLinesAndKinds()
    {
        const string yaml = "# header comment\nflow: !new:a.b.C   # trailing\n    x: 1\n\n    y: 'it''s # not a comment'\n    z: \"q\\\"d\"\n    w: -2.5e+3\n    v: False\n";
        var root = FlowYaml.Parse(yaml, "t.yaml");
        var flow = Assert.IsType<YamlMapping>(Assert.Single(root.Entries).Value);
        Assert.Equal(("a.b.C", 2), (flow.Tag, flow.Line));
        var values = flow.Entries.ToDictionary(e => e.Key, e => (YamlScalar)e.Value);
        Assert.Equal(new YamlScalar(3, "1", YamlScalarKind.Int), values["x"]);
        Assert.Equal(new YamlScalar(5, "it's # not a comment", YamlScalarKind.String), values["y"]);
        Assert.Equal(new YamlScalar(6, "q\"d", YamlScalarKind.String), values["z"]);
        Assert.Equal(new YamlScalar(7, "-2.5e+3", YamlScalarKind.Float), values["w"]);
        Assert.Equal(new YamlScalar(8, "False", YamlScalarKind.Bool), values["v"]);
    }

    /// <summary>One line of the real file replaced (1-based line <paramref name="line"/>) must fail on that line.</summary>
    [Theory]
    [InlineData(5, "    output_type: mel", "flow.output_type", "quote strings")]
    [InlineData(8, "        input_size: 64", "flow.encoder.input_size", "differs from flow.input_size")]
    [InlineData(12, "        num_blocks: 6.0", "flow.encoder.num_blocks", "expected an integer")]
    [InlineData(24, "        normalize_before: yes", "flow.encoder.normalize_before", "unsupported value")]
    [InlineData(24, "        normalize_before: False", "flow.encoder.normalize_before", "pre-norm")]
    [InlineData(17, "        pos_enc_layer_type: 'rel_pos'", "flow.encoder.pos_enc_layer_type", "not supported")]
    [InlineData(21, "        dropout_rate: 1e-1", "flow.encoder.dropout_rate", "unsupported value")]
    [InlineData(26, "        inference_cfg_rate: [0.7]", "flow.decoder.inference_cfg_rate", "unsupported YAML syntax")]
    [InlineData(27, "        estimator: !new:cosyvoice2.flow.decoder.ConditionalDecoder", "flow.decoder.estimator", "is not the expected")]
    [InlineData(27, "        estimator: !ref <dit>", "flow.decoder.estimator", "unsupported tag")]
    [InlineData(31, "            mlp_ratio: 4.0", "flow.decoder.estimator.mlp_ratio", "duplicate key")]
    [InlineData(31, "            depthh: 16", "flow.decoder.estimator.depthh", "unknown key")]
    [InlineData(13, "        use_cnn_module: true", "flow.encoder.use_cnn_module", "unknown key")]
    [InlineData(28, "            in_channels: 240", "flow.decoder.estimator.in_channels", "is not 4 × 80")]
    [InlineData(15, "        up_scale_factor: 3", "flow.encoder.up_scale_factor", "differs from up_stride")]
    [InlineData(30, "\t    mlp_ratio: 4.0", null, "tab")]
    [InlineData(30, "              mlp_ratio: 4.0", null, "indentation")]
    [InlineData(30, "    - mlp_ratio", null, "expected 'key: value'")]
    [InlineData(30, "            mlp_ratio:4.0", "flow.decoder.estimator.mlp_ratio", "followed by a space")]
    [InlineData(11, "        pre_lookahead_len: -3", "flow.encoder.pre_lookahead_len", "below the minimum")]
    [InlineData(6, "    vocab_size: 99999999999", "flow.vocab_size", "out of range")]
    [InlineData(5, "    output_type: 'mel", "flow.output_type", "unterminated")]
    public void BadLinesAreConfigExceptionsWithLineAndKey(int line, string replacement, string? key, string fault)
    {
        var lines = File.ReadAllLines(RealYaml);
        Assert.True(line <= lines.Length);
        lines[line - 1] = replacement;
        var text = string.Join("\n", lines);
        var ex = Assert.Throws<ConfigException>(() => FlowConfig.Parse(text, "flow.yaml"));
        Assert.Equal("flow.yaml", ex.FilePath);
        Assert.Equal(line, ex.Line);
        Assert.Equal(key, ex.Key);
        Assert.Contains(fault, ex.Fault);
        Assert.Contains($"line {line}", ex.Message);
    }

    [Fact]
    public void TheRealFileHasTheLinesTheBadLineTestReplaces()
    {
        var lines = File.ReadAllLines(RealYaml);
        Assert.Equal("    output_type: 'mel'", lines[4]);
        Assert.Equal("        num_blocks: 6", lines[11]);
        Assert.Equal("        num_up_blocks: 4", lines[12]);
        Assert.Equal("        up_scale_factor: 2", lines[14]);
        Assert.Equal("        normalize_before: True", lines[23]);
        Assert.Equal("        inference_cfg_rate: 0.7", lines[25]);
        Assert.Equal("            depth: 16", lines[30]);
        Assert.Equal("            mlp_ratio: 4.0", lines[29]);
    }

    [Theory]
    [InlineData("flow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec\n", 1, "flow", "no entries")]
    [InlineData("flow: !new:cosyvoice2.flow.flow.MaskedDiffWithXvec\n    input_size: 512\n", 1, "flow", "is not the expected")]
    [InlineData("  flow: 1\n", 1, null, "must not be indented")]
    [InlineData("sample_rate: 24000\nflow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec\n    input_size: 512\n", 1, "sample_rate", "unknown key")]
    [InlineData("flow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec\n    input_size: 512\n", 1, "flow.output_size", "required key is missing")]
    [InlineData("flow: &a !new:x.Y\n", 1, "flow", "unsupported YAML syntax")]
    [InlineData("flow: !new:cosyvoice2.flow.flow.CausalMaskedDiffWithXvec\n    encoder: 3\n    input_size: 512\n    output_size: 80\n    spk_embed_dim: 192\n    output_type: 'mel'\n    vocab_size: 6561\n", 2, "flow.encoder", "expected a mapping")]
    public void StructuralErrorsNameTheLine(string yaml, int line, string? key, string fault)
    {
        var ex = Assert.Throws<ConfigException>(() => FlowConfig.Parse(yaml, "x.yaml"));
        Assert.Equal(line, ex.Line);
        Assert.Equal(key, ex.Key);
        Assert.Contains(fault, ex.Fault);
    }

    [Fact]
    public void EmptyOrMissingFilesAreConfigExceptions()
    {
        using var tmp = TestPaths.Temp();
        var empty = tmp.File("flow.yaml");
        File.WriteAllText(empty, "# nothing\n\n");
        Assert.Contains("empty", Assert.Throws<ConfigException>(() => FlowConfig.Load(empty)).Fault);
        var missing = tmp.File("none.yaml");
        Assert.Equal(missing, Assert.Throws<ConfigException>(() => FlowConfig.Load(missing)).FilePath);
    }
}
