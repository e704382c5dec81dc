using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Quantization;

namespace StepAudio2.Lab.Config;

/// <summary>
/// <c>text_config</c> of Step-Audio 2 mini: the Qwen2.5-7B-style decoder (docs/model.md §5.1).
/// Mirrors <c>configuration_step_audio_2.StepAudio2TextConfig</c>.
/// </summary>
public sealed record TextConfig(
    int HiddenSize,
    int IntermediateSize,
    int NumAttentionHeads,
    int NumKeyValueHeads,
    int NumHiddenLayers,
    int VocabSize,
    double RmsNormEps,
    double RopeTheta,
    int MaxPositionEmbeddings,
    int EosTokenId,
    int PadTokenId,
    string TorchDtype)
{
    /// <summary>Per-head width: hidden_size / num_attention_heads (128 for the real model).</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;
    /// <summary>Query heads per KV head (GQA group size; 7 for the real model).</summary>
    public int GroupSize => NumAttentionHeads / NumKeyValueHeads;
}

/// <summary>
/// <c>audio_encoder_config</c>: the Whisper-style encoder and the adaptor (docs/model.md §3.1, §4).
/// Mirrors the <c>AudioEncoder</c>/<c>Adaptor</c> constructor arguments of the official modeling code.
/// </summary>
public sealed record AudioEncoderConfig(
    int NMels,
    int NAudioCtx,
    int NAudioState,
    int NAudioHead,
    int NAudioLayer,
    int NCodebookSize,
    int LlmDim,
    int KernelSize,
    int AdapterStride)
{
    public int HeadDim => NAudioState / NAudioHead;
}

/// <summary>The checkpoint's <c>config.json</c>, bound to typed records with every field validated.</summary>
public sealed record StepAudio2Config(string ModelType, TextConfig Text, AudioEncoderConfig Audio)
{
    public const string FileName = "config.json";

    /// <summary>mlx-lm's <c>"quantization"</c> (or <c>"quantization_config"</c>) object; null for an unquantized checkpoint.</summary>
    public QuantizationConfig? Quantization { get; init; }

    /// <summary>Loads <c>config.json</c> from a checkpoint folder or a file path.</summary>
    public static StepAudio2Config Load(string pathOrFolder)
    {
        string path = Directory.Exists(pathOrFolder) ? Path.Combine(pathOrFolder, FileName) : pathOrFolder;
        if (!File.Exists(path)) throw new ConfigException(path, "file not found");
        var info = new FileInfo(path);
        if (info.Length > 16 << 20) throw new ConfigException(path, $"{info.Length} bytes is too large for a config file");
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config JSON text; <paramref name="source"/> names it in errors.</summary>
    public static StepAudio2Config Parse(string json, string source = "config.json")
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new ConfigException(source, $"not valid JSON: {e.Message}", inner: e);
        }
        using (doc)
        {
            var root = new Fields(doc.RootElement, source, "");
            var text = root.Object("text_config");
            var audio = root.Object("audio_encoder_config");
            var tc = new TextConfig(
                HiddenSize: text.PositiveInt("hidden_size"),
                IntermediateSize: text.PositiveInt("intermediate_size"),
                NumAttentionHeads: text.PositiveInt("num_attention_heads"),
                NumKeyValueHeads: text.PositiveIntAny("num_key_value_heads", "num_attention_groups"),
                NumHiddenLayers: text.PositiveInt("num_hidden_layers"),
                VocabSize: text.PositiveInt("vocab_size"),
                RmsNormEps: text.PositiveDouble("rms_norm_eps"),
                RopeTheta: text.PositiveDouble("rope_theta"),
                MaxPositionEmbeddings: text.PositiveIntAny("max_position_embeddings", "max_seq_len"),
                EosTokenId: text.NonNegativeInt("eos_token_id"),
                PadTokenId: text.NonNegativeInt("pad_token_id"),
                TorchDtype: text.OptionalString("torch_dtype") ?? "bfloat16");
            text.Require(tc.HiddenSize % tc.NumAttentionHeads == 0, "hidden_size",
                $"hidden_size {tc.HiddenSize} is not divisible by num_attention_heads {tc.NumAttentionHeads}");
            text.Require(tc.NumAttentionHeads % tc.NumKeyValueHeads == 0, "num_key_value_heads",
                $"num_attention_heads {tc.NumAttentionHeads} is not divisible by num_key_value_heads {tc.NumKeyValueHeads}");
            text.Require(tc.HeadDim % 2 == 0, "hidden_size", $"head_dim {tc.HeadDim} must be even for rotate-half RoPE");
            if (text.Has("rope_scaling") && text.Element("rope_scaling").ValueKind != JsonValueKind.Null)
                text.Fail("rope_scaling", "rope scaling is not part of Step-Audio 2 mini (expected null)");
            if (text.Has("num_attention_groups") && text.Has("num_key_value_heads")
                && text.PositiveInt("num_attention_groups") != text.PositiveInt("num_key_value_heads"))
                text.Fail("num_attention_groups", "num_attention_groups and num_key_value_heads disagree");

            var ac = new AudioEncoderConfig(
                NMels: audio.PositiveInt("n_mels"),
                NAudioCtx: audio.PositiveInt("n_audio_ctx"),
                NAudioState: audio.PositiveInt("n_audio_state"),
                NAudioHead: audio.PositiveInt("n_audio_head"),
                NAudioLayer: audio.PositiveInt("n_audio_layer"),
                NCodebookSize: audio.OptionalPositiveInt("n_codebook_size") ?? 4096,
                LlmDim: audio.PositiveInt("llm_dim"),
                KernelSize: audio.PositiveInt("kernel_size"),
                AdapterStride: audio.PositiveInt("adapter_stride"));
            audio.Require(ac.NAudioState % ac.NAudioHead == 0, "n_audio_head",
                $"n_audio_state {ac.NAudioState} is not divisible by n_audio_head {ac.NAudioHead}");
            audio.Require(ac.LlmDim == tc.HiddenSize, "llm_dim",
                $"llm_dim {ac.LlmDim} must equal text_config.hidden_size {tc.HiddenSize} (adaptor output is written into the LLM's embeddings)");

            return new StepAudio2Config(root.OptionalString("model_type") ?? "step_audio_2", tc, ac)
            {
                Quantization = QuantizationConfig.FromConfigRoot(doc.RootElement, source),
            };
        }
    }

    /// <summary>Typed access to one JSON object with errors that name the file and the dotted field path.</summary>
    private readonly struct Fields(JsonElement element, string file, string prefix)
    {
        public bool Has(string name) => element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out _);

        public JsonElement Element(string name)
        {
            if (element.ValueKind != JsonValueKind.Object)
                throw new ConfigException(file, $"expected a JSON object, found {element.ValueKind}", Path0());
            if (!element.TryGetProperty(name, out var value))
                throw new ConfigException(file, "required field is missing", Path(name));
            return value;
        }

        public Fields Object(string name)
        {
            var e = Element(name);
            if (e.ValueKind != JsonValueKind.Object)
                throw new ConfigException(file, $"expected an object, found {e.ValueKind}", Path(name));
            return new Fields(e, file, Path(name) + ".");
        }

        public int PositiveInt(string name)
        {
            int v = Int(name);
            if (v <= 0) Fail(name, $"must be positive, found {v}");
            return v;
        }

        public int NonNegativeInt(string name)
        {
            int v = Int(name);
            if (v < 0) Fail(name, $"must not be negative, found {v}");
            return v;
        }

        public int PositiveIntAny(string name, string alternative) =>
            Has(name) ? PositiveInt(name) : Has(alternative) ? PositiveInt(alternative)
            : throw new ConfigException(file, $"required field is missing (nor is '{alternative}' given)", Path(name));

        public int? OptionalPositiveInt(string name) => Has(name) && Element(name).ValueKind != JsonValueKind.Null ? PositiveInt(name) : null;

        public double PositiveDouble(string name)
        {
            var e = Element(name);
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetDouble(out double v) || !double.IsFinite(v))
                throw new ConfigException(file, $"expected a number, found {Describe(e)}", Path(name));
            if (v <= 0) Fail(name, $"must be positive, found {v}");
            return v;
        }

        public string? OptionalString(string name)
        {
            if (!Has(name)) return null;
            var e = Element(name);
            if (e.ValueKind == JsonValueKind.Null) return null;
            if (e.ValueKind != JsonValueKind.String) throw new ConfigException(file, $"expected a string, found {Describe(e)}", Path(name));
            return e.GetString();
        }

        public void Require(bool condition, string name, string fault)
        {
            if (!condition) Fail(name, fault);
        }

        public void Fail(string name, string fault) => throw new ConfigException(file, fault, Path(name));

        private int Int(string name)
        {
            var e = Element(name);
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int v))
                throw new ConfigException(file, $"expected an integer, found {Describe(e)}", Path(name));
            return v;
        }

        private string Path(string name) => prefix + name;
        private string Path0() => prefix.TrimEnd('.') is { Length: > 0 } p ? p : "(root)";

        private static string Describe(JsonElement e) => e.ValueKind switch
        {
            JsonValueKind.String => $"string \"{e.GetString()}\"",
            JsonValueKind.Number => $"number {e.GetRawText()}",
            _ => e.ValueKind.ToString().ToLowerInvariant(),
        };
    }
}
