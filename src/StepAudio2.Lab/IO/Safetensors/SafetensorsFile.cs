using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Safetensors;

/// <summary>
/// A safetensors file mapped read-only; <see cref="Get"/> returns zero-copy views into the mapping (bf16 stays bf16).
/// Tensors obtained from it are valid until this object is disposed.
/// </summary>
public sealed class SafetensorsFile : ITensorSource
{
    private readonly MappedFileStorage _storage;
    private readonly Dictionary<string, SafetensorsEntry> _byName;

    private SafetensorsFile(string path, MappedFileStorage storage, SafetensorsHeader header)
    {
        Path = path;
        _storage = storage;
        Header = header;
        _byName = new Dictionary<string, SafetensorsEntry>(header.Entries.Count, StringComparer.Ordinal);
        foreach (var e in header.Entries) _byName.Add(e.Name, e);
        Tensors = header.Entries.Select(e => new TensorInfo(e.Name, e.DType, e.Shape, e.ByteLength, storage.Path)).ToArray();
    }

    /// <summary>Maps <paramref name="path"/> and validates its header; throws <see cref="SafetensorsFormatException"/> on any fault.</summary>
    public static SafetensorsFile Open(string path)
    {
        var storage = new MappedFileStorage(path);
        try
        {
            long length = storage.ByteLength;
            long n = SafetensorsHeader.ReadHeaderLength(path, length >= 8 ? storage.Span(0, 8) : default, length);
            var header = SafetensorsHeader.Parse(path, storage.Span(8, (int)n), length - 8 - n);
            return new SafetensorsFile(path, storage, header);
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    /// <summary>The path as given to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The parsed header (length, metadata, entries).</summary>
    public SafetensorsHeader Header { get; }

    /// <summary>The <c>__metadata__</c> string map (empty when the file has none).</summary>
    public IReadOnlyDictionary<string, string> Metadata => Header.Metadata;

    /// <summary>Header entries in data-offset order.</summary>
    public IReadOnlyList<SafetensorsEntry> Entries => Header.Entries;

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength => _storage.ByteLength;

    public IReadOnlyList<TensorInfo> Tensors { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The header entry of <paramref name="name"/>; throws <see cref="WeightException"/> when absent.</summary>
    public SafetensorsEntry Entry(string name) =>
        _byName.TryGetValue(name, out var e) ? e : throw new WeightException(Path, "no tensor of this name in the file", name);

    /// <summary>
    /// A view of tensor <paramref name="name"/> over the mapped file. Data whose file offset is not a multiple of
    /// the element size (possible only in files from non-canonical writers) cannot be addressed as an element
    /// offset of the mapping and is copied into managed memory instead.
    /// </summary>
    public Tensor Get(string name)
    {
        var e = Entry(name);
        int size = e.DType.SizeOf();
        long start = Header.DataStart + e.Begin;
        var shape = (int[])e.Shape.Clone();
        if (e.ByteLength == 0) return new Tensor(_storage, e.DType, shape);
        if (start % size == 0) return new Tensor(_storage, e.DType, shape, null, start / size);
        if (e.ByteLength > Array.MaxLength)
            throw new SafetensorsFormatException(Path, $"data at byte {start} is not aligned to {size}-byte {e.DType.SafetensorsName()} elements and too large to copy", name, start);
        return new Tensor(ManagedStorage.FromBytes(_storage.Span(start, (int)e.ByteLength)), e.DType, shape);
    }

    /// <summary>The raw bytes of tensor <paramref name="name"/> in the mapped file (zero-copy).</summary>
    public ReadOnlySpan<byte> GetBytes(string name)
    {
        var e = Entry(name);
        if (e.ByteLength > int.MaxValue)
            throw new InvalidOperationException($"{name} is {e.ByteLength} bytes, more than one span can hold; use Get()");
        return _storage.Span(Header.DataStart + e.Begin, (int)e.ByteLength);
    }

    /// <summary>Unmaps the file; tensors returned by <see cref="Get"/> become unusable.</summary>
    public void Dispose() => _storage.Dispose();

    public override string ToString() => $"SafetensorsFile({Path}, {Entries.Count} tensors)";
}
