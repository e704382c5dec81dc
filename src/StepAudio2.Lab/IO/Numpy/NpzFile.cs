using System.IO.Compression;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>
/// A NumPy <c>.npz</c> archive (as written by <c>np.savez</c> / <c>np.savez_compressed</c>) as an <see cref="ITensorSource"/>.
/// Keys are member names without ".npy"; members not ending in ".npy" are skipped. Opening reads only each member's
/// header; <see cref="Get"/> decompresses one member into managed memory.
/// </summary>
/// <remarks>
/// Zip sizes are untrusted: a member's declared uncompressed size must fit its compressed size (deflate cannot expand
/// more than ~1032:1) and must equal header plus data exactly; reads stop at that size whatever the stream holds, and
/// the member's CRC-32 is verified (ZipArchive checks neither).
/// </remarks>
public sealed class NpzFile : ITensorSource
{
    // Deflate's best case emits 258 bytes per ~2 bits; anything claiming more is a lie (or a zip bomb).
    private const long MaxDeflateRatio = 1032;

    private sealed record Member(ZipArchiveEntry Entry, NpyHeader Header);

    private readonly ZipArchive _zip;
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly object _lock = new();
    private bool _disposed;

    private NpzFile(string path, Stream stream, bool leaveOpen)
    {
        Path = path;
        long archiveLength = stream.CanSeek ? stream.Length : long.MaxValue;
        try
        {
            _zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen);
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException)
        {
            if (!leaveOpen) stream.Dispose();
            throw new NpyFormatException(path, $"not a valid .npz (zip) archive: {e.Message}", null, null, e);
        }
        try
        {
            var tensors = new List<TensorInfo>();
            IReadOnlyCollection<ZipArchiveEntry> entries;
            // ZipArchive reads the central directory lazily, on first access to Entries: its faults surface here.
            try { entries = _zip.Entries; }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or ArgumentException)
            {
                throw new NpyFormatException(path, $"not a valid .npz (zip) archive: {e.Message}", null, null, e);
            }
            foreach (var entry in entries)
            {
                if (!entry.FullName.EndsWith(".npy", StringComparison.Ordinal)) continue;
                string key = entry.FullName[..^4];
                if (_members.ContainsKey(key)) throw new NpyFormatException(path, $"duplicate archive member '{entry.FullName}'", key);
                if (entry.IsEncrypted) throw new NpyFormatException(path, "encrypted archive members are not supported", key);
                if (entry.CompressedLength < 0 || entry.CompressedLength > archiveLength || entry.Length < 0)
                    throw new NpyFormatException(path, $"member claims {entry.CompressedLength} compressed bytes (uncompressed {entry.Length}), impossible in an archive of {archiveLength} bytes", key);
                if (entry.Length > (Int128)entry.CompressedLength * MaxDeflateRatio + 1024)
                    throw new NpyFormatException(path, $"member declares {entry.Length} uncompressed bytes from {entry.CompressedLength} compressed bytes, more than deflate can produce", key);
                var header = Guard(key, () =>
                {
                    using var s = entry.Open();
                    return NpyReader.ReadHeader(s, path, key, entry.Length);
                });
                _members.Add(key, new Member(entry, header));
                tensors.Add(new TensorInfo(key, header.DType, (int[])header.Shape.Clone(), header.DataByteLength, path));
            }
            Tensors = tensors;
        }
        catch
        {
            _zip.Dispose();
            throw;
        }
    }

    /// <summary>Opens the archive at <paramref name="path"/> read-only and reads every member's header.</summary>
    public static NpzFile Open(string path)
    {
        var stream = NpyReader.OpenRead(path);
        return new NpzFile(path, stream, leaveOpen: false);
    }

    /// <summary>Reads an archive from <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static NpzFile Open(Stream stream, string name, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return new NpzFile(name, stream, leaveOpen);
    }

    public string Path { get; }

    public IReadOnlyList<TensorInfo> Tensors { get; }

    public bool Contains(string name) => _members.ContainsKey(name);

    /// <summary>The parsed .npy header of member <paramref name="name"/>.</summary>
    public NpyHeader Header(string name) => Find(name).Header;

    public Tensor Get(string name)
    {
        var member = Find(name);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return Guard(name, () =>
            {
                using var s = new Crc32ReadStream(member.Entry.Open());
                long length = member.Entry.Length;
                var header = NpyReader.ReadHeader(s, Path, name, length);
                var tensor = NpyReader.ReadData(s, header, Path, name, length);
                if (s.Crc != member.Entry.Crc32)
                    throw new NpyFormatException(Path, $"CRC-32 mismatch: the archive records {member.Entry.Crc32:X8}, the member's {length} bytes give {s.Crc:X8} (corrupt, or holding more than its declared size)", name);
                return tensor;
            });
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _zip.Dispose();
        }
    }

    private Member Find(string name) =>
        _members.TryGetValue(name, out var m) ? m
            : throw new LabDataException(Path, $"no array named '{name}' in archive (has: {string.Join(", ", _members.Keys.Take(20))}{(_members.Count > 20 ? ", …" : "")})", name);

    /// <summary>Turns the zip layer's own errors (bad local header, corrupt deflate data) into format errors naming the member.</summary>
    private T Guard<T>(string key, Func<T> read)
    {
        try { return read(); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException)
        {
            throw new NpyFormatException(Path, $"corrupt or unsupported archive member: {e.Message}", key, null, e);
        }
    }
}
