using StepAudio2.Lab.IO;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models;

/// <summary>
/// Checkpoint access for module constructors, nanoGPT-style: every weight is taken by its exact checkpoint key with its
/// shape asserted, and <see cref="AssertAllUsed"/> fails on keys nobody took. Errors name the key and the file.
/// Tensors come back as stored (bf16 stays bf16, mapped stays mapped).
/// </summary>
public sealed class Weights(ITensorSource source)
{
    private readonly HashSet<string> _used = new(StringComparer.Ordinal);
    private Dictionary<string, string>? _files;

    /// <summary>The file that holds <paramref name="key"/> (its shard), else the checkpoint path.</summary>
    private string FileOf(string key)
    {
        _files ??= Source.Tensors.GroupBy(t => t.Name).ToDictionary(g => g.Key, g => g.First().File, StringComparer.Ordinal);
        return _files.TryGetValue(key, out var f) ? f : Source.Path;
    }

    public ITensorSource Source { get; } = source;

    public bool Has(string key) => Source.Contains(key);

    /// <summary>The checkpoint's quantization (config.json), null when it has none.</summary>
    public QuantizationConfig? Quantization { get; init; }

    /// <summary>
    /// Module <paramref name="path"/> in MLX's affine quantized layout when it is quantized (listed in the config's
    /// quantization with a spec, or not listed and <c>&lt;path&gt;.scales</c> present), else null. Asserts
    /// <c>.weight</c> u32 [out, in·bits/32], <c>.scales</c>/<c>.biases</c> [out, in/group_size] of one float dtype.
    /// </summary>
    public QuantizedWeight? GetQuantized(string path, int outFeatures, int inFeatures)
    {
        string wKey = path + ".weight", sKey = path + ".scales", bKey = path + ".biases";
        bool hasScales = Has(sKey);
        var spec = Quantization?.For(path, hasScales);
        if (spec is null)
        {
            if (hasScales)
                throw new WeightException(FileOf(sKey), Quantization is null
                    ? "quantized weights (.scales) present but config.json has no \"quantization\""
                    : "config.json's quantization lists this module as false (not quantized) but .scales is present", sKey);
            return null;
        }
        if (inFeatures % spec.GroupSize != 0)
            throw new WeightException(FileOf(wKey), $"input width {inFeatures} is not a multiple of the group size {spec.GroupSize} ({spec})", wKey);
        var packed = GetRaw(wKey, DType.U32, QuantizedWeight.PackedShape(outFeatures, inFeatures, spec.Bits), spec);
        var scales = GetRaw(sKey, null, [outFeatures, inFeatures / spec.GroupSize], spec);
        var biases = GetRaw(bKey, scales.DType, [outFeatures, inFeatures / spec.GroupSize], spec);
        return QuantizedWeight.Create(packed, scales, biases, spec.Bits, spec.GroupSize);
    }

    private Tensor GetRaw(string key, DType? dtype, int[] shape, QuantizationSpec spec)
    {
        if (!Source.Contains(key)) throw new WeightException(Source.Path, $"required weight of a quantized module ({spec}) is missing from the checkpoint", key);
        var t = Source.Get(key);
        if (dtype is { } d ? t.DType != d : !(t.DType is DType.F32 or DType.BF16 or DType.F16))
            throw new WeightException(FileOf(key), $"dtype {t.DType.ShortName()} where {(dtype is { } e ? e.ShortName() : "f32/bf16/f16")} is expected ({spec})", key);
        if (!t.Shape.SequenceEqual(shape))
            throw new WeightException(FileOf(key), $"shape {Tensor.ShapeString(t.Shape)} does not match the expected {Tensor.ShapeString(shape)} ({spec})", key);
        _used.Add(key);
        return t;
    }

    /// <summary>The tensor under <paramref name="key"/>, which must have exactly <paramref name="shape"/>.</summary>
    public Tensor Get(string key, params int[] shape)
    {
        var t = GetAnyShape(key, shape.Length);
        if (!t.Shape.SequenceEqual(shape))
            throw new WeightException(FileOf(key), $"shape {Tensor.ShapeString(t.Shape)} does not match the expected {Tensor.ShapeString(shape)}", key);
        return t;
    }

    /// <summary>The tensor under <paramref name="key"/> with only its rank asserted (for widths inferred from the checkpoint).</summary>
    public Tensor GetAnyShape(string key, int rank)
    {
        if (!Source.Contains(key)) throw new WeightException(Source.Path, "required weight is missing from the checkpoint", key);
        var t = Source.Get(key);
        if (t.Rank != rank)
            throw new WeightException(FileOf(key), $"rank {t.Rank} (shape {Tensor.ShapeString(t.Shape)}) where rank {rank} is expected", key);
        if (!t.DType.IsFloating())
            throw new WeightException(FileOf(key), $"dtype {t.DType.ShortName()} is not a floating-point weight", key);
        _used.Add(key);
        return t;
    }

    /// <summary>Fails when a key under <paramref name="prefix"/> was never taken (an extra or misspelled weight).</summary>
    public void AssertAllUsed(string prefix)
    {
        var extra = Source.Tensors.Select(t => t.Name).Where(n => n.StartsWith(prefix, StringComparison.Ordinal) && !_used.Contains(n)).ToList();
        if (extra.Count > 0)
            throw new WeightException(FileOf(extra[0]),
                $"{extra.Count} unexpected weight(s) under '{prefix}' not used by the model: {string.Join(", ", extra.Take(8))}{(extra.Count > 8 ? ", …" : "")}",
                extra[0]);
    }
}
