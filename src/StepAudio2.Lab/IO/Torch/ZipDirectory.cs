using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Torch;

/// <summary>One member of a zip archive, located through its central-directory record and local header.</summary>
/// <param name="DataOffset">Absolute file offset of the member's (possibly compressed) bytes.</param>
internal sealed record ZipMember(string Name, ushort Method, long CompressedSize, long UncompressedSize, long LocalHeaderOffset, long DataOffset)
{
    public const ushort Stored = 0;
    public const ushort Deflated = 8;

    public bool IsStored => Method == Stored;
}

/// <summary>
/// The member table of a zip file held in a <see cref="TensorStorage"/> (normally the memory map of the whole file).
/// We read the central directory ourselves instead of using <see cref="ZipArchive"/> because zero-copy tensors need
/// each stored member's absolute data offset, which ZipArchive does not expose. Every offset and size is checked
/// against the file length before it is used, so a truncated or hostile archive fails with a typed error.
/// </summary>
internal sealed class ZipDirectory
{
    private const uint LocalHeaderSignature = 0x04034b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint EndOfCentralDirectorySignature = 0x06054b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const int EocdSize = 22;
    private const int Zip64LocatorSize = 20;
    private const int Zip64EndMinSize = 56;
    private const int CentralHeaderSize = 46;
    private const int LocalHeaderSize = 30;
    // Deflate cannot expand data by more than about 1032:1; a larger claimed ratio is a lie (or a zip bomb).
    private const long MaxDeflateRatio = 1032;

    private readonly TensorStorage _file;
    private readonly string _path;
    private readonly Dictionary<string, ZipMember> _byName;

    private ZipDirectory(TensorStorage file, string path, List<ZipMember> members)
    {
        _file = file;
        _path = path;
        Members = members;
        _byName = new Dictionary<string, ZipMember>(StringComparer.Ordinal);
        foreach (var m in members)
            if (!_byName.TryAdd(m.Name, m))
                throw new TorchCheckpointException(path, "zip archive lists the same member twice", m.Name, m.LocalHeaderOffset);
    }

    /// <summary>Members in central-directory order.</summary>
    public IReadOnlyList<ZipMember> Members { get; }

    public bool TryGet(string name, out ZipMember member) => _byName.TryGetValue(name, out member!);

    /// <summary>True when the bytes start with a zip local-file or (empty archive) end-of-directory signature.</summary>
    public static bool HasZipSignature(ReadOnlySpan<byte> head) =>
        head.Length >= 4 && (BinaryPrimitives.ReadUInt32LittleEndian(head) is LocalHeaderSignature or EndOfCentralDirectorySignature);

    public static ZipDirectory Read(TensorStorage file, string path)
    {
        long eocd = FindEndOfCentralDirectory(file, path);
        var e = file.Span(eocd, EocdSize);
        ushort diskNumber = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]);
        ushort cdDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
        long entries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        long cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        long cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        long cdLimit = eocd;

        // torch.save always writes zip64 end records (miniz); other writers only when a field overflows.
        long locator = eocd - Zip64LocatorSize;
        if (locator >= 0 && BinaryPrimitives.ReadUInt32LittleEndian(file.Span(locator, 4)) == Zip64LocatorSignature)
        {
            var l = file.Span(locator, Zip64LocatorSize);
            long z64 = ToLong(BinaryPrimitives.ReadUInt64LittleEndian(l[8..]), path, locator);
            if (z64 < 0 || z64 > locator - Zip64EndMinSize)
                throw new TorchCheckpointException(path, "zip64 end-of-central-directory offset points outside the file", offset: locator);
            var z = file.Span(z64, Zip64EndMinSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(z) != Zip64EndSignature)
                throw new TorchCheckpointException(path, "zip64 end-of-central-directory record has a bad signature", offset: z64);
            diskNumber = (ushort)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(z[16..]), ushort.MaxValue);
            cdDisk = (ushort)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(z[20..]), ushort.MaxValue);
            entries = ToLong(BinaryPrimitives.ReadUInt64LittleEndian(z[32..]), path, z64);
            cdSize = ToLong(BinaryPrimitives.ReadUInt64LittleEndian(z[40..]), path, z64);
            cdOffset = ToLong(BinaryPrimitives.ReadUInt64LittleEndian(z[48..]), path, z64);
            cdLimit = z64;
        }
        else if (entries == 0xFFFF || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF)
        {
            throw new TorchCheckpointException(path, "zip needs zip64 records but has no zip64 locator", offset: eocd);
        }

        if (diskNumber != 0 || cdDisk != 0)
            throw new TorchCheckpointException(path, "multi-disk (split) zip archives are not supported", offset: eocd);
        if (cdOffset < 0 || cdSize < 0 || cdOffset > cdLimit || cdSize > cdLimit - cdOffset)
            throw new TorchCheckpointException(path, $"central directory [{cdOffset}, +{cdSize}) lies outside the archive (truncated?)", offset: eocd);
        if (entries > cdSize / CentralHeaderSize)
            throw new TorchCheckpointException(path, $"zip claims {entries} members but its central directory has room for {cdSize / CentralHeaderSize}", offset: eocd);

        var members = new List<ZipMember>((int)Math.Min(entries, 4096));
        long pos = cdOffset;
        long cdEnd = cdOffset + cdSize;
        for (long i = 0; i < entries; i++)
        {
            if (cdEnd - pos < CentralHeaderSize)
                throw new TorchCheckpointException(path, "central directory ends inside a member record", offset: pos);
            var h = file.Span(pos, CentralHeaderSize);
            if (BinaryPrimitives.ReadUInt32LittleEndian(h) != CentralHeaderSignature)
                throw new TorchCheckpointException(path, "bad central-directory record signature", offset: pos);
            ushort flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
            ushort method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            long diskStart = BinaryPrimitives.ReadUInt16LittleEndian(h[34..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            long recordEnd = pos + CentralHeaderSize + nameLen + extraLen + commentLen;
            if (recordEnd > cdEnd)
                throw new TorchCheckpointException(path, "central-directory record runs past the directory end", offset: pos);
            string name = Encoding.UTF8.GetString(file.Span(pos + CentralHeaderSize, nameLen));

            // Zip64 extended information: 64-bit values for exactly the fields saturated above, in this order.
            var extra = file.Span(pos + CentralHeaderSize + nameLen, extraLen);
            while (extra.Length >= 4)
            {
                ushort id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
                int size = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
                if (size > extra.Length - 4)
                    throw new TorchCheckpointException(path, "central-directory extra field overruns its record", name, pos);
                if (id == 0x0001)
                {
                    var z = extra.Slice(4, size);
                    if (uncompressed == 0xFFFFFFFF) uncompressed = Take64(ref z, path, name, pos);
                    if (compressed == 0xFFFFFFFF) compressed = Take64(ref z, path, name, pos);
                    if (localOffset == 0xFFFFFFFF) localOffset = Take64(ref z, path, name, pos);
                    if (diskStart == 0xFFFF) diskStart = z.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(z) : diskStart;
                }
                extra = extra[(4 + size)..];
            }

            if ((flags & 1) != 0)
                throw new TorchCheckpointException(path, "encrypted zip members are not supported", name, pos);
            if (diskStart != 0)
                throw new TorchCheckpointException(path, "member starts on another disk of a split archive", name, pos);
            if (method is not (ZipMember.Stored or ZipMember.Deflated))
                throw new TorchCheckpointException(path, $"zip compression method {method} is not supported (only stored and deflate)", name, pos);
            if (method == ZipMember.Stored && compressed != uncompressed)
                throw new TorchCheckpointException(path, $"stored member has compressed size {compressed} != uncompressed size {uncompressed}", name, pos);
            if (method == ZipMember.Deflated && uncompressed > compressed * MaxDeflateRatio + 1024)
                throw new TorchCheckpointException(path, $"deflated member claims {uncompressed} bytes from {compressed} compressed bytes, beyond deflate's maximum ratio", name, pos);

            long dataOffset = ReadLocalHeader(file, path, name, pos + CentralHeaderSize, nameLen, localOffset, cdOffset);
            if (compressed > cdOffset - dataOffset)
                throw new TorchCheckpointException(path, $"member data [{dataOffset}, +{compressed}) overruns the central directory at {cdOffset} (truncated?)", name, localOffset);
            members.Add(new ZipMember(name, method, compressed, uncompressed, localOffset, dataOffset));
            pos = recordEnd;
        }
        return new ZipDirectory(file, path, members);
    }

    /// <summary>The whole member as a managed array (small members only: data.pkl, version, byteorder).</summary>
    public byte[] ReadAll(ZipMember member, long maxBytes)
    {
        if (member.UncompressedSize > maxBytes)
            throw new TorchCheckpointException(_path, $"member of {member.UncompressedSize} bytes exceeds the {maxBytes}-byte limit for this record", member.Name, member.LocalHeaderOffset);
        var bytes = new byte[member.UncompressedSize];
        CopyTo(member, bytes);
        return bytes;
    }

    /// <summary>Copies (inflating if needed) exactly <c>UncompressedSize</c> bytes of the member into <paramref name="destination"/>.</summary>
    public unsafe void CopyTo(ZipMember member, Span<byte> destination)
    {
        if (destination.Length != member.UncompressedSize)
            throw new ArgumentException($"destination of {destination.Length} bytes for a member of {member.UncompressedSize} bytes");
        if (member.IsStored)
        {
            // Spans are int-sized; copy in chunks so members above 2 GiB are not a special case.
            long done = 0;
            while (done < member.UncompressedSize)
            {
                int n = (int)Math.Min(1 << 30, member.UncompressedSize - done);
                _file.Span(member.DataOffset + done, n).CopyTo(destination.Slice((int)done, n));
                done += n;
            }
            return;
        }

        try
        {
            using var compressed = new UnmanagedMemoryStream(_file.Pointer + member.DataOffset, member.CompressedSize);
            using var inflate = new DeflateStream(compressed, CompressionMode.Decompress);
            int filled = 0;
            while (filled < destination.Length)
            {
                int n = inflate.Read(destination[filled..]);
                if (n == 0)
                    throw new TorchCheckpointException(_path, $"deflated member ends after {filled} of its declared {member.UncompressedSize} bytes", member.Name, member.DataOffset);
                filled += n;
            }
            Span<byte> probe = stackalloc byte[1];
            if (inflate.Read(probe) != 0)
                throw new TorchCheckpointException(_path, $"deflated member inflates to more than its declared {member.UncompressedSize} bytes", member.Name, member.DataOffset);
        }
        catch (InvalidDataException ex)
        {
            throw new TorchCheckpointException(_path, $"corrupt deflate data: {ex.Message}", member.Name, member.DataOffset, ex);
        }
    }

    private static long FindEndOfCentralDirectory(TensorStorage file, string path)
    {
        long length = file.ByteLength;
        if (length < EocdSize)
            throw new TorchCheckpointException(path, $"file of {length} bytes is too short to be a zip archive (truncated?)");
        long lowest = Math.Max(0, length - EocdSize - ushort.MaxValue);
        var tail = file.Span(lowest, (int)(length - lowest));
        for (int p = tail.Length - EocdSize; p >= 0; p--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail[p..]) != EndOfCentralDirectorySignature) continue;
            int commentLen = BinaryPrimitives.ReadUInt16LittleEndian(tail[(p + 20)..]);
            if (p + EocdSize + commentLen == tail.Length) return lowest + p;
        }
        throw new TorchCheckpointException(path, "no zip end-of-central-directory record at the end of the file (truncated or not a zip archive)");
    }

    private static long ReadLocalHeader(TensorStorage file, string path, string name, long centralNameOffset, int centralNameLen, long localOffset, long cdOffset)
    {
        if (localOffset < 0 || localOffset > cdOffset - LocalHeaderSize)
            throw new TorchCheckpointException(path, $"local header offset {localOffset} lies outside the member area", name);
        var l = file.Span(localOffset, LocalHeaderSize);
        if (BinaryPrimitives.ReadUInt32LittleEndian(l) != LocalHeaderSignature)
            throw new TorchCheckpointException(path, "bad local file header signature", name, localOffset);
        int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(l[26..]);
        int extraLen = BinaryPrimitives.ReadUInt16LittleEndian(l[28..]);
        long dataOffset = localOffset + LocalHeaderSize + nameLen + extraLen;
        if (dataOffset > cdOffset)
            throw new TorchCheckpointException(path, "local file header runs into the central directory", name, localOffset);
        // The local and central names must agree; a mismatch means the archive was spliced or is lying.
        if (!file.Span(localOffset + LocalHeaderSize, nameLen).SequenceEqual(file.Span(centralNameOffset, centralNameLen)))
            throw new TorchCheckpointException(path, "local file header names a different member than the central directory", name, localOffset);
        return dataOffset;
    }

    private static long Take64(ref ReadOnlySpan<byte> z, string path, string name, long pos)
    {
        if (z.Length < 8) throw new TorchCheckpointException(path, "zip64 extra field is too short", name, pos);
        long v = ToLong(BinaryPrimitives.ReadUInt64LittleEndian(z), path, pos);
        z = z[8..];
        return v;
    }

    private static long ToLong(ulong v, string path, long pos) =>
        v <= long.MaxValue ? (long)v : throw new TorchCheckpointException(path, $"zip64 field {v} is out of range", offset: pos);
}
