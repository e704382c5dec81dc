using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>One .npy file as an <see cref="ITensorSource"/>: a single tensor named after the file (without extension).</summary>
/// <remarks>
/// With mapping on (the default), little-endian data is served zero-copy from one read-only mapping owned by this
/// object: tensors from <see cref="Get"/> are valid until <see cref="Dispose"/>. Big-endian data is always copied.
/// </remarks>
public sealed class NpyFile : ITensorSource
{
    private readonly bool _map;
    private readonly object _lock = new();
    private MappedFileStorage? _mapped;
    private bool _disposed;

    private NpyFile(string path, NpyHeader header, bool map)
    {
        Path = path;
        Header = header;
        _map = map;
        Name = System.IO.Path.GetFileNameWithoutExtension(path);
        Tensors = [new TensorInfo(Name, header.DType, (int[])header.Shape.Clone(), header.DataByteLength, path)];
    }

    /// <summary>Reads and validates the header (not the data) of the .npy at <paramref name="path"/>.</summary>
    public static NpyFile Open(string path, bool map = true) => new(path, NpyReader.ReadHeader(path), map);

    public string Path { get; }

    /// <summary>The one tensor's name: the file name without its extension.</summary>
    public string Name { get; }

    public NpyHeader Header { get; }

    public IReadOnlyList<TensorInfo> Tensors { get; }

    public bool Contains(string name) => name == Name;

    public Tensor Get(string name)
    {
        if (name != Name) throw new LabDataException(Path, $"no array named '{name}' (this .npy holds only '{Name}')", name);
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (!_map || !NpyReader.CanMap(Header)) return NpyReader.Read(Path);
            if (_mapped is null)
            {
                // Re-read the header: the file might have been replaced since Open, and the view must match the mapped bytes.
                var header = NpyReader.ReadHeader(Path);
                bool same = header.DType == Header.DType && header.BigEndian == Header.BigEndian && header.FortranOrder == Header.FortranOrder
                    && header.DataOffset == Header.DataOffset && header.Shape.AsSpan().SequenceEqual(Header.Shape);
                if (!same) throw new NpyFormatException(Path, "file changed since it was opened (header differs)");
                var view = NpyReader.ReadMapped(Path, Header);
                _mapped = (MappedFileStorage)view.Storage;
                return view;
            }
            return NpyReader.MakeTensor(_mapped, Header, Header.DataOffset / Header.DType.SizeOf());
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _mapped?.Dispose();
            _mapped = null;
        }
    }
}
