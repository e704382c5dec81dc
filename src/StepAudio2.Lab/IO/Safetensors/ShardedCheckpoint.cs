using System.Text.Json;
using System.Text.Unicode;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Safetensors;

/// <summary>One tensor named by a checkpoint: the shard the index puts it in and, when that shard is present and holds it, its header info.</summary>
public sealed record IndexEntry(string Name, string Shard, TensorInfo? Info);

/// <summary>A shard file named by the index but absent, with the tensors the index places in it (index order).</summary>
public sealed record MissingShard(string Shard, string Path, IReadOnlyList<string> Tensors);

/// <summary>What <see cref="ShardedCheckpoint.Verify"/> found; <see cref="IsComplete"/> when nothing is wrong.</summary>
/// <param name="MissingShards">Shards named by the index that are not on disk.</param>
/// <param name="NotInShard">Index entries whose (present) shard does not hold the tensor.</param>
/// <param name="NotInIndex">Tensors in a shard that the index does not map to that shard.</param>
/// <param name="DeclaredTotalSize">The index's <c>metadata.total_size</c>, when given.</param>
/// <param name="ComputedTotalSize">Sum of the byte lengths of the indexed tensors; null while shards are missing.</param>
public sealed record CheckpointReport(
    string IndexPath,
    IReadOnlyList<MissingShard> MissingShards,
    IReadOnlyList<IndexEntry> NotInShard,
    IReadOnlyList<TensorInfo> NotInIndex,
    long? DeclaredTotalSize,
    long? ComputedTotalSize)
{
    /// <summary>Null when either size is unknown.</summary>
    public bool? TotalSizeMatches => DeclaredTotalSize is null || ComputedTotalSize is null ? null : DeclaredTotalSize == ComputedTotalSize;

    public bool IsComplete => MissingShards.Count == 0 && NotInShard.Count == 0 && NotInIndex.Count == 0 && TotalSizeMatches != false;

    /// <summary>Throws the first fault as a typed exception: <see cref="MissingShardException"/> first, else <see cref="SafetensorsFormatException"/>.</summary>
    public void ThrowIfIncomplete()
    {
        if (MissingShards.Count > 0)
        {
            var m = MissingShards[0];
            throw new MissingShardException(m.Path, m.Shard, m.Tensors[0], IndexPath);
        }
        if (NotInShard.Count > 0)
        {
            var e = NotInShard[0];
            throw new SafetensorsFormatException(e.Info?.File ?? e.Shard, $"the index ({IndexPath}) places this tensor in shard '{e.Shard}', whose header lacks it", e.Name);
        }
        if (NotInIndex.Count > 0)
        {
            var t = NotInIndex[0];
            throw new SafetensorsFormatException(IndexPath, $"tensor in shard {t.File} is not mapped to that shard by the index", t.Name);
        }
        if (TotalSizeMatches == false)
            throw new SafetensorsFormatException(IndexPath, $"metadata.total_size {DeclaredTotalSize} != {ComputedTotalSize}, the sum of the tensors' byte lengths", "metadata.total_size");
    }

    public override string ToString() =>
        IsComplete ? $"{IndexPath}: complete" :
        $"{IndexPath}: {MissingShards.Count} missing shard(s) [{string.Join(", ", MissingShards.Select(m => m.Shard))}], " +
        $"{NotInShard.Count} indexed tensor(s) absent from their shard, {NotInIndex.Count} tensor(s) not in the index, " +
        $"total_size {DeclaredTotalSize?.ToString() ?? "?"} vs {ComputedTotalSize?.ToString() ?? "?"}";
}

/// <summary>
/// A Hugging Face checkpoint folder: <c>model.safetensors.index.json</c> plus shards, or a single <c>model.safetensors</c>.
/// Present shards are mapped at open; an absent shard only fails <see cref="Get"/> for its tensors (and shows in
/// <see cref="Verify"/>), so an index alone can be listed.
/// </summary>
public sealed class ShardedCheckpoint : ITensorSource
{
    public const string IndexFileName = "model.safetensors.index.json";
    public const string SingleFileName = "model.safetensors";
    private const long MaxIndexBytes = 100_000_000;

    private readonly Dictionary<string, SafetensorsFile> _shards; // present shards by file name
    private readonly Dictionary<string, IndexEntry> _byName;
    private readonly ILookup<string, string> _namesByShard; // index order within each shard

    private ShardedCheckpoint(string folder, string? indexPath, long? totalSize, List<(string Name, string Shard)> weightMap, Dictionary<string, SafetensorsFile> shards)
    {
        Path = folder;
        IndexPath = indexPath;
        DeclaredTotalSize = totalSize;
        // One grouping pass: filtering the map once per shard was O(shards × tensors), minutes for an index of 100 k shards.
        _namesByShard = weightMap.ToLookup(w => w.Shard, w => w.Name, StringComparer.Ordinal);
        _shards = shards;
        ShardNames = weightMap.Select(w => w.Shard).Distinct().Order(StringComparer.Ordinal).ToArray();
        MissingShards = ShardNames.Where(s => !shards.ContainsKey(s)).ToArray();

        // Listing order: shard by shard (by file name); data-offset order inside a present shard, index order otherwise.
        var entries = new List<IndexEntry>(weightMap.Count);
        foreach (string shard in ShardNames)
        {
            var mine = _namesByShard[shard].ToList();
            if (shards.TryGetValue(shard, out var file))
            {
                var wanted = mine.ToHashSet(StringComparer.Ordinal);
                foreach (var info in file.Tensors)
                    if (wanted.Remove(info.Name)) entries.Add(new IndexEntry(info.Name, shard, info));
                foreach (string name in mine)
                    if (wanted.Contains(name)) entries.Add(new IndexEntry(name, shard, null));
            }
            else
            {
                foreach (string name in mine) entries.Add(new IndexEntry(name, shard, null));
            }
        }
        Entries = entries;
        _byName = entries.ToDictionary(e => e.Name, StringComparer.Ordinal);
        Tensors = entries.Select(e => e.Info ?? new TensorInfo(e.Name, DType.F32, [], 0, ShardPath(e.Shard)) { IsResolved = false }).ToArray();
    }

    /// <summary>
    /// Opens a checkpoint folder, an index file, or a single <c>.safetensors</c> file. Index faults throw
    /// <see cref="SafetensorsFormatException"/> naming the index; missing shards do not throw here.
    /// </summary>
    public static ShardedCheckpoint Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path))
        {
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(index)) return OpenIndex(path, index);
            string single = System.IO.Path.Combine(path, SingleFileName);
            if (File.Exists(single)) return OpenSingle(path, SingleFileName);
            throw new SafetensorsFormatException(path, $"folder has neither {IndexFileName} nor {SingleFileName}");
        }
        if (File.Exists(path))
        {
            string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!;
            return path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)
                ? OpenIndex(folder, path)
                : OpenSingle(folder, System.IO.Path.GetFileName(path));
        }
        throw new FileNotFoundException($"no checkpoint folder or file at {path}", path);
    }

    /// <summary>The checkpoint folder.</summary>
    public string Path { get; }

    /// <summary>The index file, or null for a single-file checkpoint.</summary>
    public string? IndexPath { get; }

    /// <summary>The index's <c>metadata.total_size</c>, when given.</summary>
    public long? DeclaredTotalSize { get; }

    /// <summary>Every shard file name the checkpoint uses, ordinal order.</summary>
    public IReadOnlyList<string> ShardNames { get; }

    /// <summary>Shard file names named by the index but absent from the folder.</summary>
    public IReadOnlyList<string> MissingShards { get; }

    /// <summary>Every indexed tensor with its shard; <see cref="IndexEntry.Info"/> is null where the shard is absent or lacks it.</summary>
    public IReadOnlyList<IndexEntry> Entries { get; }

    /// <summary>Every indexed tensor; entries of absent shards have <see cref="TensorInfo.IsResolved"/> false.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>
    /// A zero-copy view of <paramref name="name"/> from its shard. Throws <see cref="WeightException"/> when the
    /// index lacks it, <see cref="MissingShardException"/> when its shard is absent, and
    /// <see cref="SafetensorsFormatException"/> when its shard does not hold it.
    /// </summary>
    public Tensor Get(string name)
    {
        if (!_byName.TryGetValue(name, out var entry))
            throw new WeightException(Source, "no tensor of this name in the checkpoint", name);
        if (!_shards.TryGetValue(entry.Shard, out var file))
            throw new MissingShardException(ShardPath(entry.Shard), entry.Shard, name, IndexPath!);
        if (entry.Info is null)
            throw new SafetensorsFormatException(file.Path, $"the index ({IndexPath}) places this tensor in shard '{entry.Shard}', whose header lacks it", name);
        return file.Get(name);
    }

    /// <summary>Checks the index against the shards: missing shards, tensors missing on either side, total_size.</summary>
    public CheckpointReport Verify()
    {
        var missing = MissingShards
            .Select(s => new MissingShard(s, ShardPath(s), _namesByShard[s].ToArray()))
            .ToArray();
        var notInShard = Entries.Where(e => e.Info is null && _shards.ContainsKey(e.Shard)).ToArray();
        var notInIndex = new List<TensorInfo>();
        foreach (var (shard, file) in _shards.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            foreach (var info in file.Tensors)
                if (!_byName.TryGetValue(info.Name, out var e) || e.Shard != shard) notInIndex.Add(info);
        long? computed = missing.Length > 0 ? null : Entries.Sum(e => e.Info?.ByteLength ?? 0);
        return new CheckpointReport(Source, missing, notInShard, notInIndex, DeclaredTotalSize, computed);
    }

    /// <summary>Unmaps every shard.</summary>
    public void Dispose()
    {
        foreach (var f in _shards.Values) f.Dispose();
    }

    public override string ToString() => $"ShardedCheckpoint({Path}, {Entries.Count} tensors in {ShardNames.Count} shard(s), {MissingShards.Count} missing)";

    private string ShardPath(string shard) => System.IO.Path.GetFullPath(System.IO.Path.Combine(Path, shard));

    /// <summary>The file that errors about the checkpoint as a whole name: the index, or the single file.</summary>
    private string Source => IndexPath ?? (ShardNames.Count == 1 ? ShardPath(ShardNames[0]) : Path);

    private static ShardedCheckpoint OpenSingle(string folder, string fileName)
    {
        var file = SafetensorsFile.Open(System.IO.Path.Combine(folder, fileName));
        var map = file.Entries.Select(e => (e.Name, fileName)).ToList();
        return new ShardedCheckpoint(folder, null, null, map, new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal) { [fileName] = file });
    }

    private static ShardedCheckpoint OpenIndex(string folder, string indexPath)
    {
        var (totalSize, map) = ReadIndex(indexPath);
        var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        try
        {
            foreach (string shard in map.Select(m => m.Shard).Distinct())
            {
                string shardPath = System.IO.Path.Combine(folder, shard);
                if (File.Exists(shardPath)) shards.Add(shard, SafetensorsFile.Open(shardPath));
            }
            return new ShardedCheckpoint(folder, indexPath, totalSize, map, shards);
        }
        catch
        {
            foreach (var f in shards.Values) f.Dispose();
            throw;
        }
    }

    /// <summary>Parses <c>{"metadata": {"total_size": N}, "weight_map": {tensor: shard file}}</c>.</summary>
    private static (long? TotalSize, List<(string Name, string Shard)> Map) ReadIndex(string indexPath)
    {
        long length = new FileInfo(indexPath).Length;
        if (length > MaxIndexBytes)
            throw new SafetensorsFormatException(indexPath, $"index is {length} bytes, more than the {MaxIndexBytes}-byte limit");
        byte[] bytes = File.ReadAllBytes(indexPath);
        if (!Utf8.IsValid(bytes)) throw new SafetensorsFormatException(indexPath, "index is not valid UTF-8");

        JsonDocument doc;
        try { doc = JsonDocument.Parse(bytes); }
        catch (JsonException ex) { throw new SafetensorsFormatException(indexPath, $"index is not valid JSON: {ex.Message}", null, null, ex); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(indexPath, $"index is a JSON {Kind(root)}, expected an object");
            JsonElement? weightMap = null, metadata = null;
            foreach (var p in root.EnumerateObject())
            {
                if (p.NameEquals("weight_map"))
                    weightMap = weightMap is null ? p.Value : throw new SafetensorsFormatException(indexPath, "duplicate key in index", "weight_map");
                else if (p.NameEquals("metadata"))
                    metadata = metadata is null ? p.Value : throw new SafetensorsFormatException(indexPath, "duplicate key in index", "metadata");
            }
            if (weightMap is not { ValueKind: JsonValueKind.Object } wm)
                throw new SafetensorsFormatException(indexPath, weightMap is null ? "index lacks 'weight_map'" : $"'weight_map' is a JSON {Kind(weightMap.Value)}, expected an object of tensor → shard file", "weight_map");

            long? totalSize = null;
            if (metadata is { } md && md.ValueKind != JsonValueKind.Null)
            {
                if (md.ValueKind != JsonValueKind.Object)
                    throw new SafetensorsFormatException(indexPath, $"'metadata' is a JSON {Kind(md)}, expected an object", "metadata");
                if (md.TryGetProperty("total_size", out var ts) && ts.ValueKind != JsonValueKind.Null)
                    totalSize = ReadTotalSize(indexPath, ts);
            }

            var map = new List<(string, string)>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
            {
                if (!seen.Add(p.Name)) throw new SafetensorsFormatException(indexPath, "duplicate tensor in weight_map", p.Name);
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(indexPath, $"weight_map value is a JSON {Kind(p.Value)}, expected a shard file name", p.Name);
                string shard = p.Value.GetString()!;
                if (!IsPlainFileName(shard))
                    throw new SafetensorsFormatException(indexPath, $"shard '{shard}' is not a plain file name in the checkpoint folder", p.Name);
                map.Add((p.Name, shard));
            }
            return (totalSize, map);
        }
    }

    private static long ReadTotalSize(string indexPath, JsonElement ts)
    {
        if (ts.ValueKind == JsonValueKind.Number)
        {
            if (ts.TryGetInt64(out long v) && v >= 0) return v;
            // Some exporters write total_size as a float ("16630358528.0").
            if (ts.TryGetDouble(out double d) && d >= 0 && d <= long.MaxValue && d == Math.Floor(d)) return (long)d;
        }
        throw new SafetensorsFormatException(indexPath, $"metadata.total_size {ts.GetRawText()} is not a non-negative integer", "metadata.total_size");
    }

    private static bool IsPlainFileName(string s) =>
        s.Length > 0 && s != "." && s != ".." && s.IndexOfAny(['/', '\\', '\0']) < 0 && !System.IO.Path.IsPathRooted(s);

    private static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Null => "null",
        _ => e.ValueKind.ToString(),
    };
}
