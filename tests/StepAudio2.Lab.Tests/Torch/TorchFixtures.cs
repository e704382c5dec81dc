using System.IO.Compression;
using System.Text;
using System.Text.Json;

namespace StepAudio2.Lab.Tests.Torch;

/// <summary>Expected tensors and metadata that make_torch_fixtures.py wrote beside each checkpoint.</summary>
internal sealed record ExpectedTensor(
    string Name, string DType, int[] Shape, long[] Stride, long StorageOffset, long StorageNumel, int StorageGroup,
    bool Contiguous, byte[] Bytes);

internal sealed record ExpectedCheckpoint(IReadOnlyList<ExpectedTensor> Tensors, JsonElement Metadata)
{
    public static ExpectedCheckpoint Load(string stem)
    {
        using var json = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("torch", stem + ".expected.json")));
        byte[] blob = File.ReadAllBytes(TestPaths.Fixture("torch", stem + ".expected.bin"));
        var tensors = new List<ExpectedTensor>();
        foreach (var t in json.RootElement.GetProperty("tensors").EnumerateArray())
        {
            int offset = t.GetProperty("byte_offset").GetInt32();
            int length = t.GetProperty("byte_length").GetInt32();
            tensors.Add(new ExpectedTensor(
                t.GetProperty("name").GetString()!,
                t.GetProperty("dtype").GetString()!,
                t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                t.GetProperty("stride").EnumerateArray().Select(e => e.GetInt64()).ToArray(),
                t.GetProperty("storage_offset").GetInt64(),
                t.GetProperty("storage_numel").GetInt64(),
                t.GetProperty("storage_group").GetInt32(),
                t.GetProperty("contiguous").GetBoolean(),
                blob.AsSpan(offset, length).ToArray()));
        }
        return new ExpectedCheckpoint(tensors, json.RootElement.GetProperty("metadata").Clone());
    }
}

/// <summary>Builds small torch-layout zips with a hand-written protocol-2 data.pkl, for cases torch.save cannot produce.</summary>
internal sealed class PickleWriter
{
    private readonly MemoryStream _s = new();

    public PickleWriter() => _s.Write([0x80, 0x02]);

    public PickleWriter Op(char op) { _s.WriteByte((byte)op); return this; }
    public PickleWriter Op(byte op) { _s.WriteByte(op); return this; }
    public PickleWriter Global(string module, string name) => Op('c').Raw(module + "\n" + name + "\n");
    public PickleWriter Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op('X');
        _s.Write(BitConverter.GetBytes(b.Length));
        _s.Write(b);
        return this;
    }
    public PickleWriter Int(byte v) => Op('K').Op(v);
    public PickleWriter Raw(string ascii) { _s.Write(Encoding.ASCII.GetBytes(ascii)); return this; }

    /// <summary>Pushes the persistent id <c>('storage', torch.&lt;type&gt;, key, 'cpu', numel)</c> and loads it.</summary>
    public PickleWriter Storage(string type, string key, byte numel) =>
        Op('(').Str("storage").Global("torch", type).Str(key).Str("cpu").Int(numel).Op('t').Op('Q');

    /// <summary>Pushes <c>_rebuild_tensor_v2(&lt;storage&gt;, offset, (size,), (1,), False, OrderedDict())</c> for a 1-D tensor.</summary>
    public PickleWriter Tensor1D(Action<PickleWriter> storage, byte offset, byte size)
    {
        Global("torch._utils", "_rebuild_tensor_v2").Op('(');
        storage(this);
        Int(offset).Int(size).Op(0x85).Int(1).Op(0x85).Op(0x89).Global("collections", "OrderedDict").Op(')').Op('R').Op('t').Op('R');
        return this;
    }

    public byte[] ToArray() => _s.ToArray();

    /// <summary>A zip laid out as torch.save's: <c>archive/data.pkl</c>, <c>archive/data/&lt;key&gt;</c>, <c>archive/version</c>.</summary>
    public static void WriteZip(string path, byte[] pickle, params (string Key, byte[] Data)[] storages)
    {
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        Add(zip, "archive/data.pkl", pickle);
        foreach (var (key, data) in storages) Add(zip, "archive/data/" + key, data);
        Add(zip, "archive/version", "3\n"u8.ToArray());
    }

    private static void Add(ZipArchive zip, string name, byte[] data)
    {
        using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
        s.Write(data);
    }
}
