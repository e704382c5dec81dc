using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Quantization;

/// <summary>What to quantize: bits and group size of the default spec, a recipe, and the output shard size.</summary>
/// <param name="Recipe"><c>decoder</c> (the LLM decoder's linear layers), <c>decoder-head8</c> (plus
/// <c>model.embed_tokens</c> and <c>lm_head</c> at 8 bits: the vocabulary holds the audio tokens), or a JSON file of
/// mlx-lm per-module entries (<c>{"&lt;module path&gt;": {"bits": b, "group_size": g} | false}</c>) applied over
/// <c>decoder</c>.</param>
public sealed record QuantizeOptions(int Bits, int GroupSize = 64, string Recipe = "decoder", long MaxShardBytes = 2L << 30);

/// <summary>Summary of a quantized checkpoint written by <see cref="CheckpointQuantizer"/>.</summary>
public sealed record QuantizeResult(int QuantizedModules, int SkippedModules, long SourceBytes, long OutputBytes, int Shards, IReadOnlyList<string> CopiedFiles);

/// <summary>
/// Writes a Step-Audio 2 checkpoint in MLX's affine quantized layout (what <c>mlx_lm.convert -q</c> writes): every
/// selected module's <c>.weight</c> becomes packed u32 with <c>.scales</c>/<c>.biases</c> in the source dtype, every
/// other tensor is copied as is; sharded safetensors + <c>model.safetensors.index.json</c>; config.json gains
/// <c>"quantization"</c> (mirrored in <c>"quantization_config"</c>) with an entry for each module quantized differently
/// from the default or kept float by the recipe; every other file of the folder (tokenizer, token2wav/) is copied.
/// The output is checked by loading it as a model (every key and shape asserted).
/// </summary>
public static partial class CheckpointQuantizer
{
    public static readonly string[] BuiltInRecipes = ["decoder", "decoder-head8"];

    [GeneratedRegex(@"^model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)$")]
    private static partial Regex DecoderLinear();

    /// <summary>module path → spec for every module the recipe quantizes, and the config entries to write.</summary>
    public static (Dictionary<string, QuantizationSpec> Modules, QuantizationConfig Config, int Skipped) Plan(ITensorSource source, QuantizeOptions o)
    {
        if (Array.IndexOf(QuantizedWeight.SupportedBits, o.Bits) < 0) throw new ArgumentException($"--bits {o.Bits} not supported (2, 3, 4, 5, 6 or 8)");
        if (Array.IndexOf(QuantizedWeight.SupportedGroupSizes, o.GroupSize) < 0) throw new ArgumentException($"--group-size {o.GroupSize} not supported (32, 64 or 128)");
        var def = new QuantizationSpec(o.Bits, o.GroupSize);
        var entries = new Dictionary<string, QuantizationSpec?>(StringComparer.Ordinal);
        switch (o.Recipe)
        {
            case "decoder": break;
            case "decoder-head8":
                entries["model.embed_tokens"] = new QuantizationSpec(8, o.GroupSize);
                entries["lm_head"] = new QuantizationSpec(8, o.GroupSize);
                break;
            default:
                foreach (var (k, v) in ReadRecipe(o.Recipe)) entries[k] = v;
                break;
        }
        var modules = new Dictionary<string, QuantizationSpec>(StringComparer.Ordinal);
        int skipped = 0;
        foreach (var t in source.Tensors)
        {
            if (!t.Name.EndsWith(".weight", StringComparison.Ordinal)) continue;
            string path = t.Name[..^".weight".Length];
            QuantizationSpec? spec = entries.TryGetValue(path, out var listed) ? listed : DecoderLinear().IsMatch(path) ? def : null;
            if (spec is null) continue;
            if (t.Shape.Length != 2 || !t.DType.IsFloating() || t.DType == DType.F64)
            {
                if (entries.ContainsKey(path)) throw new ArgumentException($"recipe: '{path}' is {t.DType.ShortName()} {Tensor.ShapeString(t.Shape)}, not a 2-D f32/bf16/f16 weight");
                continue;
            }
            if (t.Shape[1] % spec.GroupSize != 0)
            {
                // as mlx-lm: a module whose input width is not a multiple of the group size stays float
                if (entries.ContainsKey(path)) throw new ArgumentException($"recipe: '{path}' has input width {t.Shape[1]}, not a multiple of group size {spec.GroupSize}");
                skipped++;
                continue;
            }
            modules[path] = spec;
        }
        foreach (var path in entries.Keys)
            if (entries[path] is not null && !modules.ContainsKey(path))
                throw new ArgumentException($"recipe: module '{path}' has no '{path}.weight' in the checkpoint");
        var overrides = new Dictionary<string, QuantizationSpec?>(StringComparer.Ordinal);
        foreach (var (path, spec) in modules) if (spec != def) overrides[path] = spec;
        foreach (var (path, spec) in entries) if (spec is null) overrides[path] = null;
        return (modules, new QuantizationConfig(def, overrides), skipped);
    }

    private static IEnumerable<KeyValuePair<string, QuantizationSpec?>> ReadRecipe(string file)
    {
        if (!File.Exists(file)) throw new ArgumentException($"--recipe: '{file}' is neither {string.Join(", ", BuiltInRecipes)} nor an existing JSON file");
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllText(file));
        }
        catch (JsonException e)
        {
            throw new ConfigException(file, $"not valid JSON: {e.Message}", inner: e);
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new ConfigException(file, "a recipe is a JSON object of module path → {\"bits\", \"group_size\"} | false");
            foreach (var p in root.EnumerateObject())
                if (p.Name is "bits" or "group_size" or "mode")
                    throw new ConfigException(file, "a recipe lists modules only; --bits and --group-size set the default", p.Name);
            // the entries are read by the config reader, as a "quantization" object around them
            var wrapped = new JsonObject { ["bits"] = 4, ["group_size"] = 64 };
            foreach (var p in root.EnumerateObject()) wrapped[p.Name] = JsonNode.Parse(p.Value.GetRawText());
            using var config = JsonDocument.Parse(new JsonObject { ["quantization"] = wrapped }.ToJsonString());
            return QuantizationConfig.FromConfigRoot(config.RootElement, file)!.Overrides.ToList();
        }
    }

    /// <summary>Quantizes the checkpoint in <paramref name="modelDir"/> into <paramref name="outDir"/> (absent or empty).</summary>
    public static QuantizeResult Run(string modelDir, string outDir, QuantizeOptions o, IProgress<(int Done, int Total, string Item)>? progress = null)
    {
        if (!Directory.Exists(modelDir)) throw new DirectoryNotFoundException($"--model: folder '{modelDir}' not found");
        if (Directory.Exists(outDir) && Directory.EnumerateFileSystemEntries(outDir).Any())
            throw new ArgumentException($"--out: folder '{outDir}' exists and is not empty");
        if (Path.GetFullPath(outDir).TrimEnd('/') == Path.GetFullPath(modelDir).TrimEnd('/')) throw new ArgumentException("--out must differ from --model");
        var config = StepAudio2Config.Load(modelDir);
        if (config.Quantization is not null) throw new ConfigException(Path.Combine(modelDir, StepAudio2Config.FileName), "the checkpoint is already quantized", "quantization");
        using var source = ShardedCheckpoint.Open(modelDir);
        _ = new StepAudio2Model(source, config); // the source must be a complete model: every key and shape asserted

        var (modules, qconfig, skipped) = Plan(source, o);
        var outputs = new List<(string Name, long Bytes)>();
        foreach (var t in source.Tensors)
        {
            string path = t.Name.EndsWith(".weight", StringComparison.Ordinal) ? t.Name[..^".weight".Length] : "";
            if (modules.TryGetValue(path, out var spec))
            {
                long rows = t.Shape[0], cols = t.Shape[1], sb = rows * (cols / spec.GroupSize) * t.DType.SizeOf();
                outputs.Add((t.Name, rows * cols * spec.Bits / 8 + 2 * sb));
            }
            else outputs.Add((t.Name, t.ByteLength));
        }
        // shards in key order, each at most MaxShardBytes (a single larger tensor gets its own shard)
        var shards = new List<List<string>> { new() };
        long filled = 0;
        foreach (var (name, bytes) in outputs.OrderBy(x => x.Name, StringComparer.Ordinal))
        {
            if (filled > 0 && filled + bytes > o.MaxShardBytes) { shards.Add([]); filled = 0; }
            shards[^1].Add(name);
            filled += bytes;
        }

        Directory.CreateDirectory(outDir);
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        long total = 0;
        int done = 0, count = source.Tensors.Count;
        for (int s = 0; s < shards.Count; s++)
        {
            string file = $"model-{s + 1:D5}-of-{shards.Count:D5}.safetensors";
            var tensors = new List<KeyValuePair<string, Tensor>>();
            foreach (var name in shards[s])
            {
                progress?.Report((done, count, name));
                var t = source.Get(name);
                string path = name[..^(name.EndsWith(".weight", StringComparison.Ordinal) ? ".weight".Length : 0)];
                if (name.EndsWith(".weight", StringComparison.Ordinal) && modules.TryGetValue(path, out var spec))
                {
                    var q = AffineQuantizer.Quantize(t, spec.Bits, spec.GroupSize);
                    tensors.Add(new(path + ".weight", q.Weight));
                    tensors.Add(new(path + ".scales", q.Scales));
                    tensors.Add(new(path + ".biases", q.Biases));
                }
                else tensors.Add(new(name, t));
                done++;
            }
            SafetensorsWriter.Write(Path.Combine(outDir, file), tensors, new Dictionary<string, string> { ["format"] = "mlx" });
            foreach (var (name, t) in tensors) { weightMap[name] = file; total += t.ByteCount; }
            progress?.Report((done, count, file));
        }
        var index = new JsonObject
        {
            ["metadata"] = new JsonObject { ["total_size"] = total },
            ["weight_map"] = new JsonObject(weightMap.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        };
        File.WriteAllText(Path.Combine(outDir, ShardedCheckpoint.IndexFileName), index.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

        var cfgNode = JsonNode.Parse(File.ReadAllText(Path.Combine(modelDir, StepAudio2Config.FileName)))!.AsObject();
        cfgNode["quantization"] = qconfig.ToJson();
        cfgNode["quantization_config"] = qconfig.ToJson();
        File.WriteAllText(Path.Combine(outDir, StepAudio2Config.FileName), cfgNode.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");

        var copied = CopyOtherFiles(modelDir, outDir, source);

        // check by re-loading: config, index, shards, every key and shape through the model constructor
        try
        {
            using var written = ShardedCheckpoint.Open(outDir);
            var reloaded = StepAudio2Config.Load(outDir);
            _ = new StepAudio2Model(written, reloaded);
            int expectedCount = count + 2 * modules.Count;
            if (written.Tensors.Count != expectedCount)
                throw new InvalidDataException($"{outDir}: re-loaded {written.Tensors.Count} tensors, {expectedCount} were written");
        }
        catch (LabDataException e)
        {
            throw new InvalidDataException($"re-loading the written checkpoint failed: {e.Message}", e);
        }
        long sourceBytes = source.Tensors.Sum(t => t.ByteLength);
        return new QuantizeResult(modules.Count, skipped, sourceBytes, total, shards.Count, copied);
    }

    /// <summary>Every file and folder of the model folder except its weights, index and config (tokenizer files, token2wav/).</summary>
    private static List<string> CopyOtherFiles(string modelDir, string outDir, ITensorSource source)
    {
        var shardFiles = new HashSet<string>(source.Tensors.Select(t => Path.GetFileName(t.File)), StringComparer.Ordinal)
        {
            ShardedCheckpoint.IndexFileName, StepAudio2Config.FileName, ShardedCheckpoint.SingleFileName,
        };
        var copied = new List<string>();
        foreach (var file in Directory.EnumerateFiles(modelDir, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string rel = Path.GetRelativePath(modelDir, file);
            if (!rel.Contains(Path.DirectorySeparatorChar) && shardFiles.Contains(rel)) continue;
            string dst = Path.Combine(outDir, rel);
            Directory.CreateDirectory(Path.GetDirectoryName(dst)!);
            File.Copy(file, dst);
            copied.Add(rel);
        }
        return copied;
    }
}
