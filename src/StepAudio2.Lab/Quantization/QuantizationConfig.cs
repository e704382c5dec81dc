using System.Text.Json;
using System.Text.Json.Nodes;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Quantization;

/// <summary>Bits and group size of one quantized module (mode is always "affine" here).</summary>
public sealed record QuantizationSpec(int Bits, int GroupSize)
{
    public override string ToString() => $"{Bits} bits, group {GroupSize}";
}

/// <summary>
/// <c>config.json</c>'s <c>"quantization"</c> object as mlx-lm writes it (mirrored in <c>"quantization_config"</c>):
/// <c>{"group_size": 64, "bits": 4, "mode": "affine", "&lt;module path&gt;": {"group_size": …, "bits": …} | false, …}</c>.
/// Rule of mlx-lm's loader: a module is quantized with its listed spec when its path is listed (not at all when listed
/// as <c>false</c>), else with the default spec when the checkpoint holds <c>&lt;path&gt;.scales</c>.
/// </summary>
public sealed class QuantizationConfig
{
    public QuantizationConfig(QuantizationSpec defaultSpec, IReadOnlyDictionary<string, QuantizationSpec?>? overrides = null)
    {
        Default = defaultSpec;
        Overrides = overrides ?? new Dictionary<string, QuantizationSpec?>();
    }

    public QuantizationSpec Default { get; }
    /// <summary>Per-module entries; null means <c>false</c> (kept unquantized).</summary>
    public IReadOnlyDictionary<string, QuantizationSpec?> Overrides { get; }

    /// <summary>The spec of module <paramref name="path"/>, or null when it is not quantized.</summary>
    public QuantizationSpec? For(string path, bool hasScales) =>
        Overrides.TryGetValue(path, out var spec) ? spec : hasScales ? Default : null;

    /// <summary>Reads the <c>quantization</c> (else <c>quantization_config</c>) object of a config file's root, or null when absent.</summary>
    public static QuantizationConfig? FromConfigRoot(JsonElement root, string file)
    {
        if (root.ValueKind != JsonValueKind.Object) return null;
        JsonElement q;
        string field;
        if (root.TryGetProperty("quantization", out q)) field = "quantization";
        else if (root.TryGetProperty("quantization_config", out q)) field = "quantization_config";
        else return null;
        if (q.ValueKind == JsonValueKind.Null) return null;
        if (q.ValueKind != JsonValueKind.Object) throw new ConfigException(file, $"expected an object, found {q.ValueKind}", field);
        if (q.TryGetProperty("mode", out var mode) && !(mode.ValueKind == JsonValueKind.String && mode.GetString() == "affine"))
            throw new ConfigException(file, $"quantization mode {mode} is not supported (only \"affine\")", field + ".mode");
        var def = Spec(q, file, field);
        var overrides = new Dictionary<string, QuantizationSpec?>(StringComparer.Ordinal);
        foreach (var p in q.EnumerateObject())
        {
            if (p.Name is "group_size" or "bits" or "mode") continue;
            string at = $"{field}.{p.Name}";
            switch (p.Value.ValueKind)
            {
                case JsonValueKind.False: overrides[p.Name] = null; break;
                case JsonValueKind.Object:
                    if (p.Value.TryGetProperty("mode", out var m) && !(m.ValueKind == JsonValueKind.String && m.GetString() == "affine"))
                        throw new ConfigException(file, $"quantization mode {m} is not supported (only \"affine\")", at + ".mode");
                    overrides[p.Name] = Spec(p.Value, file, at);
                    break;
                default: throw new ConfigException(file, $"a per-module entry must be an object or false, found {p.Value.ValueKind}", at);
            }
        }
        return new QuantizationConfig(def, overrides);
    }

    private static QuantizationSpec Spec(JsonElement e, string file, string at)
    {
        int bits = Int(e, "bits", file, at), gs = Int(e, "group_size", file, at);
        if (Array.IndexOf(QuantizedWeight.SupportedBits, bits) < 0) throw new ConfigException(file, $"bits {bits} not supported (2, 3, 4, 5, 6 or 8)", at + ".bits");
        if (Array.IndexOf(QuantizedWeight.SupportedGroupSizes, gs) < 0) throw new ConfigException(file, $"group size {gs} not supported (32, 64 or 128)", at + ".group_size");
        return new QuantizationSpec(bits, gs);
    }

    private static int Int(JsonElement e, string name, string file, string at)
    {
        if (!e.TryGetProperty(name, out var v)) throw new ConfigException(file, "required field is missing", $"{at}.{name}");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i)) throw new ConfigException(file, $"expected an integer, found {v}", $"{at}.{name}");
        return i;
    }

    /// <summary>The JSON object mlx-lm writes (default fields first, then the per-module entries in ordinal order).</summary>
    public JsonObject ToJson()
    {
        var o = new JsonObject { ["group_size"] = Default.GroupSize, ["bits"] = Default.Bits, ["mode"] = "affine" };
        foreach (var (path, spec) in Overrides.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            o[path] = spec is null ? JsonValue.Create(false) : new JsonObject { ["group_size"] = spec.GroupSize, ["bits"] = spec.Bits };
        return o;
    }
}
