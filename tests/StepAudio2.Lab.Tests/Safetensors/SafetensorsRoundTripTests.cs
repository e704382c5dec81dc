using System.Buffers.Binary;
using CsCheck;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Safetensors;

public sealed class SafetensorsRoundTripTests
{
    private static readonly DType[] AllDTypes = Enum.GetValues<DType>();

    /// <summary>Random bytes, except that bool elements must be 0/1 to be meaningful.</summary>
    private static byte[] RandomBytes(Random rng, DType dtype, long elements)
    {
        var bytes = new byte[elements * dtype.SizeOf()];
        rng.NextBytes(bytes);
        if (dtype == DType.Bool) for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        return bytes;
    }

    /// <summary>The bytes of a strided view in row-major logical order, computed from the raw source bytes by explicit index arithmetic.</summary>
    private static byte[] LogicalBytes(byte[] source, int size, int[] shape, long[] strides, long offset)
    {
        long n = Tensor.CountElements(shape);
        var result = new byte[n * size];
        var idx = new int[shape.Length];
        for (long k = 0; k < n; k++)
        {
            long pos = offset;
            for (int d = 0; d < shape.Length; d++) pos += idx[d] * strides[d];
            Array.Copy(source, pos * size, result, k * size, size);
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return result;
    }

    [Fact]
    public void EveryDtypeRoundTripsBitExactly()
    {
        using var tmp = TestPaths.Temp();
        var rng = new Random(1234);
        var expected = new Dictionary<string, (DType DType, int[] Shape, byte[] Bytes)>();
        int[][] shapes = [[], [0], [3], [2, 5], [2, 0, 3], [1, 3, 4, 2]];
        foreach (var dtype in AllDTypes)
            for (int s = 0; s < shapes.Length; s++)
            {
                var bytes = RandomBytes(rng, dtype, Tensor.CountElements(shapes[s]));
                expected[$"{dtype}.{s}"] = (dtype, shapes[s], bytes);
            }
        string path = tmp.File("all.safetensors");
        SafetensorsWriter.Write(path, expected.Select(kv => KeyValuePair.Create(kv.Key, Tensor.FromBytes(kv.Value.Bytes, kv.Value.DType, kv.Value.Shape))));

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(expected.Count, file.Tensors.Count);
        Assert.Empty(file.Metadata);
        foreach (var (name, (dtype, shape, bytes)) in expected)
        {
            var t = file.Get(name);
            Assert.Equal(dtype, t.DType);
            Assert.Equal(shape, t.Shape);
            Assert.Equal(bytes, t.ContiguousBytes().ToArray());
            Assert.Equal(bytes, file.GetBytes(name).ToArray());
        }
        // Data-offset order, every element aligned to its size (the writer's dtype ordering guarantees it).
        long prevEnd = 0;
        foreach (var e in file.Entries)
        {
            Assert.Equal(prevEnd, e.Begin);
            Assert.Equal(0, (file.Header.DataStart + e.Begin) % e.DType.SizeOf());
            prevEnd = e.End;
        }
        Assert.Equal(file.FileLength, file.Header.DataStart + prevEnd);
        Assert.Equal(0, file.Header.HeaderLength % 8);
    }

    [Fact]
    public void StridedViewsAreWrittenInLogicalOrder()
    {
        using var tmp = TestPaths.Temp();
        var rng = new Random(99);
        var views = new Dictionary<string, (Tensor View, byte[] Expected)>();
        foreach (var dtype in AllDTypes)
        {
            int size = dtype.SizeOf();
            var raw = RandomBytes(rng, dtype, 2 * 3 * 4);
            var src = Tensor.FromBytes(raw, dtype, 2, 3, 4);
            Tensor[] cases =
            [
                src.Transpose(),                  // [2,4,3], inner stride 4
                src.Permute(2, 0, 1),             // [4,2,3]
                src.Slice(2, 1, 2),               // [2,3,2], offset 1, inner stride 1, gaps between rows
                src.Select(2, 3),                 // [2,3], inner stride 4, offset 3
                src.Permute(1, 2, 0).Slice(0, 1, 2), // [2,4,2], offset 4
            ];
            for (int i = 0; i < cases.Length; i++)
            {
                var v = cases[i];
                if (i < 2 || i == 3 || i == 4) Assert.False(v.IsContiguous);
                views[$"{dtype}.view{i}"] = (v, LogicalBytes(raw, size, v.Shape, v.Strides, v.Offset));
            }
        }
        string path = tmp.File("views.safetensors");
        SafetensorsWriter.Write(path, views.Select(kv => KeyValuePair.Create(kv.Key, kv.Value.View)));

        using var file = SafetensorsFile.Open(path);
        foreach (var (name, (view, expected)) in views)
        {
            var t = file.Get(name);
            Assert.Equal(view.Shape, t.Shape);
            Assert.Equal(expected, t.ContiguousBytes().ToArray());
        }
    }

    [Fact]
    public void LargeTransposedTensorIsGatheredAcrossBufferBoundaries()
    {
        // 700×900 f32 = 2.5 MB, more than the writer's 1 MB gather buffer; inner stride != 1 and == 1 paths.
        using var tmp = TestPaths.Temp();
        var rng = new Random(5);
        var raw = RandomBytes(rng, DType.F32, 900 * 700);
        var src = Tensor.FromBytes(raw, DType.F32, 900, 700);
        var transposed = src.Transpose();
        var sliced = src.Slice(1, 3, 690);
        string path = tmp.File("large.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("t", transposed), KeyValuePair.Create("s", sliced)]);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(LogicalBytes(raw, 4, transposed.Shape, transposed.Strides, transposed.Offset), file.GetBytes("t").ToArray());
        Assert.Equal(LogicalBytes(raw, 4, sliced.Shape, sliced.Strides, sliced.Offset), file.GetBytes("s").ToArray());
    }

    [Fact]
    public void RandomShapesAndDtypesRoundTrip()
    {
        var genTensor = Gen.Select(Gen.Int[0, AllDTypes.Length - 1], Gen.Int[0, 5].Array[0, 4], Gen.Bool, Gen.Int,
            (d, shape, transpose, seed) => (DType: AllDTypes[d], Shape: shape, Transpose: transpose, Seed: seed));
        genTensor.Array[1, 6].Sample(specs =>
        {
            using var tmp = TestPaths.Temp();
            var expected = new List<(string Name, DType DType, int[] Shape, byte[] Bytes, Tensor Input)>();
            for (int i = 0; i < specs.Length; i++)
            {
                var (dtype, shape, transpose, seed) = specs[i];
                var raw = RandomBytes(new Random(seed), dtype, Tensor.CountElements(shape));
                var t = Tensor.FromBytes(raw, dtype, shape);
                byte[] logical = raw;
                if (transpose && t.Rank >= 2)
                {
                    t = t.Transpose();
                    logical = LogicalBytes(raw, dtype.SizeOf(), t.Shape, t.Strides, t.Offset);
                }
                expected.Add(($"t{i}.{seed}", dtype, t.Shape, logical, t));
            }
            var meta = new Dictionary<string, string> { ["n"] = specs.Length.ToString() };
            string path = tmp.File("p.safetensors");
            SafetensorsWriter.Write(path, expected.Select(e => KeyValuePair.Create(e.Name, e.Input)), meta);
            using var file = SafetensorsFile.Open(path);
            Assert.Equal(meta, file.Metadata);
            Assert.Equal(expected.Count, file.Entries.Count);
            foreach (var e in expected)
            {
                var got = file.Get(e.Name);
                Assert.Equal(e.DType, got.DType);
                Assert.Equal(e.Shape, got.Shape);
                Assert.True(got.Storage.IsMapped);
                Assert.Equal(e.Bytes, got.ContiguousBytes().ToArray());
            }
        }, iter: 150, threads: 1);
    }

    [Fact]
    public unsafe void GetIsAZeroCopyViewOfTheFileRange()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("z.safetensors");
        var bits = Enumerable.Range(0, 64).Select(i => (ushort)(0x3F80 + i)).ToArray();
        SafetensorsWriter.Write(path, [KeyValuePair.Create("w", Tensor.FromBFloat16Bits(bits, 8, 8)), KeyValuePair.Create("b", Tensor.FromArray(new long[] { 1, -2, 3 }, 3))]);
        byte[] onDisk = File.ReadAllBytes(path);

        using var file = SafetensorsFile.Open(path);
        foreach (var e in file.Entries)
        {
            var t = file.Get(e.Name);
            Assert.True(t.Storage.IsMapped);
            Assert.Equal(Path.GetFullPath(path), t.Storage.Origin);
            Assert.Equal(e.DType, t.DType); // bf16 stays bf16
            long start = file.Header.DataStart + e.Begin;
            var span = t.ContiguousBytes();
            fixed (byte* p = span) Assert.True(p == t.Storage.Pointer + start, "tensor bytes must be the mapped file bytes, not a copy");
            Assert.Equal(onDisk.AsSpan((int)start, (int)e.ByteLength).ToArray(), span.ToArray());
        }
        Assert.Equal(bits, file.Get("w").AsSpan<ushort>().ToArray());
        // Two Gets share the one mapping.
        Assert.Same(file.Get("w").Storage, file.Get("b").Storage);
    }

    [Fact]
    public void MetadataRoundTripsIncludingCharactersThatNeedEscaping()
    {
        using var tmp = TestPaths.Temp();
        var meta = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["quote\"back\\slash"] = "ctl\u0001\u001f tab\t nl\n",
            ["unicode é 😀"] = "ｆｕｌｌ\u007f",
            ["empty"] = "",
        };
        string path = tmp.File("m.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("x\"\n😀", Tensor.FromArray(new[] { 1f }, 1))], meta);
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(meta.OrderBy(kv => kv.Key), file.Metadata.OrderBy(kv => kv.Key));
        Assert.Equal(["x\"\n😀"], file.Entries.Select(e => e.Name));
        Assert.Equal(1f, file.Get("x\"\n😀").GetDouble(0));
    }

    [Fact]
    public void WriteReplacesTheTargetAtomicallyAndLeavesNoTemporaryFiles()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("a.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("v", Tensor.FromArray(new[] { 1f, 2f }, 2))]);
        using (var first = SafetensorsFile.Open(path))
        {
            var old = first.Get("v");
            SafetensorsWriter.Write(path, [KeyValuePair.Create("v", Tensor.FromArray(new[] { 3f, 4f, 5f }, 3))]);
            // The open mapping still sees the file it mapped (rename replaced the directory entry, not the bytes).
            Assert.Equal([1f, 2f], old.ToFloatArray());
        }
        using (var second = SafetensorsFile.Open(path))
            Assert.Equal([3f, 4f, 5f], second.Get("v").ToFloatArray());
        Assert.Equal(["a.safetensors"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName));
    }

    [Fact]
    public void FailedWriteLeavesTheTargetUntouched()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("keep.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("v", Tensor.FromArray(new[] { 7f }, 1))]);
        byte[] before = File.ReadAllBytes(path);

        // A tensor over a disposed mapping fails only when its data is copied, after the header was written.
        string other = tmp.File("other.safetensors");
        SafetensorsWriter.Write(other, [KeyValuePair.Create("w", Tensor.FromArray(new[] { 1f, 2f }, 2))]);
        var file = SafetensorsFile.Open(other);
        var dead = file.Get("w");
        file.Dispose();
        Assert.Throws<ObjectDisposedException>(() =>
            SafetensorsWriter.Write(path, [KeyValuePair.Create("a", Tensor.FromArray(new[] { 1.0 }, 1)), KeyValuePair.Create("w", dead)]));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal(["keep.safetensors", "other.safetensors"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName).Order());
    }

    [Fact]
    public void WriterRejectsReservedAndDuplicateNames()
    {
        using var tmp = TestPaths.Temp();
        var t = Tensor.FromArray(new[] { 1f }, 1);
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(tmp.File("r"), [KeyValuePair.Create("__metadata__", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(tmp.File("d"), [KeyValuePair.Create("a", t), KeyValuePair.Create("a", t)]));
        Assert.Throws<ArgumentException>(() => SafetensorsWriter.Write(tmp.File("s"), [KeyValuePair.Create("bad\ud800", t)]));
        Assert.Empty(Directory.GetFiles(tmp.Path));
    }

    [Fact]
    public void ReaderAcceptsGapsAnyKeyOrderAndUnknownEntryFields()
    {
        // Keys out of data order, a 4-byte gap between tensors, trailing unused bytes, an unknown field.
        using var tmp = TestPaths.Temp();
        string path = tmp.File("gaps.safetensors");
        var bytes = Craft.File("""{"b":{"data_offsets":[12,20],"shape":[2],"dtype":"I32","note":{"x":[1,2]}},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 24);
        File.WriteAllBytes(path, bytes);
        int dataStart = bytes.Length - 24;
        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["a", "b"], file.Entries.Select(e => e.Name));
        Assert.Equal(dataStart, file.Header.DataStart);
        var a = file.Get("a").ToFloatArray();
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart)), a[0]);
        Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(dataStart + 4)), a[1]);
        Assert.Equal(BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(dataStart + 16)), file.Get("b").ToInt64Array()[1]);
    }

    [Fact]
    public void MisalignedDataIsCopiedRatherThanMisread()
    {
        // No header padding: the data section starts at an odd offset, so an F32 tensor cannot be an element offset of the map.
        using var tmp = TestPaths.Temp();
        string path = tmp.File("odd.safetensors");
        string header = """{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]}}""";
        Assert.NotEqual(0, (8 + header.Length) % 4);
        var bytes = Craft.File(header, 12, pad: false);
        File.WriteAllBytes(path, bytes);
        using var file = SafetensorsFile.Open(path);
        var t = file.Get("a");
        Assert.False(t.Storage.IsMapped);
        int start = 8 + header.Length;
        Assert.Equal(Enumerable.Range(0, 3).Select(i => BinaryPrimitives.ReadSingleLittleEndian(bytes.AsSpan(start + 4 * i))), t.ToFloatArray());
    }

    [Fact]
    public void GetOfAnAbsentNameThrowsWeightExceptionNamingFileAndKey()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("k.safetensors");
        SafetensorsWriter.Write(path, [KeyValuePair.Create("present", Tensor.FromArray(new[] { 1f }, 1))]);
        using var file = SafetensorsFile.Open(path);
        Assert.True(file.Contains("present"));
        Assert.False(file.Contains("absent"));
        var ex = Assert.Throws<WeightException>(() => file.Get("absent"));
        Assert.Equal("absent", ex.Key);
        Assert.Contains(path, ex.Message);
    }
}
