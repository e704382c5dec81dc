using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;

namespace StepAudio2.Lab.Tests.Safetensors;

public sealed class ShardedCheckpointTests
{
    private const string Shard1 = "model-00001-of-00002.safetensors";
    private const string Shard2 = "model-00002-of-00002.safetensors";

    /// <summary>A scratch copy of the Python-made sharded fixture, for tests that delete or edit files.</summary>
    private static TempDir CopyOfShardedFixture()
    {
        var tmp = TestPaths.Temp();
        foreach (string f in Directory.GetFiles(ExpectedFixture.ShardedFolder))
            File.Copy(f, tmp.File(Path.GetFileName(f)));
        return tmp;
    }

    private static void EditIndex(TempDir dir, Action<JsonObject> edit)
    {
        string index = dir.File(ShardedCheckpoint.IndexFileName);
        var root = JsonNode.Parse(File.ReadAllText(index))!.AsObject();
        edit(root);
        File.WriteAllText(index, root.ToJsonString());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadsThePythonShardedFixtureThroughTheIndex(bool openIndexFile)
    {
        var (totalSize, expected) = ExpectedFixture.Sharded();
        string folder = ExpectedFixture.ShardedFolder;
        using var ckpt = ShardedCheckpoint.Open(openIndexFile ? Path.Combine(folder, ShardedCheckpoint.IndexFileName) : folder);

        Assert.Equal(Path.Combine(folder, ShardedCheckpoint.IndexFileName), ckpt.IndexPath);
        Assert.Equal([Shard1, Shard2], ckpt.ShardNames);
        Assert.Empty(ckpt.MissingShards);
        Assert.Equal(totalSize, ckpt.DeclaredTotalSize);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), ckpt.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.All(ckpt.Tensors, t => Assert.True(t.IsResolved));
        // Shard by shard, data-offset order inside each.
        Assert.Equal(expected.Values.OrderBy(e => e.Shard, StringComparer.Ordinal).ThenBy(e => e.Begin).Select(e => e.Name), ckpt.Tensors.Select(t => t.Name));

        foreach (var (name, want) in expected)
        {
            Assert.True(ckpt.Contains(name));
            var info = ckpt.Tensors.Single(t => t.Name == name);
            Assert.Equal(Path.GetFullPath(Path.Combine(folder, want.Shard!)), info.File);
            Assert.Equal(want.End - want.Begin, info.ByteLength);
            var t = ckpt.Get(name);
            Assert.Equal(want.DType, t.DType);
            Assert.Equal(want.Shape, t.Shape);
            Assert.True(t.Storage.IsMapped);
            Assert.EndsWith(want.Shard!, t.Storage.Origin);
            Assert.Equal(want.Bytes, t.ContiguousBytes().ToArray());
        }

        var report = ckpt.Verify();
        Assert.True(report.IsComplete, report.ToString());
        Assert.Equal(totalSize, report.ComputedTotalSize);
        Assert.True(report.TotalSizeMatches);
        report.ThrowIfIncomplete();
    }

    [Fact]
    public void FolderWithOnlyModelSafetensorsIsASingleShardCheckpoint()
    {
        var (_, order, expected, _) = ExpectedFixture.AllDtypes();
        using var tmp = TestPaths.Temp();
        File.Copy(ExpectedFixture.AllDtypesFile, tmp.File(ShardedCheckpoint.SingleFileName));
        using var ckpt = ShardedCheckpoint.Open(tmp.Path);
        Assert.Null(ckpt.IndexPath);
        Assert.Null(ckpt.DeclaredTotalSize);
        Assert.Equal([ShardedCheckpoint.SingleFileName], ckpt.ShardNames);
        Assert.Equal(order, ckpt.Tensors.Select(t => t.Name));
        foreach (var (name, want) in expected)
            Assert.Equal(want.Bytes, ckpt.Get(name).ContiguousBytes().ToArray());
        var report = ckpt.Verify();
        Assert.True(report.IsComplete, report.ToString());
        Assert.Null(report.TotalSizeMatches);
        var ex = Assert.Throws<WeightException>(() => ckpt.Get("no.such.weight"));
        Assert.Contains(ShardedCheckpoint.SingleFileName, ex.Message);
    }

    [Fact]
    public void RealStepAudio2IndexListsAllTensorsAndReportsTheFourMissingShards()
    {
        string folder = TestPaths.SharedModel;
        string indexPath = Path.Combine(folder, ShardedCheckpoint.IndexFileName);
        Assert.True(File.Exists(indexPath), $"shared checkpoint index missing at {indexPath}");
        // Independent reading of the index for the expected values.
        using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        var weightMap = doc.RootElement.GetProperty("weight_map").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        long declared = doc.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64();
        string[] shards = [.. Enumerable.Range(1, 4).Select(i => $"model-0000{i}-of-00004.safetensors")];

        using var ckpt = ShardedCheckpoint.Open(folder);
        Assert.Equal(832, weightMap.Count);
        Assert.Equal(832, ckpt.Tensors.Count);
        Assert.Equal(weightMap.Keys.Order(StringComparer.Ordinal), ckpt.Tensors.Select(t => t.Name).Order(StringComparer.Ordinal));
        Assert.All(ckpt.Tensors, t =>
        {
            Assert.False(t.IsResolved);
            Assert.Equal(Path.Combine(folder, weightMap[t.Name]), t.File);
        });
        Assert.All(ckpt.Entries, e => Assert.Null(e.Info));
        Assert.Equal(16_630_358_528L, declared);
        Assert.Equal(declared, ckpt.DeclaredTotalSize);
        Assert.Equal(shards, ckpt.ShardNames);
        Assert.Equal(shards, ckpt.MissingShards);
        Assert.True(ckpt.Contains("model.embed_tokens.weight"));

        var report = ckpt.Verify();
        Assert.False(report.IsComplete);
        Assert.Equal(shards, report.MissingShards.Select(m => m.Shard));
        foreach (var m in report.MissingShards)
            Assert.Equal(weightMap.Where(kv => kv.Value == m.Shard).Select(kv => kv.Key).Order(StringComparer.Ordinal), m.Tensors.Order(StringComparer.Ordinal));
        Assert.Equal(832, report.MissingShards.Sum(m => m.Tensors.Count));
        Assert.Empty(report.NotInShard);
        Assert.Empty(report.NotInIndex);
        Assert.Null(report.ComputedTotalSize);
        Assert.Null(report.TotalSizeMatches);
        var thrown = Assert.Throws<MissingShardException>(report.ThrowIfIncomplete);
        Assert.Equal(shards[0], thrown.Shard);

        const string name = "model.embed_tokens.weight";
        var ex = Assert.Throws<MissingShardException>(() => ckpt.Get(name));
        Assert.IsAssignableFrom<LabDataException>(ex);
        Assert.Equal(weightMap[name], ex.Shard);
        Assert.Equal(name, ex.TensorName);
        Assert.Equal(name, ex.Key);
        Assert.Equal(Path.Combine(folder, weightMap[name]), ex.FilePath);
        Assert.Contains(weightMap[name], ex.Message);
        Assert.Contains(name, ex.Message);
        Assert.Contains(indexPath, ex.Message);
    }

    [Fact]
    public void MissingShardFailsOnlyItsOwnTensors()
    {
        var (_, expected) = ExpectedFixture.Sharded();
        using var tmp = CopyOfShardedFixture();
        File.Delete(tmp.File(Shard2));
        using var ckpt = ShardedCheckpoint.Open(tmp.Path); // must not throw

        Assert.Equal([Shard2], ckpt.MissingShards);
        Assert.Equal(expected.Count, ckpt.Tensors.Count);
        var inShard2 = expected.Values.Where(e => e.Shard == Shard2).Select(e => e.Name).ToHashSet();
        foreach (var info in ckpt.Tensors)
            Assert.Equal(!inShard2.Contains(info.Name), info.IsResolved);
        foreach (var e in expected.Values.Where(e => e.Shard == Shard1))
            Assert.Equal(e.Bytes, ckpt.Get(e.Name).ContiguousBytes().ToArray());

        var ex = Assert.Throws<MissingShardException>(() => ckpt.Get("lm_head.weight"));
        Assert.Equal(Shard2, ex.Shard);
        Assert.Equal("lm_head.weight", ex.Key);
        Assert.Contains(Shard2, ex.Message);

        var report = ckpt.Verify();
        var missing = Assert.Single(report.MissingShards);
        Assert.Equal(Shard2, missing.Shard);
        Assert.Equal(inShard2.Order(StringComparer.Ordinal), missing.Tensors.Order(StringComparer.Ordinal));
        Assert.Null(report.ComputedTotalSize);
    }

    [Fact]
    public void VerifyFindsTensorsMissingOnEitherSideAndTotalSizeMismatch()
    {
        var (totalSize, _) = ExpectedFixture.Sharded();
        using var tmp = CopyOfShardedFixture();
        EditIndex(tmp, root =>
        {
            var map = root["weight_map"]!.AsObject();
            map["model.layers.0.mlp.up_proj.weight"] = Shard1; // indexed, not in the shard
            map.Remove("model.norm.weight");                   // in shard 2, not indexed
            root["metadata"]!["total_size"] = totalSize + 2;
        });
        using var ckpt = ShardedCheckpoint.Open(tmp.Path);
        var report = ckpt.Verify();
        Assert.False(report.IsComplete);
        Assert.Empty(report.MissingShards);
        var notInShard = Assert.Single(report.NotInShard);
        Assert.Equal(("model.layers.0.mlp.up_proj.weight", Shard1), (notInShard.Name, notInShard.Shard));
        var notInIndex = Assert.Single(report.NotInIndex);
        Assert.Equal("model.norm.weight", notInIndex.Name);
        Assert.EndsWith(Shard2, notInIndex.File);
        // Sum of what the index resolves: everything except norm (removed) and up_proj (absent).
        Assert.Equal(totalSize + 2, report.DeclaredTotalSize);
        Assert.Equal(totalSize - 4 * 2, report.ComputedTotalSize);
        Assert.False(report.TotalSizeMatches);

        var ex = Assert.Throws<SafetensorsFormatException>(() => ckpt.Get("model.layers.0.mlp.up_proj.weight"));
        Assert.Contains(Shard1, ex.FilePath);
        Assert.Equal("model.layers.0.mlp.up_proj.weight", ex.Key);
        Assert.Contains("header lacks it", ex.Fault);
        Assert.False(ckpt.Contains("model.norm.weight"));
        Assert.Throws<WeightException>(() => ckpt.Get("model.norm.weight"));
        Assert.Throws<SafetensorsFormatException>(report.ThrowIfIncomplete);
    }

    [Fact]
    public void TotalSizeMismatchAloneIsReported()
    {
        var (totalSize, _) = ExpectedFixture.Sharded();
        using var tmp = CopyOfShardedFixture();
        EditIndex(tmp, root => root["metadata"]!["total_size"] = totalSize - 1);
        using var ckpt = ShardedCheckpoint.Open(tmp.Path);
        var report = ckpt.Verify();
        Assert.False(report.IsComplete);
        Assert.Equal(totalSize, report.ComputedTotalSize);
        var ex = Assert.Throws<SafetensorsFormatException>(report.ThrowIfIncomplete);
        Assert.Equal("metadata.total_size", ex.Key);
        Assert.Contains($"{totalSize - 1} != {totalSize}", ex.Fault);
    }

    public static TheoryData<string, string, string?> BadIndexes => new()
    {
        { "{not json", "index is not valid JSON", null },
        { "", "index is not valid JSON", null },
        { "[1,2]", "index is a JSON array, expected an object", null },
        { "{\"metadata\":{}}", "index lacks 'weight_map'", "weight_map" },
        { "{\"weight_map\":[]}", "'weight_map' is a JSON array", "weight_map" },
        { "{\"weight_map\":{\"a\":5}}", "weight_map value is a JSON number, expected a shard file name", "a" },
        { "{\"weight_map\":{\"a\":\"../outside.safetensors\"}}", "shard '../outside.safetensors' is not a plain file name", "a" },
        { "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "is not a plain file name", "a" },
        { "{\"weight_map\":{\"a\":\"\"}}", "is not a plain file name", "a" },
        { "{\"weight_map\":{\"a\":\"s.safetensors\",\"a\":\"t.safetensors\"}}", "duplicate tensor in weight_map", "a" },
        { "{\"weight_map\":{},\"weight_map\":{}}", "duplicate key in index", "weight_map" },
        { "{\"metadata\":5,\"weight_map\":{}}", "'metadata' is a JSON number, expected an object", "metadata" },
        { "{\"metadata\":{\"total_size\":\"big\"},\"weight_map\":{}}", "metadata.total_size \"big\" is not a non-negative integer", "metadata.total_size" },
        { "{\"metadata\":{\"total_size\":-5},\"weight_map\":{}}", "metadata.total_size -5 is not a non-negative integer", "metadata.total_size" },
        { "{\"metadata\":{\"total_size\":1.5},\"weight_map\":{}}", "metadata.total_size 1.5 is not a non-negative integer", "metadata.total_size" },
    };

    [Theory]
    [MemberData(nameof(BadIndexes))]
    public void BadIndexThrowsFormatExceptionNamingTheIndex(string json, string fault, string? key)
    {
        using var tmp = TestPaths.Temp();
        string index = tmp.File(ShardedCheckpoint.IndexFileName);
        File.WriteAllText(index, json);
        var ex = Assert.Throws<SafetensorsFormatException>(() => ShardedCheckpoint.Open(tmp.Path));
        Assert.Equal(index, ex.FilePath);
        Assert.StartsWith(index, ex.Message);
        Assert.Contains(fault, ex.Fault);
        Assert.Equal(key, ex.Key);
    }

    [Fact]
    public void IndexWithInvalidUtf8IsRefused()
    {
        using var tmp = TestPaths.Temp();
        string index = tmp.File(ShardedCheckpoint.IndexFileName);
        File.WriteAllBytes(index, [.. "{\"weight_map\":{\"a"u8, 0xFF, .. "\":\"s.safetensors\"}}"u8]);
        var ex = Assert.Throws<SafetensorsFormatException>(() => ShardedCheckpoint.Open(tmp.Path));
        Assert.Equal(index, ex.FilePath);
        Assert.Contains("not valid UTF-8", ex.Fault);
    }

    [Fact]
    public void FloatTotalSizeAndNoMetadataAreAccepted()
    {
        using var tmp = CopyOfShardedFixture();
        var (totalSize, _) = ExpectedFixture.Sharded();
        File.WriteAllText(tmp.File(ShardedCheckpoint.IndexFileName),
            File.ReadAllText(tmp.File(ShardedCheckpoint.IndexFileName)).Replace($"\"total_size\": {totalSize}", $"\"total_size\": {totalSize}.0"));
        using (var ckpt = ShardedCheckpoint.Open(tmp.Path))
            Assert.Equal(totalSize, ckpt.DeclaredTotalSize);
        EditIndex(tmp, root => root.Remove("metadata"));
        using (var ckpt = ShardedCheckpoint.Open(tmp.Path))
        {
            Assert.Null(ckpt.DeclaredTotalSize);
            Assert.True(ckpt.Verify().IsComplete);
        }
    }

    [Fact]
    public void CorruptPresentShardIsReportedByName()
    {
        using var tmp = CopyOfShardedFixture();
        var bytes = File.ReadAllBytes(tmp.File(Shard2));
        File.WriteAllBytes(tmp.File(Shard2), bytes[..(bytes.Length - 3)]); // truncated data section
        var ex = Assert.Throws<SafetensorsFormatException>(() => ShardedCheckpoint.Open(tmp.Path));
        Assert.Equal(Path.Combine(tmp.Path, Shard2), ex.FilePath);
        Assert.Contains("outside the", ex.Fault);
    }

    [Fact]
    public void FolderWithoutCheckpointIsRefused()
    {
        using var tmp = TestPaths.Temp();
        var ex = Assert.Throws<SafetensorsFormatException>(() => ShardedCheckpoint.Open(tmp.Path));
        Assert.Equal(tmp.Path, ex.FilePath);
        Assert.Contains("neither model.safetensors.index.json nor model.safetensors", ex.Fault);
    }
}
