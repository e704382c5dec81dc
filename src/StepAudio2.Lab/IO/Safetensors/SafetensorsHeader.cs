using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Safetensors;

/// <summary>One tensor of a safetensors header; <see cref="Begin"/>/<see cref="End"/> are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, DType DType, int[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
    public long ElementCount => Tensor.CountElements(Shape);
}

/// <summary>
/// A parsed, validated safetensors header: the metadata map and the entries in data-offset order.
/// Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.
/// </summary>
public sealed record SafetensorsHeader(long HeaderLength, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<SafetensorsEntry> Entries)
{
    /// <summary>Headers above this size are refused, as the reference implementation does (it protects the JSON parser).</summary>
    public const long MaxHeaderLength = 100_000_000;

    /// <summary>safetensors tensors have at most this many dimensions here (PyTorch and NumPy stop at 64 as well).</summary>
    public const int MaxRank = 64;

    /// <summary>Absolute file offset of the first data byte.</summary>
    public long DataStart => 8 + HeaderLength;

    /// <summary>
    /// Validates the 8-byte length prefix against the file length and returns N. Runs before anything is
    /// read or allocated, so a hostile prefix costs nothing.
    /// </summary>
    internal static long ReadHeaderLength(string file, ReadOnlySpan<byte> fileStart, long fileLength)
    {
        if (fileLength < 8)
            throw new SafetensorsFormatException(file, $"file is {fileLength} bytes, shorter than the 8-byte header length prefix", offset: 0);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(fileStart[..8]);
        if (n > MaxHeaderLength)
            throw new SafetensorsFormatException(file, $"header length {n} exceeds the {MaxHeaderLength}-byte limit (absurd or corrupt length prefix)", offset: 0);
        if ((long)n > fileLength - 8)
            throw new SafetensorsFormatException(file, $"header length {n} is larger than the {fileLength - 8} bytes after the length prefix (truncated file?)", offset: 0);
        return (long)n;
    }

    /// <summary>Parses and validates the JSON header bytes (file offsets 8 … 8+N) against a data section of <paramref name="dataLength"/> bytes.</summary>
    internal static SafetensorsHeader Parse(string file, ReadOnlySpan<byte> json, long dataLength)
        => new Parser(file, json.Length, dataLength).Run(json);

    private sealed class Parser(string file, long headerLength, long dataLength)
    {
        private const long JsonStart = 8;
        private readonly List<SafetensorsEntry> _entries = [];
        private readonly Dictionary<string, long> _entryOffsets = new(StringComparer.Ordinal);
        private Dictionary<string, string>? _metadata;

        public SafetensorsHeader Run(ReadOnlySpan<byte> json)
        {
            int bad = FirstInvalidUtf8(json);
            if (bad >= 0) throw Fail("header is not valid UTF-8", null, JsonStart + bad);

            if (json.Trim(" \t\r\n"u8).IsEmpty) throw Fail("header is empty (no JSON object)", null, JsonStart);
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow, AllowTrailingCommas = false });
            try
            {
                reader.Read();
                if (reader.TokenType != JsonTokenType.StartObject)
                    throw Fail($"header is a JSON {Describe(reader.TokenType)}, expected an object", null, At(ref reader));
                var keys = new HashSet<string>(StringComparer.Ordinal);
                while (Next(ref reader) == JsonTokenType.PropertyName)
                {
                    string key = reader.GetString()!;
                    long keyOffset = At(ref reader);
                    if (!keys.Add(key)) throw Fail("duplicate key in header", key, keyOffset);
                    reader.Read();
                    if (key == "__metadata__") ReadMetadata(ref reader);
                    else ReadEntry(ref reader, key, keyOffset);
                }
                // Only whitespace (the padding) may follow; the reader throws on anything else.
                if (reader.Read()) throw Fail("data after the header object", null, At(ref reader));
            }
            catch (JsonException ex)
            {
                throw new SafetensorsFormatException(file, $"header is not valid JSON: {ex.Message}", null, JsonStart + reader.BytesConsumed, ex);
            }
            catch (InvalidOperationException ex)
            {
                // Utf8JsonReader.GetString on escapes that decode to invalid UTF-16 (lone surrogates).
                throw new SafetensorsFormatException(file, $"header holds an invalid JSON string: {ex.Message}", null, JsonStart + reader.TokenStartIndex, ex);
            }
            return new SafetensorsHeader(headerLength, (IReadOnlyDictionary<string, string>?)_metadata ?? new Dictionary<string, string>(), CheckLayout());
        }

        private void ReadMetadata(ref Utf8JsonReader reader)
        {
            if (reader.TokenType == JsonTokenType.Null) return;
            if (reader.TokenType != JsonTokenType.StartObject)
                throw Fail($"__metadata__ is a JSON {Describe(reader.TokenType)}, expected an object of strings", "__metadata__", At(ref reader));
            _metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                string key = reader.GetString()!;
                long keyOffset = At(ref reader);
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                    throw Fail($"__metadata__ value is a JSON {Describe(reader.TokenType)}, expected a string", "__metadata__." + key, At(ref reader));
                if (!_metadata.TryAdd(key, reader.GetString()!))
                    throw Fail("duplicate key in __metadata__", "__metadata__." + key, keyOffset);
            }
        }

        private void ReadEntry(ref Utf8JsonReader reader, string name, long entryOffset)
        {
            if (reader.TokenType != JsonTokenType.StartObject)
                throw Fail($"entry is a JSON {Describe(reader.TokenType)}, expected an object with dtype, shape and data_offsets", name, At(ref reader));
            DType? dtype = null;
            List<int>? shape = null;
            long[]? offsets = null;
            while (Next(ref reader) == JsonTokenType.PropertyName)
            {
                string field = reader.GetString()!;
                long fieldOffset = At(ref reader);
                reader.Read();
                switch (field)
                {
                    case "dtype":
                        if (dtype is not null) throw Fail("entry has 'dtype' twice", name, fieldOffset);
                        if (reader.TokenType != JsonTokenType.String)
                            throw Fail($"'dtype' is a JSON {Describe(reader.TokenType)}, expected a string", name, At(ref reader));
                        string dtypeName = reader.GetString()!;
                        if (!DTypeInfo.TryParseSafetensorsName(dtypeName, out var d))
                            throw Fail($"unknown dtype '{Clip(dtypeName)}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)", name, At(ref reader));
                        dtype = d;
                        break;
                    case "shape":
                        if (shape is not null) throw Fail("entry has 'shape' twice", name, fieldOffset);
                        shape = ReadShape(ref reader, name);
                        break;
                    case "data_offsets":
                        if (offsets is not null) throw Fail("entry has 'data_offsets' twice", name, fieldOffset);
                        offsets = ReadOffsets(ref reader, name);
                        break;
                    default:
                        reader.Skip(); // unknown fields are ignored, as serde does for TensorInfo
                        break;
                }
            }
            if (dtype is null) throw Fail("entry lacks 'dtype'", name, entryOffset);
            if (shape is null) throw Fail("entry lacks 'shape'", name, entryOffset);
            if (offsets is null) throw Fail("entry lacks 'data_offsets'", name, entryOffset);

            long begin = offsets[0], end = offsets[1];
            int[] dims = [.. shape];
            long bytes;
            try { bytes = checked(Tensor.CountElements(dims) * dtype.Value.SizeOf()); }
            catch (OverflowException) { throw Fail($"element count of shape {Tensor.ShapeString(dims)} overflows", name, entryOffset); }
            if (begin > end)
                throw Fail($"data_offsets [{begin}, {end}] has begin > end", name, entryOffset);
            if (end > dataLength)
                throw Fail($"data_offsets [{begin}, {end}] lie outside the {dataLength}-byte data section", name, entryOffset);
            if (end - begin != bytes)
                throw Fail($"shape {Tensor.ShapeString(dims)} of {dtype.Value.SafetensorsName()} needs {bytes} bytes but data_offsets [{begin}, {end}] span {end - begin}", name, entryOffset);
            _entries.Add(new SafetensorsEntry(name, dtype.Value, dims, begin, end));
            _entryOffsets[name] = entryOffset;
        }

        private List<int> ReadShape(ref Utf8JsonReader reader, string name)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
                throw Fail($"'shape' is a JSON {Describe(reader.TokenType)}, expected an array of integers", name, At(ref reader));
            var dims = new List<int>();
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                long d = ReadInteger(ref reader, name, "shape dimension");
                if (d < 0) throw Fail($"negative dimension {d} in shape", name, At(ref reader));
                if (d > int.MaxValue) throw Fail($"dimension {d} in shape exceeds {int.MaxValue}", name, At(ref reader));
                if (dims.Count == MaxRank) throw Fail($"shape has more than {MaxRank} dimensions", name, At(ref reader));
                dims.Add((int)d);
            }
            return dims;
        }

        private long[] ReadOffsets(ref Utf8JsonReader reader, string name)
        {
            long start = At(ref reader);
            if (reader.TokenType != JsonTokenType.StartArray)
                throw Fail($"'data_offsets' is a JSON {Describe(reader.TokenType)}, expected [begin, end]", name, start);
            var values = new long[2];
            int count = 0;
            while (Next(ref reader) != JsonTokenType.EndArray)
            {
                long v = ReadInteger(ref reader, name, "data_offsets value");
                if (v < 0) throw Fail($"negative data offset {v}", name, At(ref reader));
                if (count == 2) throw Fail("'data_offsets' has more than two values, expected [begin, end]", name, start);
                values[count++] = v;
            }
            if (count != 2) throw Fail($"'data_offsets' has {count} value(s), expected [begin, end]", name, start);
            return values;
        }

        private long ReadInteger(ref Utf8JsonReader reader, string name, string what)
        {
            if (reader.TokenType != JsonTokenType.Number)
                throw Fail($"{what} is a JSON {Describe(reader.TokenType)}, expected an integer", name, At(ref reader));
            if (!reader.TryGetInt64(out long v))
                throw Fail($"{what} {Clip(Encoding.UTF8.GetString(reader.ValueSpan))} is not an integer in the signed 64-bit range", name, At(ref reader));
            return v;
        }

        /// <summary>Sorts the entries by data offset and rejects overlapping ranges (gaps are allowed by the format).</summary>
        private List<SafetensorsEntry> CheckLayout()
        {
            _entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End != b.End ? a.End.CompareTo(b.End) : string.CompareOrdinal(a.Name, b.Name));
            SafetensorsEntry? reach = null; // the entry reaching furthest so far
            foreach (var e in _entries)
            {
                if (reach is not null && e.Begin < reach.End && e.End > e.Begin)
                    throw Fail($"data [{e.Begin}, {e.End}) overlaps '{reach.Name}' [{reach.Begin}, {reach.End})", e.Name, _entryOffsets[e.Name]);
                if (reach is null || e.End > reach.End) reach = e;
            }
            return _entries;
        }

        private static JsonTokenType Next(ref Utf8JsonReader reader)
        {
            // The whole header is one final block: inside an open object or array the reader throws on
            // truncation before Read() could return false; the check guards against looping on a stale token.
            if (!reader.Read()) throw new JsonException("unexpected end of header");
            return reader.TokenType;
        }

        private static long At(ref Utf8JsonReader reader) => JsonStart + reader.TokenStartIndex;

        private SafetensorsFormatException Fail(string fault, string? key, long offset) => new(file, fault, key, offset);
    }

    private static string Describe(JsonTokenType t) => t switch
    {
        JsonTokenType.StartObject => "object",
        JsonTokenType.StartArray => "array",
        JsonTokenType.String => "string",
        JsonTokenType.Number => "number",
        JsonTokenType.True or JsonTokenType.False => "boolean",
        JsonTokenType.Null => "null",
        _ => t.ToString(),
    };

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        if (Utf8.IsValid(bytes)) return -1;
        int i = 0;
        while (i < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) != System.Buffers.OperationStatus.Done) return i;
            i += consumed;
        }
        return -1;
    }
}
