namespace StepAudio2.Lab.IO.Safetensors;

/// <summary>A sharded checkpoint's index names a shard file that is not on disk; names the shard and a tensor that needs it.</summary>
public sealed class MissingShardException(string shardPath, string shard, string tensorName, string indexPath)
    : LabDataException(shardPath, $"shard file '{shard}' named by {indexPath} is missing; it should hold tensor '{tensorName}'", tensorName)
{
    /// <summary>The shard's file name as written in the index.</summary>
    public string Shard { get; } = shard;

    /// <summary>A tensor that the index places in the missing shard.</summary>
    public string TensorName { get; } = tensorName;

    /// <summary>The index file that names the shard.</summary>
    public string IndexPath { get; } = indexPath;
}
