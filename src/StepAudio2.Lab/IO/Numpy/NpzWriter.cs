using System.IO.Compression;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>Options for <see cref="NpzWriter"/>.</summary>
public sealed record NpzWriteOptions
{
    public static NpzWriteOptions Default { get; } = new();

    /// <summary>Deflate members (as <c>np.savez_compressed</c>) instead of storing them (as <c>np.savez</c>).</summary>
    public bool Compressed { get; init; }

    /// <summary>Deflate effort when <see cref="Compressed"/> is set.</summary>
    public CompressionLevel Level { get; init; } = CompressionLevel.Optimal;

    /// <summary>Options for each member's .npy (bf16 handling).</summary>
    public NpyWriteOptions Npy { get; init; } = NpyWriteOptions.Default;
}

/// <summary>Writes an ordered list of named tensors as a NumPy <c>.npz</c> (members <c>&lt;name&gt;.npy</c>, fixed 1980-01-01 timestamps, so output is reproducible).</summary>
public static class NpzWriter
{
    private static readonly DateTimeOffset DosEpoch = new(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>Writes the archive to <paramref name="path"/> (via a temporary sibling, so a failed write leaves no half file).</summary>
    public static void Write(string path, IEnumerable<(string Name, Tensor Tensor)> tensors, NpzWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        var list = Validate(tensors, options ?? NpzWriteOptions.Default);
        string full = System.IO.Path.GetFullPath(path);
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16))
                WriteValidated(stream, list, options ?? NpzWriteOptions.Default);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Writes the archive to <paramref name="stream"/> (left open).</summary>
    public static void Write(Stream stream, IEnumerable<(string Name, Tensor Tensor)> tensors, NpzWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var list = Validate(tensors, options ?? NpzWriteOptions.Default);
        WriteValidated(stream, list, options ?? NpzWriteOptions.Default);
    }

    // Everything that can be refused is refused before the first byte is written.
    private static List<(string Name, Tensor Tensor)> Validate(IEnumerable<(string Name, Tensor Tensor)> tensors, NpzWriteOptions options)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in list)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("array names must be non-empty", nameof(tensors));
            if (name.EndsWith('/')) throw new ArgumentException($"array name '{name}' ends with '/', which a zip reader takes for a folder", nameof(tensors));
            if (!seen.Add(name)) throw new ArgumentException($"duplicate array name '{name}'", nameof(tensors));
            ArgumentNullException.ThrowIfNull(tensor, $"tensors['{name}']");
            if (tensor.DType == DType.BF16 && !options.Npy.BFloat16AsFloat32)
                throw new ArgumentException(
                    $"cannot write bf16 tensor '{name}' {Tensor.ShapeString(tensor.Shape)} to .npz: numpy has no bfloat16 dtype. " +
                    "Convert it (tensor.To(DType.F32)) or pass Npy = new NpyWriteOptions { BFloat16AsFloat32 = true }.", nameof(tensors));
        }
        return list;
    }

    private static void WriteValidated(Stream stream, List<(string Name, Tensor Tensor)> list, NpzWriteOptions options)
    {
        using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
        var level = options.Compressed ? options.Level : CompressionLevel.NoCompression;
        foreach (var (name, tensor) in list)
        {
            var entry = zip.CreateEntry(name + ".npy", level);
            entry.LastWriteTime = DosEpoch;
            using var s = entry.Open();
            NpyWriter.Write(s, tensor, options.Npy);
        }
    }
}
