using System.Buffers.Binary;
using System.Text;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>
/// Reads NumPy <c>.npy</c> arrays (format versions 1.0, 2.0, 3.0) into tensors.
/// Big-endian data is byte-swapped into managed memory. Fortran-order data is returned as a strided view with
/// column-major strides over the bytes as stored (no reordering copy; <see cref="Tensor.Contiguous"/> gives row-major).
/// Every size in the header is checked against the bytes actually present before anything is allocated.
/// </summary>
public static class NpyReader
{
    /// <summary>The 6 magic bytes every .npy starts with.</summary>
    public static ReadOnlySpan<byte> Magic => [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Upper bound on the header dict; numpy itself refuses more than 10 000 characters by default.</summary>
    public const int MaxHeaderBytes = 1 << 20;

    /// <summary>Reads only the header of the .npy file at <paramref name="path"/>.</summary>
    public static NpyHeader ReadHeader(string path)
    {
        using var stream = OpenRead(path);
        return ReadHeader(stream, path, null, stream.Length);
    }

    /// <summary>Reads the header from the current position of <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static NpyHeader ReadHeader(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return ReadHeader(stream, name, null, RemainingLength(stream));
    }

    /// <summary>
    /// Reads the array in the .npy file at <paramref name="path"/>. With <paramref name="map"/>, little-endian (or one-byte)
    /// data whose offset is element-aligned is returned zero-copy over a <see cref="MappedFileStorage"/> that the caller
    /// owns (dispose <c>tensor.Storage</c> when done); otherwise, and always for big-endian data, a managed copy.
    /// </summary>
    public static Tensor Read(string path, bool map = false)
    {
        using var stream = OpenRead(path);
        long length = stream.Length;
        var header = ReadHeader(stream, path, null, length);
        if (map && CanMap(header)) return ReadMapped(path, header);
        return ReadData(stream, header, path, null, length);
    }

    /// <summary>
    /// Reads one array from the current position of <paramref name="stream"/>, which must end exactly where the data ends.
    /// A seekable stream's length is checked before allocating; a non-seekable one is read in bounded chunks.
    /// </summary>
    public static Tensor Read(Stream stream, string name)
    {
        ArgumentNullException.ThrowIfNull(stream);
        long? length = RemainingLength(stream);
        var header = ReadHeader(stream, name, null, length);
        return ReadData(stream, header, name, null, length);
    }

    // ---------------------------------------------------------------- internals shared with NpzFile / NpyFile

    internal static FileStream OpenRead(string path) =>
        new(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 4096, FileOptions.SequentialScan);

    private static long? RemainingLength(Stream stream) => stream.CanSeek ? stream.Length - stream.Position : null;

    internal static bool CanMap(NpyHeader header) =>
        header.IsNativeLayout && header.DataByteLength > 0 && header.DataOffset % header.DType.SizeOf() == 0;

    /// <summary>Parses the prefix and header dict. <paramref name="length"/>: bytes available from the .npy start, when known.</summary>
    internal static NpyHeader ReadHeader(Stream stream, string file, string? member, long? length)
    {
        Span<byte> prefix = stackalloc byte[12];
        int got = stream.ReadAtLeast(prefix[..8], 8, throwOnEndOfStream: false);
        if (got < 8)
            throw new NpyFormatException(file, $"too short for a .npy file: {got} bytes, the magic and version alone take 8", member, 0);
        if (!prefix[..6].SequenceEqual(Magic))
            throw new NpyFormatException(file, $"not a .npy file: starts with {Convert.ToHexString(prefix[..6])}, expected the magic 934E554D5059 (\"\\x93NUMPY\")", member, 0);
        int major = prefix[6], minor = prefix[7];
        int lengthFieldSize = (major, minor) switch
        {
            (1, 0) => 2,
            (2, 0) or (3, 0) => 4,
            _ => throw new NpyFormatException(file, $"unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)", member, 6),
        };
        got = stream.ReadAtLeast(prefix.Slice(8, lengthFieldSize), lengthFieldSize, throwOnEndOfStream: false);
        if (got < lengthFieldSize)
            throw new NpyFormatException(file, $"truncated: the {lengthFieldSize}-byte header length field is cut off after {got} bytes", member, 8);
        long headerLength = lengthFieldSize == 2
            ? BinaryPrimitives.ReadUInt16LittleEndian(prefix[8..])
            : BinaryPrimitives.ReadUInt32LittleEndian(prefix[8..]);
        int headerStart = 8 + lengthFieldSize;
        if (length is long total && headerStart + headerLength > total)
            throw new NpyFormatException(file, $"header length {headerLength} runs past the end of the {(member is null ? "file" : "member")} ({total} bytes, header would end at {headerStart + headerLength})", member, 8);
        if (headerLength > MaxHeaderBytes)
            throw new NpyFormatException(file, $"header length {headerLength} exceeds the {MaxHeaderBytes}-byte limit (a plain array header is under 1 KB)", member, 8);

        var headerBytes = new byte[headerLength];
        got = stream.ReadAtLeast(headerBytes, headerBytes.Length, throwOnEndOfStream: false);
        if (got < headerLength)
            throw new NpyFormatException(file, $"header length {headerLength} runs past the end of the data ({got} header bytes present)", member, 8);

        string text;
        Encoding encoding = major == 3 ? new UTF8Encoding(false, throwOnInvalidBytes: true) : Encoding.Latin1;
        try { text = encoding.GetString(headerBytes); }
        catch (DecoderFallbackException e)
        {
            throw new NpyFormatException(file, "header is not valid UTF-8 (required by format 3.0)", member, headerStart + (e.Index >= 0 ? e.Index : 0), e);
        }

        long OffsetOf(int charPos) =>
            headerStart + (major == 3 ? Encoding.UTF8.GetByteCount(text.AsSpan(0, Math.Min(charPos, text.Length))) : charPos);
        var fields = NpyHeaderParser.Parse(text, (pos, fault) => new NpyFormatException(file, "header not parseable: " + fault, member, OffsetOf(pos)));

        if (!NpyDescr.TryParse(fields.Descr, out var dtype, out bool bigEndian, out string descrFault))
            throw new NpyFormatException(file, descrFault, member, OffsetOf(fields.DescrPosition));

        var shape = new int[fields.Shape.Length];
        long elements = 1;
        bool overflow = false;
        for (int i = 0; i < shape.Length; i++)
        {
            long d = fields.Shape[i];
            if (d < 0)
                throw new NpyFormatException(file, $"negative dimension {d} in shape {ShapeText(fields.Shape)}", member, OffsetOf(fields.ShapePosition));
            if (d > int.MaxValue)
                throw new NpyFormatException(file, $"dimension {d} in shape {ShapeText(fields.Shape)} exceeds the supported maximum of {int.MaxValue}", member, OffsetOf(fields.ShapePosition));
            shape[i] = (int)d;
            if (d == 0) elements = 0;
            else if (elements != 0 && !overflow)
            {
                if (elements > long.MaxValue / d / dtype.SizeOf()) overflow = true;
                else elements *= d;
            }
        }
        long dataOffset = headerStart + headerLength;
        if (overflow && elements != 0)
            throw new NpyFormatException(file, $"shape {ShapeText(fields.Shape)} of {fields.Descr} implies more than 2^63 bytes of data", member, OffsetOf(fields.ShapePosition));

        var header = new NpyHeader((major, minor), fields.Descr, dtype, bigEndian, fields.FortranOrder, shape, dataOffset);
        if (length is long available)
        {
            long present = available - dataOffset;
            if (present != header.DataByteLength) throw SizeMismatch(file, member, header, present);
        }
        return header;
    }

    /// <summary>Reads the data that follows the header into a new managed tensor (swapping bytes if big-endian).</summary>
    internal static Tensor ReadData(Stream stream, NpyHeader header, string file, string? member, long? length)
    {
        long need = header.DataByteLength;
        if (need > Array.MaxLength)
            throw new NpyFormatException(file, $"array of {need} bytes is too large to load into managed memory (limit {Array.MaxLength}); use the mapped reader", member, header.DataOffset);

        ManagedStorage storage;
        if (length is not null)
        {
            // The length was checked against the header already, so this allocation is justified by bytes on disk
            // (or, for an archive member, by its declared size, which NpzFile bounds by its compressed size).
            storage = new ManagedStorage(need);
            int got = stream.ReadAtLeast(storage.WritableSpan, (int)need, throwOnEndOfStream: false);
            if (got < need) throw SizeMismatch(file, member, header, got);
        }
        else
        {
            storage = ReadBounded(stream, (int)need, file, member, header);
        }
        if (stream.ReadByte() >= 0)
            throw new NpyFormatException(file, $"data is longer than shape {ShapeText(header.Shape)} of {header.Descr} implies ({need} bytes): more bytes follow", member, header.DataOffset + need);

        if (header.BigEndian) SwapInPlace(storage.WritableSpan, header.DType.SizeOf());
        return MakeTensor(storage, header, 0);
    }

    /// <summary>A zero-copy view of the file's data over a new mapping of the whole file.</summary>
    internal static Tensor ReadMapped(string path, NpyHeader header)
    {
        var storage = new MappedFileStorage(path);
        try
        {
            if (storage.ByteLength != header.DataOffset + header.DataByteLength)
                throw new NpyFormatException(path, $"file changed while opening: {storage.ByteLength} bytes, header needs {header.DataOffset + header.DataByteLength}", null, header.DataOffset);
            return MakeTensor(storage, header, header.DataOffset / header.DType.SizeOf());
        }
        catch
        {
            storage.Dispose();
            throw;
        }
    }

    internal static Tensor MakeTensor(TensorStorage storage, NpyHeader header, long elementOffset)
    {
        var shape = (int[])header.Shape.Clone();
        long[]? strides = null;
        if (header.FortranOrder && shape.Length > 1)
        {
            // Column-major: the first axis varies fastest in memory.
            strides = new long[shape.Length];
            long s = 1;
            for (int i = 0; i < shape.Length; i++)
            {
                strides[i] = s;
                s *= Math.Max(shape[i], 1);
            }
        }
        return new Tensor(storage, header.DType, shape, strides, elementOffset);
    }

    internal static NpyFormatException SizeMismatch(string file, string? member, NpyHeader header, long present)
    {
        long need = header.DataByteLength;
        string what = present < need ? "shorter" : "longer";
        return new NpyFormatException(file,
            $"data is {what} than shape {ShapeText(header.Shape)} of {header.Descr} implies: {need} bytes needed, {Math.Max(present, 0)} present after the header",
            member, header.DataOffset + Math.Max(Math.Min(present, need), 0));
    }

    /// <summary>Reads exactly <paramref name="need"/> bytes from a stream of unknown length, allocating only as data arrives.</summary>
    private static ManagedStorage ReadBounded(Stream stream, int need, string file, string? member, NpyHeader header)
    {
        const int Chunk = 1 << 20;
        if (need <= Chunk)
        {
            var small = new ManagedStorage(need);
            int got = stream.ReadAtLeast(small.WritableSpan, need, throwOnEndOfStream: false);
            if (got < need) throw SizeMismatch(file, member, header, got);
            return small;
        }
        var chunks = new List<byte[]>();
        long total = 0;
        while (total < need)
        {
            var chunk = new byte[(int)Math.Min(Chunk, need - total)];
            int got = stream.ReadAtLeast(chunk, chunk.Length, throwOnEndOfStream: false);
            total += got;
            if (got < chunk.Length) throw SizeMismatch(file, member, header, total);
            chunks.Add(chunk);
        }
        var storage = new ManagedStorage(need);
        var dst = storage.WritableSpan;
        foreach (var chunk in chunks)
        {
            chunk.CopyTo(dst);
            dst = dst[chunk.Length..];
        }
        return storage;
    }

    private static void SwapInPlace(Span<byte> bytes, int size)
    {
        switch (size)
        {
            case 2:
                var u16 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(bytes);
                BinaryPrimitives.ReverseEndianness(u16, u16);
                break;
            case 4:
                var u32 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, uint>(bytes);
                BinaryPrimitives.ReverseEndianness(u32, u32);
                break;
            case 8:
                var u64 = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ulong>(bytes);
                BinaryPrimitives.ReverseEndianness(u64, u64);
                break;
        }
    }

    internal static string ShapeText(IReadOnlyList<long> shape) =>
        shape.Count == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";

    internal static string ShapeText(IReadOnlyList<int> shape) =>
        ShapeText(shape.Select(d => (long)d).ToArray());
}
