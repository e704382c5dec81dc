using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Config;

/// <summary>
/// <c>encoder</c> of flow.yaml: the arguments of <c>UpsampleConformerEncoderV2</c> (docs/model.md §7.6–7.7). Only the
/// configuration Step-Audio 2 ships is implemented (linear input layer, ESPnet relative positions, pre-norm), so other
/// values of those switches are rejected at load.
/// </summary>
public sealed record FlowEncoderConfig(
    int InputSize,
    int OutputSize,
    string InputLayer,
    int PreLookaheadLen,
    int NumBlocks,
    int NumUpBlocks,
    int UpStride,
    int UpScaleFactor,
    int AttentionHeads,
    string PosEncLayerType,
    string SelfattentionLayerType,
    bool KeyBias,
    int LinearUnits,
    double DropoutRate,
    double PositionalDropoutRate,
    double AttentionDropoutRate,
    bool NormalizeBefore)
{
    public const string ClassName = "cosyvoice2.transformer.upsample_encoder_v2.UpsampleConformerEncoderV2";

    /// <summary>Per-head width d_k (64 at full size).</summary>
    public int HeadDim => OutputSize / AttentionHeads;
}

/// <summary><c>estimator</c> of flow.yaml: the arguments of the <c>DiT</c> (docs/model.md §7.9).</summary>
public sealed record DitConfig(int InChannels, int OutChannels, double MlpRatio, int Depth, int NumHeads, int HeadDim, int HiddenSize)
{
    public const string ClassName = "cosyvoice2.flow.decoder_dit.DiT";

    /// <summary>Attention width heads·head_dim (equal to the hidden size in the published model).</summary>
    public int InnerDim => NumHeads * HeadDim;
    /// <summary>MLP hidden width int(hidden·mlp_ratio), as the module computes it.</summary>
    public int MlpHidden => (int)(HiddenSize * MlpRatio);
    /// <summary>Width of the sinusoidal time embedding (256).</summary>
    public int FrequencyEmbeddingSize => 256;
}

/// <summary><c>decoder</c> of flow.yaml: <c>CausalConditionalCFM</c> with its estimator (docs/model.md §7.8).</summary>
public sealed record CfmConfig(double InferenceCfgRate, DitConfig Estimator)
{
    public const string ClassName = "cosyvoice2.flow.flow_matching.CausalConditionalCFM";
}

/// <summary>
/// token2wav/flow.yaml bound to typed records (<c>CausalMaskedDiffWithXvec</c>, docs/model.md §7.6), read by the strict
/// <see cref="FlowYaml"/> subset reader: tag classes, every key and every value are checked, unknown keys rejected.
/// </summary>
public sealed record FlowConfig(int InputSize, int OutputSize, int SpkEmbedDim, string OutputType, int VocabSize, FlowEncoderConfig Encoder, CfmConfig Decoder)
{
    public const string FileName = "flow.yaml";
    public const string ClassName = "cosyvoice2.flow.flow.CausalMaskedDiffWithXvec";

    /// <summary>Mel frames per speech token (the encoder's up_stride, 2).</summary>
    public int TokenMelRatio => Encoder.UpStride;

    /// <summary>Loads flow.yaml from a token2wav folder or a file path.</summary>
    public static FlowConfig Load(string pathOrFolder)
    {
        string path = Directory.Exists(pathOrFolder) ? Path.Combine(pathOrFolder, FileName) : pathOrFolder;
        return Bind(FlowYaml.Load(path), path);
    }

    /// <summary>Parses flow.yaml text; <paramref name="source"/> names it in errors.</summary>
    public static FlowConfig Parse(string yaml, string source = FileName) => Bind(FlowYaml.Parse(yaml, source), source);

    private static FlowConfig Bind(YamlMapping root, string file)
    {
        var top = new YamlSection(root, file, "");
        var f = top.Section("flow", ClassName);
        top.EnsureAllRead();
        f.AllowOnly("input_size", "output_size", "spk_embed_dim", "output_type", "vocab_size", "encoder", "decoder");

        int inputSize = f.Int("input_size", 1), outputSize = f.Int("output_size", 1), spk = f.Int("spk_embed_dim", 1);
        string outputType = f.String("output_type", "mel");
        int vocab = f.Int("vocab_size", 1);

        var e = f.Section("encoder", FlowEncoderConfig.ClassName);
        e.AllowOnly("input_size", "output_size", "input_layer", "pre_lookahead_len", "num_blocks", "num_up_blocks", "up_stride",
            "up_scale_factor", "attention_heads", "pos_enc_layer_type", "selfattention_layer_type", "key_bias", "linear_units",
            "dropout_rate", "positional_dropout_rate", "attention_dropout_rate", "normalize_before");
        var enc = new FlowEncoderConfig(
            e.Int("input_size", 1), e.Int("output_size", 1), e.String("input_layer", "linear"), e.Int("pre_lookahead_len", 0),
            e.Int("num_blocks", 0), e.Int("num_up_blocks", 0), e.Int("up_stride", 1), e.Int("up_scale_factor", 1), e.Int("attention_heads", 1),
            e.String("pos_enc_layer_type", "rel_pos_espnet"), e.String("selfattention_layer_type", "rel_selfattn"), e.Bool("key_bias"),
            e.Int("linear_units", 1), e.FloatOr("dropout_rate", 0.1, 0, 1), e.FloatOr("positional_dropout_rate", 0.1, 0, 1),
            e.FloatOr("attention_dropout_rate", 0.0, 0, 1), e.Bool("normalize_before"));
        if (!enc.NormalizeBefore) throw Fail(file, e, "normalize_before", "only the pre-norm conformer (normalize_before: true) is implemented");
        if (enc.InputSize != inputSize) throw Fail(file, e, "input_size", $"{enc.InputSize} differs from flow.input_size {inputSize} (the token embedding width)");
        if (enc.OutputSize % enc.AttentionHeads != 0 || enc.HeadDim % 2 != 0)
            throw Fail(file, e, "attention_heads", $"output_size {enc.OutputSize} does not split into {enc.AttentionHeads} heads of even width");
        if (enc.OutputSize % 2 != 0) throw Fail(file, e, "output_size", "the sinusoidal position table needs an even width");
        if (enc.InputSize != enc.OutputSize)
            throw Fail(file, e, "output_size", $"the residual pre-lookahead layer runs at input width {enc.InputSize}, so output_size must equal it");
        if (enc.UpStride != enc.UpScaleFactor)
            throw Fail(file, e, "up_scale_factor", $"{enc.UpScaleFactor} differs from up_stride {enc.UpStride}; only equal values (nearest ×s then a k = 2s+1 conv) are implemented");
        e.EnsureAllRead();

        var d = f.Section("decoder", CfmConfig.ClassName);
        d.AllowOnly("inference_cfg_rate", "estimator");
        double cfg = d.Float("inference_cfg_rate", 0, 100);
        var s = d.Section("estimator", DitConfig.ClassName);
        s.AllowOnly("in_channels", "out_channels", "mlp_ratio", "depth", "num_heads", "head_dim", "hidden_size");
        var dit = new DitConfig(s.Int("in_channels", 1), s.Int("out_channels", 1), s.Float("mlp_ratio", 1e-6, 1e3), s.Int("depth", 0),
            s.Int("num_heads", 1), s.Int("head_dim", 1), s.Int("hidden_size", 1));
        if (dit.OutChannels != outputSize) throw Fail(file, s, "out_channels", $"{dit.OutChannels} differs from flow.output_size {outputSize} (mel bins)");
        if (dit.InChannels != 4 * outputSize)
            throw Fail(file, s, "in_channels", $"{dit.InChannels} is not 4 × {outputSize} (x, μ, speaker and cond are concatenated)");
        if (dit.MlpHidden < 1) throw Fail(file, s, "mlp_ratio", "gives an empty MLP");
        s.EnsureAllRead();
        d.EnsureAllRead();
        f.EnsureAllRead();
        return new FlowConfig(inputSize, outputSize, spk, outputType, vocab, enc, new CfmConfig(cfg, dit));
    }

    private static ConfigException Fail(string file, YamlSection section, string key, string fault) =>
        new(file, fault, $"{section.Path}.{key}", line: section.LineOf(key));
}
