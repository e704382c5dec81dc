using System.Buffers.Binary;
using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Mel;

/// <summary>
/// STAND-IN, to be replaced by the real safetensors reader (IO/) once it lands: just enough to read the F32/F64/I64
/// tensors of the reference dumps and mel fixtures in these tests (u64 LE header length, JSON header
/// {name: {dtype, shape, data_offsets}}, offsets relative to the data section at 8 + header length).
/// </summary>
internal sealed class StandInSafetensors
{
    private readonly byte[] _file;
    private readonly long _dataStart;
    private readonly Dictionary<string, (string DType, int[] Shape, long Begin, long End)> _entries = new();

    public StandInSafetensors(string path)
    {
        Path = path;
        _file = File.ReadAllBytes(path);
        if (_file.Length < 8) throw new SafetensorsFormatException(path, "file shorter than the 8-byte header length", offset: 0);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(_file);
        if (headerLength > (ulong)(_file.Length - 8)) throw new SafetensorsFormatException(path, $"header length {headerLength} exceeds the file", offset: 0);
        _dataStart = 8 + (long)headerLength;
        using var doc = JsonDocument.Parse(_file.AsMemory(8, (int)headerLength));
        foreach (var entry in doc.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__") continue;
            var offsets = entry.Value.GetProperty("data_offsets");
            _entries[entry.Name] = (entry.Value.GetProperty("dtype").GetString()!,
                entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                offsets[0].GetInt64(), offsets[1].GetInt64());
        }
    }

    public string Path { get; }
    public IEnumerable<string> Names => _entries.Keys;
    public bool Contains(string name) => _entries.ContainsKey(name);

    public Tensor Get(string name)
    {
        if (!_entries.TryGetValue(name, out var e)) throw new SafetensorsFormatException(Path, "no such tensor", name);
        var dtype = e.DType switch
        {
            "F32" => DType.F32,
            "F64" => DType.F64,
            "I64" => DType.I64,
            _ => throw new SafetensorsFormatException(Path, $"stand-in reader does not handle dtype {e.DType}", name),
        };
        long expected = Tensor.CountElements(e.Shape) * dtype.SizeOf();
        if (e.End - e.Begin != expected || e.Begin < 0 || _dataStart + e.End > _file.Length)
            throw new SafetensorsFormatException(Path, $"data_offsets [{e.Begin}, {e.End}] do not hold {e.DType} {Tensor.ShapeString(e.Shape)}", name);
        return Tensor.FromBytes(_file.AsSpan((int)(_dataStart + e.Begin), (int)expected), dtype, e.Shape);
    }
}
