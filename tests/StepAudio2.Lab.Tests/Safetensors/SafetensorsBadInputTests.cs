using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;

namespace StepAudio2.Lab.Tests.Safetensors;

/// <summary>Every header fault gives a <see cref="SafetensorsFormatException"/> naming the file, the fault and, where known, key and offset.</summary>
public sealed class SafetensorsBadInputTests
{
    private sealed record Case(byte[] Bytes, string Fault, string? Key = null);

    private static byte[] Prefix(ulong n, int totalLength)
    {
        var b = new byte[totalLength];
        BinaryPrimitives.WriteUInt64LittleEndian(b, n);
        return b;
    }

    private static Case Header(string json, string fault, string? key = null, int data = 16) => new(Craft.File(json, data), fault, key);

    private const string Good = "\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]";

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["empty-file"] = new([], "file is 0 bytes, shorter than the 8-byte header length prefix"),
        ["5-byte-file"] = new([1, 2, 3, 4, 5], "file is 5 bytes, shorter than the 8-byte header length prefix"),
        ["header-longer-than-file"] = new(Prefix(200, 64), "header length 200 is larger than the 56 bytes after the length prefix"),
        ["header-length-2^64-1"] = new(Prefix(ulong.MaxValue, 16), $"header length {ulong.MaxValue} exceeds the 100000000-byte limit"),
        ["header-length-2^40"] = new(Prefix(1UL << 40, 16), "header length 1099511627776 exceeds the 100000000-byte limit"),
        ["zero-header-length"] = new(Prefix(0, 8), "header is empty"),
        ["invalid-utf8"] = new(Craft.Raw([.. "{\"a"u8, 0xFF, 0xFE, .. "\":{}}"u8]), "header is not valid UTF-8"),
        ["not-json"] = Header("not json at all", "header is not valid JSON"),
        ["truncated-json"] = Header("{\"a\":{\"dtype\":\"F32\"", "header is not valid JSON"),
        ["trailing-garbage"] = Header("{} x", "header is not valid JSON"),
        ["two-objects"] = Header("{}{}", "header is not valid JSON"),
        ["comment"] = Header("{/* c */}", "header is not valid JSON"),
        ["trailing-comma"] = Header("{\"a\":{" + Good + "},}", "header is not valid JSON"),
        ["nul-padding"] = new(Craft.Raw([.. "{}"u8, 0, 0, 0, 0, 0, 0], pad: false), "header is not valid JSON"),
        ["array-root"] = Header("[1,2]", "header is a JSON array, expected an object"),
        ["string-root"] = Header("\"x\"", "header is a JSON string, expected an object"),
        ["null-root"] = Header("null", "header is a JSON null, expected an object"),
        ["entry-not-object"] = Header("{\"a\":5}", "entry is a JSON number, expected an object", "a"),
        ["missing-dtype"] = Header("{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]}}", "entry lacks 'dtype'", "a"),
        ["missing-shape"] = Header("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", "entry lacks 'shape'", "a"),
        ["missing-offsets"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}}", "entry lacks 'data_offsets'", "a"),
        ["dtype-number"] = Header("{\"a\":{\"dtype\":5,\"shape\":[2,2],\"data_offsets\":[0,16]}}", "'dtype' is a JSON number, expected a string", "a"),
        ["shape-string"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":\"2x2\",\"data_offsets\":[0,16]}}", "'shape' is a JSON string, expected an array of integers", "a"),
        ["shape-fraction"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,16]}}", "shape dimension 1.5 is not an integer", "a"),
        ["shape-bool"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[true],\"data_offsets\":[0,16]}}", "shape dimension is a JSON boolean, expected an integer", "a"),
        ["offsets-object"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":{}}}", "'data_offsets' is a JSON object, expected [begin, end]", "a"),
        ["offsets-one"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16]}}", "'data_offsets' has 1 value(s), expected [begin, end]", "a"),
        ["offsets-three"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8,16]}}", "'data_offsets' has more than two values", "a"),
        ["offsets-strings"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[\"0\",\"16\"]}}", "data_offsets value is a JSON string, expected an integer", "a"),
        ["offsets-negative"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[-16,0]}}", "negative data offset -16", "a"),
        ["offsets-beyond-int64"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,99999999999999999999]}}", "data_offsets value 99999999999999999999 is not an integer in the signed 64-bit range", "a"),
        ["unknown-dtype"] = Header("{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2,2],\"data_offsets\":[0,4]}}", "unknown dtype 'F8_E4M3'", "a"),
        ["lowercase-dtype"] = Header("{\"a\":{\"dtype\":\"f32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", "unknown dtype 'f32'", "a"),
        ["negative-dim"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,16]}}", "negative dimension -1 in shape", "a"),
        ["dim-beyond-int32"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296],\"data_offsets\":[0,16]}}", "dimension 4294967296 in shape exceeds 2147483647", "a"),
        ["element-count-overflow"] = Header("{\"a\":{\"dtype\":\"F64\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,16]}}", "element count of shape [2147483647, 2147483647, 2147483647] overflows", "a"),
        ["byte-count-overflow"] = Header("{\"a\":{\"dtype\":\"I64\",\"shape\":[2147483647,2147483647,4],\"data_offsets\":[0,16]}}", "element count of shape [2147483647, 2147483647, 4] overflows", "a"),
        ["rank-65"] = Header("{\"a\":{\"dtype\":\"U8\",\"shape\":[" + string.Join(",", Enumerable.Repeat(1, 65)) + "],\"data_offsets\":[0,1]}}", "shape has more than 64 dimensions", "a"),
        ["begin-after-end"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", "data_offsets [16, 0] has begin > end", "a"),
        ["offsets-outside-data"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}", "data_offsets [16, 32] lie outside the 16-byte data section", "a"),
        ["size-mismatch"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}", "shape [2, 2] of F32 needs 16 bytes but data_offsets [0, 12] span 12", "a"),
        ["huge-shape-small-range"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[1000000000,1000000000],\"data_offsets\":[0,16]}}", "shape [1000000000, 1000000000] of F32 needs 4000000000000000000 bytes but data_offsets [0, 16] span 16", "a"),
        ["overlap"] = Header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", "data [4, 12) overlaps 'a' [0, 8)", "b"),
        ["overlap-contained"] = Header("{\"big\":{\"dtype\":\"U8\",\"shape\":[16],\"data_offsets\":[0,16]},\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]},\"c\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}}", "overlaps 'big' [0, 16)", "b"),
        ["duplicate-key"] = Header("{\"a\":{" + Good + "},\"a\":{" + Good + "}}", "duplicate key in header", "a", 32),
        ["duplicate-key-escaped"] = Header("{\"a\":{" + Good + "},\"\\u0061\":{" + Good + "}}", "duplicate key in header", "a", 32),
        ["duplicate-field"] = Header("{\"a\":{" + Good + ",\"dtype\":\"F32\"}}", "entry has 'dtype' twice", "a"),
        ["metadata-array"] = Header("{\"__metadata__\":[1]}", "__metadata__ is a JSON array, expected an object of strings", "__metadata__"),
        ["metadata-number-value"] = Header("{\"__metadata__\":{\"format\":\"pt\",\"step\":5}}", "__metadata__ value is a JSON number, expected a string", "__metadata__.step"),
        ["lone-surrogate"] = Header("{\"\\ud800\":{" + Good + "}}", "header holds an invalid JSON string"),
        ["deep-nesting"] = Header("{\"a\":{" + Good + ",\"x\":" + new string('[', 100) + new string(']', 100) + "}}", "header is not valid JSON"),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void BadHeaderThrowsTypedExceptionNamingFileAndFault(string caseName)
    {
        var c = Cases[caseName];
        using var tmp = TestPaths.Temp();
        string path = tmp.File(caseName + ".safetensors");
        File.WriteAllBytes(path, c.Bytes);

        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.IsAssignableFrom<LabDataException>(ex);
        Assert.Equal(path, ex.FilePath);
        Assert.StartsWith(path, ex.Message);
        Assert.Contains(c.Fault, ex.Fault);
        Assert.Contains(c.Fault, ex.Message);
        Assert.Equal(c.Key, ex.Key);
        if (c.Key is not null) Assert.Contains($"[{c.Key}]", ex.Message);
        Assert.NotNull(ex.ByteOffset);
        Assert.InRange(ex.ByteOffset!.Value, 0, Math.Max(0, c.Bytes.Length));
        // The file is released: it can be deleted and rewritten after a failed open.
        File.WriteAllBytes(path, [0]);
    }

    [Fact]
    public void ErrorOffsetsPointAtTheOffendingToken()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("off.safetensors");
        string json = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}";
        File.WriteAllBytes(path, Craft.File(json, 16));
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.Equal(8 + json.IndexOf("-2", StringComparison.Ordinal), ex.ByteOffset);
        Assert.Contains($"@ byte {ex.ByteOffset}", ex.Message);
    }

    [Fact]
    public void HeaderLengthJustOverTheLimitIsRefusedEvenWhenTheFileIsLargeEnough()
    {
        // A sparse 101 MB file: the length prefix fits the file, but the 100 MB header limit still applies.
        using var tmp = TestPaths.Temp();
        string path = tmp.File("big.safetensors");
        using (var fs = new FileStream(path, FileMode.CreateNew))
        {
            fs.Write(Prefix(100_000_001, 8));
            fs.SetLength(101_000_000);
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000, "refusing the header must not read or allocate it");
        Assert.Contains("header length 100000001 exceeds the 100000000-byte limit", ex.Message);
    }

    [Theory]
    [InlineData("header-length-2^64-1")]
    [InlineData("header-length-2^40")]
    [InlineData("header-longer-than-file")]
    [InlineData("element-count-overflow")]
    [InlineData("huge-shape-small-range")]
    [InlineData("dim-beyond-int32")]
    public void HugeDeclaredSizesFailFastWithoutAllocating(string caseName)
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("huge.safetensors");
        File.WriteAllBytes(path, Cases[caseName].Bytes);
        Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path)); // warm up (JIT, type loading)

        var sw = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        sw.Stop();
        Assert.True(allocated < 256 * 1024, $"{caseName}: allocated {allocated} bytes");
        Assert.True(sw.ElapsedMilliseconds < 2000, $"{caseName}: took {sw.ElapsedMilliseconds} ms");
    }

    [Fact]
    public void ZeroLengthTensorsNeverOverlap()
    {
        // An empty tensor may sit anywhere, even inside another's range: it claims no bytes.
        using var tmp = TestPaths.Temp();
        string path = tmp.File("empty.safetensors");
        File.WriteAllBytes(path, Craft.File("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[8,8]}}", 16));
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a", "e"], file.Entries.Select(e => e.Name));
        Assert.Equal(0, file.Get("e").ElementCount);
        Assert.Equal([0, 5], file.Get("e").Shape);
    }

    [Fact]
    public void NullMetadataIsAcceptedAsNone()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("nullmeta.safetensors");
        File.WriteAllBytes(path, Craft.File("{\"__metadata__\":null,\"a\":{" + Good + "}}", 16));
        using var file = SafetensorsFile.Open(path);
        Assert.Empty(file.Metadata);
        Assert.Single(file.Entries);
    }

    [Fact]
    public void FuzzedHeadersNeverEscapeAsAnythingButTheTypedException()
    {
        // Mutate a valid header byte by byte: every outcome is either a successful open or SafetensorsFormatException.
        byte[] valid = File.ReadAllBytes(ExpectedFixture.AllDtypesFile);
        long n = BinaryPrimitives.ReadInt64LittleEndian(valid);
        var rng = new Random(42);
        using var tmp = TestPaths.Temp();
        byte[] interesting = "{}[],:\"\\-0123456789e. x\0"u8.ToArray();
        int opened = 0, refused = 0;
        for (int i = 0; i < 400; i++)
        {
            var bytes = (byte[])valid.Clone();
            int edits = rng.Next(1, 4);
            for (int k = 0; k < edits; k++)
            {
                int at = rng.Next(0, (int)(8 + n));
                bytes[at] = rng.Next(3) == 0 ? (byte)rng.Next(256) : interesting[rng.Next(interesting.Length)];
            }
            string path = tmp.File($"f{i}.safetensors");
            File.WriteAllBytes(path, bytes);
            try
            {
                using var file = SafetensorsFile.Open(path);
                foreach (var e in file.Entries) _ = file.Get(e.Name).ToDoubleArray();
                opened++;
            }
            catch (SafetensorsFormatException ex)
            {
                Assert.Equal(path, ex.FilePath);
                refused++;
            }
            File.Delete(path);
        }
        Assert.True(refused > 100, $"only {refused} mutations refused");
        Assert.True(opened + refused == 400);
    }
}
