using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;

namespace StepAudio2.Lab.Tests;

/// <summary>Opening reference files in tests.</summary>
internal static class Fixtures
{
    public static ITensorSource OpenSafetensors(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        var file = SafetensorsFile.Open(path);
        metadata = file.Metadata;
        return file;
    }

    public static ITensorSource OpenCheckpoint(string folder) => ShardedCheckpoint.Open(folder);
}
