namespace StepAudio2.Lab.IO;

/// <summary>
/// Base of every "this input is wrong" error: a corrupt, truncated, hostile or unsupported file, or a missing/mis-shaped
/// key. Always names the file and, where known, the key (tensor name, config field, chunk id) and byte offset at fault.
/// </summary>
public class LabDataException : Exception
{
    public LabDataException(string file, string fault, string? key = null, long? offset = null, Exception? inner = null)
        : base(Compose(file, fault, key, offset), inner)
    {
        FilePath = file;
        Fault = fault;
        Key = key;
        ByteOffset = offset;
    }

    /// <summary>The file at fault (as given by the caller).</summary>
    public string FilePath { get; }
    /// <summary>What is wrong, without the location.</summary>
    public string Fault { get; }
    /// <summary>Tensor name, config field, archive member or chunk id at fault, when there is one.</summary>
    public string? Key { get; }
    /// <summary>Byte offset in the file at fault, when there is one.</summary>
    public long? ByteOffset { get; }

    private static string Compose(string file, string fault, string? key, long? offset)
    {
        var where = file;
        if (key is not null) where += $" [{Printable.Escape(key)}]"; // keys come from files: no line breaks or escapes
        if (offset is not null) where += $" @ byte {offset}";
        return $"{where}: {fault}";
    }
}

/// <summary>A safetensors file or a sharded-checkpoint index is malformed or inconsistent.</summary>
public sealed class SafetensorsFormatException(string file, string fault, string? key = null, long? offset = null, Exception? inner = null)
    : LabDataException(file, fault, key, offset, inner);

/// <summary>A NumPy .npy/.npz file is malformed or uses an unsupported feature.</summary>
public sealed class NpyFormatException(string file, string fault, string? key = null, long? offset = null, Exception? inner = null)
    : LabDataException(file, fault, key, offset, inner);

/// <summary>A PyTorch zip checkpoint is malformed, or its pickle asks for something outside the allow-list.</summary>
public class TorchCheckpointException(string file, string fault, string? key = null, long? offset = null, Exception? inner = null)
    : LabDataException(file, fault, key, offset, inner);

/// <summary>A pickle referenced a global that is not on the allow-list; nothing was constructed.</summary>
public sealed class UnsafePickleException(string file, string global)
    : TorchCheckpointException(file, $"pickle references global '{global}', which is not on the allow-list; refusing to load", global)
{
    public string Global { get; } = global;
}

/// <summary>An audio file is malformed or uses an unsupported encoding.</summary>
public sealed class AudioFormatException(string file, string fault, string? key = null, long? offset = null, Exception? inner = null)
    : LabDataException(file, fault, key, offset, inner);

/// <summary>A configuration file (config.json, flow.yaml) lacks a field or has an invalid value.</summary>
public sealed class ConfigException(string file, string fault, string? key = null, Exception? inner = null, int? line = null)
    : LabDataException(file, line is null ? fault : $"line {line}: {fault}", key, null, inner)
{
    /// <summary>1-based line of a text config (flow.yaml) at fault, when there is one.</summary>
    public int? Line { get; } = line;
}

/// <summary>A checkpoint lacks a required weight, has an unexpected one, or one of the wrong shape/dtype.</summary>
public sealed class WeightException(string file, string fault, string key)
    : LabDataException(file, fault, key);
