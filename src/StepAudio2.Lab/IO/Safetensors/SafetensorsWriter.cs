using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Safetensors;

/// <summary>
/// Writes safetensors files byte-identical to what the Python <c>safetensors</c> package writes for the same tensors.
/// </summary>
/// <remarks>
/// The package's Rust core (<c>tensor.rs</c>, <c>prepare</c>) sorts tensors by descending rank of its <c>Dtype</c>
/// enum (BOOL &lt; U8 &lt; I8 &lt; I16 &lt; F16 &lt; BF16 &lt; I32 &lt; F32 &lt; F64 &lt; I64), then by name in byte order,
/// so wide elements come first and stay aligned; it serialises the header with serde_json (compact, non-ASCII kept
/// as UTF-8, <c>__metadata__</c> first) and pads it with spaces to a multiple of 8. Its metadata is a HashMap with no
/// defined order; we sort metadata keys so that output is reproducible.
/// </remarks>
public static class SafetensorsWriter
{
    /// <summary>
    /// Writes <paramref name="tensors"/> (any strides: written in logical, row-major order) and optional string
    /// metadata to <paramref name="path"/>, atomically: the bytes go to a temporary file in the same folder, which
    /// is flushed and then renamed over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var items = Canonical(tensors);
        byte[] header = BuildHeader(items, metadata);

        string full = System.IO.Path.GetFullPath(path);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        string temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> prefix = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
                stream.Write(prefix);
                stream.Write(header);
                byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
                try
                {
                    foreach (var (_, tensor) in items) WriteData(stream, tensor, buffer);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
                stream.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The tensors in the package's write order, after checking names.</summary>
    internal static List<(string Name, Tensor Tensor)> Canonical(IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var items = new List<(string Name, Tensor Tensor)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name, "tensor name");
            ArgumentNullException.ThrowIfNull(tensor, name);
            if (name == "__metadata__") throw new ArgumentException("'__metadata__' is reserved by the safetensors header and cannot name a tensor");
            if (!seen.Add(name)) throw new ArgumentException($"duplicate tensor name '{name}'");
            Utf8Bytes(name); // rejects lone surrogates now rather than halfway through the header
            items.Add((name, tensor));
        }
        items.Sort((a, b) =>
        {
            int byDtype = AlignmentRank(b.Tensor.DType).CompareTo(AlignmentRank(a.Tensor.DType));
            return byDtype != 0 ? byDtype : CompareUtf8(a.Name, b.Name);
        });
        return items;
    }

    /// <summary>The padded JSON header (without the 8-byte length prefix) for tensors already in write order.</summary>
    internal static byte[] BuildHeader(List<(string Name, Tensor Tensor)> items, IReadOnlyDictionary<string, string>? metadata)
    {
        var json = new ArrayBufferWriter<byte>(256 + 96 * items.Count);
        Ascii(json, "{");
        bool first = true;
        if (metadata is not null)
        {
            Ascii(json, "\"__metadata__\":{");
            bool firstMeta = true;
            foreach (var (key, value) in metadata.OrderBy(kv => kv.Key, Comparer<string>.Create(CompareUtf8)))
            {
                ArgumentNullException.ThrowIfNull(value, key);
                if (!firstMeta) Ascii(json, ",");
                JsonString(json, key);
                Ascii(json, ":");
                JsonString(json, value);
                firstMeta = false;
            }
            Ascii(json, "}");
            first = false;
        }
        long offset = 0;
        foreach (var (name, tensor) in items)
        {
            if (!first) Ascii(json, ",");
            first = false;
            JsonString(json, name);
            Ascii(json, ":{\"dtype\":\"");
            Ascii(json, tensor.DType.SafetensorsName());
            Ascii(json, "\",\"shape\":[");
            Ascii(json, string.Join(",", tensor.Shape.Select(d => d.ToString(CultureInfo.InvariantCulture))));
            long end = offset + tensor.ByteCount;
            Ascii(json, $"],\"data_offsets\":[{offset.ToString(CultureInfo.InvariantCulture)},{end.ToString(CultureInfo.InvariantCulture)}]}}");
            offset = end;
        }
        Ascii(json, "}");
        int padding = (8 - json.WrittenCount % 8) % 8;
        for (int i = 0; i < padding; i++) Ascii(json, " ");
        return json.WrittenSpan.ToArray();
    }

    /// <summary>Position of a dtype in the Rust <c>Dtype</c> enum, which is ordered by alignment.</summary>
    private static int AlignmentRank(DType dtype) => dtype switch
    {
        DType.Bool => 0,
        DType.U8 => 1,
        DType.I8 => 2,
        DType.I16 => 5,
        DType.F16 => 7,
        DType.BF16 => 8,
        DType.I32 => 9,
        DType.U32 => 10,
        DType.F32 => 11,
        DType.F64 => 12,
        DType.I64 => 13,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };

    // Rust compares str by UTF-8 bytes; string.CompareOrdinal compares UTF-16 units, which orders
    // supplementary characters (surrogates) before U+E000…U+FFFF, unlike UTF-8.
    private static int CompareUtf8(string? a, string? b) => Utf8Bytes(a!).AsSpan().SequenceCompareTo(Utf8Bytes(b!));

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static byte[] Utf8Bytes(string s)
    {
        try { return StrictUtf8.GetBytes(s); }
        catch (EncoderFallbackException ex) { throw new ArgumentException($"'{s}' is not valid Unicode (lone surrogate)", ex); }
    }

    private static void Ascii(ArrayBufferWriter<byte> w, string s)
    {
        var span = w.GetSpan(s.Length);
        for (int i = 0; i < s.Length; i++) span[i] = (byte)s[i];
        w.Advance(s.Length);
    }

    /// <summary>A JSON string escaped exactly as serde_json and Python's json (ensure_ascii=False) escape it.</summary>
    private static void JsonString(ArrayBufferWriter<byte> w, string s)
    {
        Ascii(w, "\"");
        var sb = new StringBuilder(s.Length + 8);
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u00").Append(((int)c).ToString("x2", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        w.Write(Utf8Bytes(sb.ToString()));
        Ascii(w, "\"");
    }

    /// <summary>Writes a tensor's elements in logical order: one bulk write when contiguous, else gathered row by row.</summary>
    private static unsafe void WriteData(Stream stream, Tensor t, byte[] buffer)
    {
        if (t.ElementCount == 0) return;
        int size = t.DType.SizeOf();
        byte* src = t.Storage.Pointer;
        if (t.IsContiguous)
        {
            byte* p = src + t.Offset * size;
            for (long left = t.ByteCount; left > 0;)
            {
                int chunk = (int)Math.Min(left, 1 << 30);
                stream.Write(new ReadOnlySpan<byte>(p, chunk));
                p += chunk;
                left -= chunk;
            }
            GC.KeepAlive(t); // src does not keep the storage alive
            return;
        }

        // Not contiguous, so rank >= 1. Walk the outer indices; the innermost axis is one row.
        int rank = t.Rank;
        int inner = t.Shape[rank - 1];
        long innerStride = t.Strides[rank - 1];
        long rows = t.ElementCount / inner;
        var idx = new int[rank - 1];
        long rowPos = t.Offset;
        int filled = 0;
        for (long r = 0; r < rows; r++)
        {
            if (innerStride == 1)
            {
                for (long j = 0, left = (long)inner * size; left > 0;)
                {
                    if (filled == buffer.Length) { stream.Write(buffer, 0, filled); filled = 0; }
                    int chunk = (int)Math.Min(left, buffer.Length - filled);
                    new ReadOnlySpan<byte>(src + rowPos * size + j, chunk).CopyTo(buffer.AsSpan(filled));
                    filled += chunk;
                    j += chunk;
                    left -= chunk;
                }
            }
            else
            {
                long pos = rowPos;
                for (int j = 0; j < inner; j++, pos += innerStride)
                {
                    if (filled + size > buffer.Length) { stream.Write(buffer, 0, filled); filled = 0; }
                    new ReadOnlySpan<byte>(src + pos * size, size).CopyTo(buffer.AsSpan(filled));
                    filled += size;
                }
            }
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d]++;
                rowPos += t.Strides[d];
                if (idx[d] < t.Shape[d]) break;
                rowPos -= t.Strides[d] * t.Shape[d];
                idx[d] = 0;
            }
        }
        if (filled > 0) stream.Write(buffer, 0, filled);
    }
}
