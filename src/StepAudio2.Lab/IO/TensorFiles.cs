using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.IO.Torch;

namespace StepAudio2.Lab.IO;

/// <summary>Opens any tensor container the workbench reads, chosen by content (magic bytes), not by extension alone.</summary>
public static class TensorFiles
{
    /// <summary>The format of a path: "checkpoint" (folder or index), "safetensors", "npz", "npy", "torch".</summary>
    public static string DetectFormat(string path)
    {
        if (Directory.Exists(path) || path.EndsWith(".index.json", StringComparison.Ordinal)) return "checkpoint";
        if (!File.Exists(path)) throw new FileNotFoundException($"no such file or folder: {path}", path);
        Span<byte> head = stackalloc byte[8];
        int n;
        using (var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read))
        {
            // Sniffing a pipe would consume its first bytes, and the readers map the file: refuse rather than misread.
            if (!f.CanSeek)
                throw new LabDataException(path, "is a pipe or other non-seekable stream; tensor files are memory-mapped, so save it to a regular file first");
            n = f.ReadAtLeast(head, 8, throwOnEndOfStream: false);
        }
        head = head[..n];
        // Not "\x93NUMPY"u8: that literal UTF-8-encodes U+0093 as two bytes (C2 93) and never matches a .npy file.
        if (head.StartsWith((ReadOnlySpan<byte>)[0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'])) return "npy";
        if (head.StartsWith("PK\x03\x04"u8) || head.StartsWith("PK\x05\x06"u8))
            return path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase) ? "npz" : IsNpz(path) ? "npz" : "torch";
        if (n == 8 && head[..8].ToArray() is var h && BitConverter.ToUInt64(h) is > 1 and < 100_000_000) return "safetensors";
        // Recognisable but broken: let the format's reader say what is wrong (header length, legacy pickle) with offsets.
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return "safetensors";
        if (n > 0 && head[0] == 0x80) return "torch"; // pickle PROTO: a pre-1.6 torch.save raw pickle stream
        throw new LabDataException(path, "not a recognised tensor file (expected safetensors, .npy, .npz, torch zip checkpoint or a checkpoint folder)");
    }

    /// <summary>Opens <paramref name="path"/> as an <see cref="ITensorSource"/>.</summary>
    public static ITensorSource Open(string path) => DetectFormat(path) switch
    {
        "checkpoint" => ShardedCheckpoint.Open(path),
        "safetensors" => SafetensorsFile.Open(path),
        "torch" => TorchCheckpoint.Open(path),
        "npz" => NpzFile.Open(path),
        _ => NpyFile.Open(path),
    };

    private static bool IsNpz(string path)
    {
        try
        {
            using var zip = System.IO.Compression.ZipFile.OpenRead(path);
            return zip.Entries.Count > 0 && zip.Entries.All(e => e.FullName.EndsWith(".npy", StringComparison.Ordinal));
        }
        catch (InvalidDataException)
        {
            return false;
        }
    }
}
