using StepAudio2.Lab.IO;
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
