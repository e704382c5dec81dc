using System.IO.Compression;
using CsCheck;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Numpy;

/// <summary>Write → read is bit-exact for every dtype, shape and view layout; writer options and output format.</summary>
public sealed class NumpyRoundTripTests
{
    private static readonly DType[] NumpyDTypes =
        [DType.F32, DType.F64, DType.F16, DType.I64, DType.I32, DType.I16, DType.I8, DType.U8, DType.Bool];

    /// <summary>A random tensor (raw random bits, so NaN payloads and subnormals too) seen through a random strided view.</summary>
    private static readonly Gen<(Tensor View, string Description)> GenView =
        from dtype in Gen.Int[0, NumpyDTypes.Length - 1].Select(i => NumpyDTypes[i])
        from shape in Gen.Int[0, 4].Array[Gen.Int[0, 4]]
        from seed in Gen.Int
        from perm in Gen.Int.Array[shape.Length]
        from sliceDim in Gen.Int[0, 3]
        from sliceStart in Gen.Int[0, 2]
        select MakeView(dtype, shape, seed, perm, sliceDim, sliceStart);

    private static (Tensor, string) MakeView(DType dtype, int[] shape, int seed, int[] permKeys, int sliceDim, int sliceStart)
    {
        long n = Tensor.CountElements(shape);
        var bytes = new byte[n * dtype.SizeOf()];
        var rng = new Random(seed);
        rng.NextBytes(bytes);
        if (dtype == DType.Bool) for (int i = 0; i < bytes.Length; i++) bytes[i] &= 1;
        var t = Tensor.FromBytes(bytes, dtype, shape);
        var axes = Enumerable.Range(0, shape.Length).OrderBy(i => permKeys[i]).ThenBy(i => i).ToArray();
        t = t.Permute(axes);
        if (t.Rank > 0)
        {
            int d = sliceDim % t.Rank;
            int start = Math.Min(sliceStart, t.Shape[d]);
            t = t.Slice(d, start, t.Shape[d] - start);
        }
        return (t, $"{dtype} base {Tensor.ShapeString(shape)} permute [{string.Join(",", axes)}] view {Tensor.ShapeString(t.Shape)} contiguous={t.IsContiguous}");
    }

    private static void AssertSameLogical(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.DType, actual.DType);
        Assert.Equal(expected.Shape, actual.Shape);
        Assert.True(expected.Contiguous().ContiguousBytes().SequenceEqual(actual.Contiguous().ContiguousBytes()));
    }

    [Fact]
    public void NpyRoundTripIsBitExactForRandomDtypesShapesAndViews()
    {
        int strided = 0;
        GenView.Sample((view, description) =>
        {
            if (!view.IsContiguous) Interlocked.Increment(ref strided); // Sample runs on several threads
            using var ms = new MemoryStream();
            NpyWriter.Write(ms, view);
            ms.Position = 0;
            var header = NpyReader.ReadHeader(ms, "roundtrip.npy");
            Assert.Equal((1, 0), header.Version);
            Assert.Equal(0, header.DataOffset % 64);
            Assert.False(header.FortranOrder);
            ms.Position = 0;
            AssertSameLogical(view, NpyReader.Read(ms, "roundtrip.npy"));
        }, iter: 400);
        Assert.True(strided > 20, $"only {strided} strided views generated"); // the generator yields far more; this guards against a degenerate generator
    }

    [Fact]
    public void NpzRoundTripIsBitExactStoredAndDeflated()
    {
        GenView.Array[1, 5].Sample(views =>
        {
            var named = views.Select((v, i) => ($"t{i}/{v.Description.Length}", v.View)).ToList();
            foreach (bool compressed in new[] { false, true })
            {
                using var ms = new MemoryStream();
                NpzWriter.Write(ms, named, new NpzWriteOptions { Compressed = compressed });
                ms.Position = 0;
                using var npz = NpzFile.Open(ms, "roundtrip.npz");
                Assert.Equal(named.Select(x => x.Item1), npz.Tensors.Select(t => t.Name));
                foreach (var (name, tensor) in named) AssertSameLogical(tensor, npz.Get(name));
            }
        }, iter: 60);
    }

    [Fact]
    public void FileRoundTripOfStridedViewReadsBackMappedAndManaged()
    {
        using var tmp = TestPaths.Temp();
        var data = Enumerable.Range(0, 2 * 3 * 4).Select(i => i * 0.5f - 3).ToArray();
        var view = Tensor.FromArray(data, 2, 3, 4).Permute(2, 0, 1).Slice(0, 1, 3); // [3, 2, 3], strided
        Assert.False(view.IsContiguous);
        string path = tmp.File("view.npy");
        NpyWriter.Write(path, view);
        Assert.Equal(view.ToFloatArray(), NpyReader.Read(path).ToFloatArray());
        var mapped = NpyReader.Read(path, map: true);
        Assert.True(mapped.Storage.IsMapped);
        Assert.Equal(view.ToFloatArray(), mapped.ToFloatArray());
        Assert.Equal(new[] { 3, 2, 3 }, mapped.Shape);
        mapped.Storage.Dispose();
        // Values spot-checked against the definition of the view: view[i,j,k] = base[j, k, i+1].
        Assert.Equal(data[(1 * 3 + 2) * 4 + (0 + 1)], NpyReader.Read(path).GetDouble(0, 1, 2));
        Assert.Empty(Directory.GetFiles(tmp.Path, "*.tmp-*"));
    }

    [Fact]
    public void HeaderSwitchesToVersion2OnlyWhenLongerThan65535Bytes()
    {
        // Each unit dimension costs 3 header characters ("1, "), so ~21 800 dims cross the 65 535-byte limit.
        foreach (int rank in new[] { 21000, 23000 })
        {
            var shape = Enumerable.Repeat(1, rank).ToArray();
            var t = Tensor.FromBytes([0x2A], DType.U8, shape);
            using var ms = new MemoryStream();
            NpyWriter.Write(ms, t);
            byte[] bytes = ms.ToArray();
            int expectedMajor = rank == 21000 ? 1 : 2;
            Assert.Equal(expectedMajor, bytes[6]);
            ms.Position = 0;
            var back = NpyReader.Read(ms, "big-header.npy");
            Assert.Equal(rank, back.Rank);
            Assert.Equal(0x2A, back.ContiguousBytes()[0]);
            Assert.Equal(0, (bytes.Length - 1) % 64);
        }
    }

    [Theory]
    [InlineData(new int[0], "()")]
    [InlineData(new[] { 7 }, "(7,)")]
    [InlineData(new[] { 0, 3 }, "(0, 3)")]
    [InlineData(new[] { 2, 3, 4 }, "(2, 3, 4)")]
    public void HeaderSpellsShapeLikePythonAndAlignsTo64(int[] shape, string tuple)
    {
        byte[] header = NpyWriter.BuildHeader(DType.F32, shape);
        string text = System.Text.Encoding.ASCII.GetString(header, 10, header.Length - 10);
        Assert.StartsWith("{'descr': '<f4', 'fortran_order': False, 'shape': " + tuple + ", }", text);
        Assert.EndsWith("\n", text);
        Assert.Equal(0, header.Length % 64);
        Assert.Equal(header.Length - 10, BitConverter.ToUInt16(header, 8));
    }

    [Fact]
    public void Bf16IsRefusedUnlessWideningIsRequested()
    {
        ushort[] bits = [0x3F80, 0xC040, 0x7F80, 0x0001]; // 1, -3, +inf, smallest bf16 subnormal
        var t = Tensor.FromBFloat16Bits(bits, 2, 2);
        using var tmp = TestPaths.Temp();
        string path = tmp.File("bf16.npy");

        var ex = Assert.Throws<ArgumentException>(() => NpyWriter.Write(path, t));
        Assert.Contains("bfloat16", ex.Message);
        Assert.False(File.Exists(path));
        var npzEx = Assert.Throws<ArgumentException>(() => NpzWriter.Write(tmp.File("bf16.npz"), [("w", t)]));
        Assert.Contains("'w'", npzEx.Message);
        Assert.False(File.Exists(tmp.File("bf16.npz")));

        NpyWriter.Write(path, t, new NpyWriteOptions { BFloat16AsFloat32 = true });
        var back = NpyReader.Read(path);
        Assert.Equal(DType.F32, back.DType);
        Assert.Equal("<f4", NpyReader.ReadHeader(path).Descr);
        // bf16 → f32 is exact: the f32 bits are the bf16 bits shifted up by 16.
        Assert.Equal(bits.Select(b => (uint)b << 16), back.AsSpan<uint>().ToArray());
    }

    [Fact]
    public void NpzWriterStoresOrDeflatesDeterministically()
    {
        var a = Tensor.FromArray(Enumerable.Range(0, 64).Select(i => (float)(i % 4)).ToArray(), 8, 8);
        var b = Tensor.FromArray(new long[] { 1, -2, 3 }, 3);
        (string, Tensor)[] items = [("a", a), ("dir/b", b)];
        foreach (var (compressed, method) in new[] { (false, (ushort)0), (true, (ushort)8) })
        {
            using var tmp = TestPaths.Temp();
            NpzWriter.Write(tmp.File("1.npz"), items, new NpzWriteOptions { Compressed = compressed });
            NpzWriter.Write(tmp.File("2.npz"), items, new NpzWriteOptions { Compressed = compressed });
            byte[] bytes = File.ReadAllBytes(tmp.File("1.npz"));
            Assert.Equal(bytes, File.ReadAllBytes(tmp.File("2.npz")));
            Assert.Equal(0x04034b50u, BitConverter.ToUInt32(bytes, 0));          // local file header
            Assert.Equal(method, BitConverter.ToUInt16(bytes, 8));             // 0 = stored, 8 = deflate
            Assert.Equal((ushort)((1 << 5) | 1), BitConverter.ToUInt16(bytes, 12)); // DOS date 1980-01-01
            using var zip = new ZipArchive(new MemoryStream(bytes));
            Assert.Equal(new[] { "a.npy", "dir/b.npy" }, zip.Entries.Select(e => e.FullName));
            using var npz = NpzFile.Open(tmp.File("1.npz"));
            Assert.Equal(a.ToFloatArray(), npz.Get("a").ToFloatArray());
            Assert.Equal(new long[] { 1, -2, 3 }, npz.Get("dir/b").ToInt64Array());
        }
    }

    [Fact]
    public void NpzWriterRejectsDuplicateAndEmptyNames()
    {
        var t = Tensor.FromArray(new[] { 1f }, 1);
        using var ms = new MemoryStream();
        Assert.Contains("duplicate", Assert.Throws<ArgumentException>(() => NpzWriter.Write(ms, [("x", t), ("x", t)])).Message);
        Assert.Contains("non-empty", Assert.Throws<ArgumentException>(() => NpzWriter.Write(ms, [("", t)])).Message);
        Assert.Equal(0, ms.Length);
    }

    [Fact]
    public void Crc32MatchesTheStandardCheckValue()
    {
        // The CRC-32/IEEE check value of "123456789", and incremental feeding gives the same result.
        Assert.Equal(0xCBF43926u, Crc32.Append(0, "123456789"u8));
        Assert.Equal(0xCBF43926u, Crc32.Append(Crc32.Append(0, "1234"u8), "56789"u8));
    }

    [Fact]
    public void NpyFileServesMappedViewsUntilDisposed()
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("weights.npy");
        NpyWriter.Write(path, Tensor.FromArray(new[] { 1f, 2f, 3f }, 3));
        var source = NpyFile.Open(path);
        var t = source.Get("weights");
        Assert.True(t.Storage.IsMapped);
        Assert.Equal(new[] { 1f, 2f, 3f }, t.ToFloatArray());
        Assert.Same(t.Storage, source.Get("weights").Storage); // one mapping per file
        source.Dispose();
        Assert.Throws<ObjectDisposedException>(() => source.Get("weights"));
        Assert.Throws<ObjectDisposedException>(() => t.ToFloatArray());
        using var unmapped = NpyFile.Open(path, map: false);
        Assert.False(unmapped.Get("weights").Storage.IsMapped);
    }
}
