using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Safetensors;

/// <summary>One tensor as recorded by reference-data/make_safetensors_fixtures.py in its expected-values JSON.</summary>
internal sealed record ExpectedTensor(string Name, DType DType, int[] Shape, long Begin, long End, byte[] Bytes, ulong[]? F64Bits, long[]? Ints, string? Shard);

/// <summary>Reads the expected-values sidecars written by the Python fixture script.</summary>
internal static class ExpectedFixture
{
    public static string Folder => TestPaths.Fixture("safetensors");
    public static string AllDtypesFile => Path.Combine(Folder, "all_dtypes.safetensors");
    public static string AllDtypesJson => Path.Combine(Folder, "all_dtypes.expected.json");
    public static string ShardedFolder => Path.Combine(Folder, "sharded");

    public static (IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<string> Order, IReadOnlyDictionary<string, ExpectedTensor> Tensors, long HeaderLength) AllDtypes()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(AllDtypesJson));
        var root = doc.RootElement;
        var metadata = root.GetProperty("metadata").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var order = root.GetProperty("order").EnumerateArray().Select(e => e.GetString()!).ToArray();
        return (metadata, order, Tensors(root.GetProperty("tensors")), root.GetProperty("header_length").GetInt64());
    }

    public static (long TotalSize, IReadOnlyDictionary<string, ExpectedTensor> Tensors) Sharded()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(ShardedFolder, "expected.json")));
        return (doc.RootElement.GetProperty("total_size").GetInt64(), Tensors(doc.RootElement.GetProperty("tensors")));
    }

    private static Dictionary<string, ExpectedTensor> Tensors(JsonElement tensors)
    {
        var result = new Dictionary<string, ExpectedTensor>(StringComparer.Ordinal);
        foreach (var p in tensors.EnumerateObject())
        {
            var t = p.Value;
            Assert.True(DTypeInfo.TryParseSafetensorsName(t.GetProperty("dtype").GetString()!, out var dtype));
            var offsets = t.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            result[p.Name] = new ExpectedTensor(
                p.Name, dtype,
                t.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray(),
                offsets[0], offsets[1],
                Convert.FromHexString(t.GetProperty("hex").GetString()!),
                t.TryGetProperty("f64_bits", out var bits) ? bits.EnumerateArray().Select(e => Convert.ToUInt64(e.GetString(), 16)).ToArray() : null,
                t.TryGetProperty("ints", out var ints) ? ints.EnumerateArray().Select(e => e.GetInt64()).ToArray() : null,
                t.TryGetProperty("shard", out var shard) ? shard.GetString() : null);
        }
        return result;
    }
}

/// <summary>Crafts safetensors files byte by byte, for bad-input tests.</summary>
internal static class Craft
{
    /// <summary>Length prefix + header text (padded with spaces to a multiple of 8) + data bytes.</summary>
    public static byte[] File(string header, int dataBytes = 0, bool pad = true)
    {
        var json = Encoding.UTF8.GetBytes(header);
        return Raw(json, dataBytes, pad);
    }

    public static byte[] Raw(byte[] json, int dataBytes = 0, bool pad = true)
    {
        int padding = pad ? (8 - json.Length % 8) % 8 : 0;
        var bytes = new byte[8 + json.Length + padding + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(json.Length + padding));
        json.CopyTo(bytes, 8);
        bytes.AsSpan(8 + json.Length, padding).Fill((byte)' ');
        for (int i = 0; i < dataBytes; i++) bytes[8 + json.Length + padding + i] = (byte)(i * 7 + 1);
        return bytes;
    }
}

/// <summary>A fact that needs Debian's /usr/bin/python3 (with torch); skipped, visibly, only when that interpreter is absent.</summary>
internal sealed class PythonFactAttribute : FactAttribute
{
    public const string Python = "/usr/bin/python3";

    public PythonFactAttribute()
    {
        if (!System.IO.File.Exists(Python)) Skip = $"{Python} is not installed; this test needs it (with python3-torch) to run the reference verifier";
    }

    /// <summary>Runs the Python interpreter; returns exit code and combined output.</summary>
    public static (int ExitCode, string Output) Run(params string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(120_000)) { p.Kill(); throw new TimeoutException("python verifier did not finish in 120 s"); }
        return (p.ExitCode, stdout + stderr.Result);
    }
}
