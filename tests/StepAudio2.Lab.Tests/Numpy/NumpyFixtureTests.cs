using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Numpy;

/// <summary>Arrays written by numpy itself (reference-data/make_numpy_fixtures.py) read back bit-exactly.</summary>
public sealed class NumpyFixtureTests
{
    internal sealed record Expected(string File, string? Member, string Descr, DType DType, int[] Shape, bool FortranOrder, int[] Version, byte[] Raw);

    internal static readonly IReadOnlyList<Expected> Manifest = LoadManifest();

    private static IReadOnlyList<Expected> LoadManifest()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("numpy", "manifest.json")));
        return doc.RootElement.EnumerateArray().Select(e => new Expected(
            e.GetProperty("file").GetString()!,
            e.GetProperty("member").ValueKind == JsonValueKind.Null ? null : e.GetProperty("member").GetString(),
            e.GetProperty("descr").GetString()!,
            Enum.Parse<DType>(e.GetProperty("dtype").GetString()!),
            e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            e.GetProperty("fortran_order").GetBoolean(),
            e.GetProperty("version").EnumerateArray().Select(x => x.GetInt32()).ToArray(),
            Convert.FromHexString(e.GetProperty("raw_hex").GetString()!))).ToList();
    }

    public static IEnumerable<object[]> NpyCases() => Manifest.Where(e => e.Member is null).Select(e => new object[] { e.File });
    public static IEnumerable<object[]> NpzCases() => Manifest.Where(e => e.Member is not null).Select(e => new object[] { e.File, e.Member! });

    private static Expected Find(string file, string? member = null) => Manifest.Single(e => e.File == file && e.Member == member);

    private static void AssertMatches(Expected e, Tensor t)
    {
        Assert.Equal(e.DType, t.DType);
        Assert.Equal(e.Shape, t.Shape);
        Assert.Equal(Convert.ToHexString(e.Raw), Convert.ToHexString(t.Contiguous().ContiguousBytes()));
    }

    [Fact]
    public void ManifestCoversEveryDtypeByteOrderLayoutAndVersion()
    {
        var npy = Manifest.Where(e => e.Member is null).ToList();
        Assert.Equal(9, npy.Select(e => e.DType).Distinct().Count());
        Assert.Contains(npy, e => e.Descr.StartsWith('>'));
        Assert.Contains(npy, e => e.FortranOrder && e.Descr.StartsWith('>'));
        Assert.Contains(npy, e => e.Shape.Length == 0);
        Assert.Contains(npy, e => e.Shape.Contains(0));
        Assert.Contains(npy, e => e.Version[0] == 2);
        Assert.Contains(npy, e => e.Version[0] == 3);
        Assert.Equal(3, Manifest.Where(e => e.Member is not null).Select(e => e.File).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(NpyCases))]
    public void NpyFromNumpyReadsBitExactly(string file)
    {
        var e = Find(file);
        string path = TestPaths.Fixture("numpy", file);

        var header = NpyReader.ReadHeader(path);
        Assert.Equal((e.Version[0], e.Version[1]), header.Version);
        Assert.Equal(e.Descr, header.Descr);
        Assert.Equal(e.FortranOrder, header.FortranOrder);
        Assert.Equal(0, header.DataOffset % 64); // numpy aligns data to 64 bytes

        AssertMatches(e, NpyReader.Read(path));
        using (var stream = File.OpenRead(path)) AssertMatches(e, NpyReader.Read(stream, file));

        var mapped = NpyReader.Read(path, map: true);
        try
        {
            AssertMatches(e, mapped);
            // Little-endian (or one-byte) non-empty data is served from the file's pages; big-endian is swapped into managed memory.
            Assert.Equal(!e.Descr.StartsWith('>') && e.Raw.Length > 0, mapped.Storage.IsMapped);
            // Fortran order is a column-major view, not a reordering copy.
            if (e.FortranOrder && e.Shape.Length > 1) Assert.False(mapped.IsContiguous);
        }
        finally { mapped.Storage.Dispose(); }
    }

    [Theory]
    [MemberData(nameof(NpyCases))]
    public void NpyFileSourceListsAndLoadsTheArray(string file)
    {
        var e = Find(file);
        string path = TestPaths.Fixture("numpy", file);
        using var source = NpyFile.Open(path);
        string name = Path.GetFileNameWithoutExtension(file);
        var info = Assert.Single(source.Tensors);
        Assert.Equal(name, info.Name);
        Assert.Equal(e.DType, info.DType);
        Assert.Equal(e.Shape, info.Shape);
        Assert.Equal(e.Raw.Length, info.ByteLength);
        Assert.True(source.Contains(name));
        Assert.False(source.Contains("other"));
        AssertMatches(e, source.Get(name));
        AssertMatches(e, source.Get(name)); // second call reuses the mapping
        var missing = Assert.ThrowsAny<LabDataException>(() => source.Get("other"));
        Assert.Equal("other", missing.Key);
    }

    [Theory]
    [MemberData(nameof(NpzCases))]
    public void NpzMemberFromNumpyReadsBitExactly(string file, string member)
    {
        var e = Find(file, member);
        using var npz = NpzFile.Open(TestPaths.Fixture("numpy", file));
        Assert.True(npz.Contains(member));
        var info = npz.Tensors.Single(t => t.Name == member);
        Assert.Equal(e.DType, info.DType);
        Assert.Equal(e.Shape, info.Shape);
        Assert.Equal(e.FortranOrder, npz.Header(member).FortranOrder);
        AssertMatches(e, npz.Get(member));
    }

    [Theory]
    [InlineData("savez.npz")]
    [InlineData("savez_compressed.npz")]
    [InlineData("handmade.npz")]
    public void NpzListsMembersInArchiveOrderAndSkipsNonArrays(string file)
    {
        using var npz = NpzFile.Open(TestPaths.Fixture("numpy", file));
        var expected = Manifest.Where(e => e.File == file).Select(e => e.Member).ToArray();
        Assert.Equal(expected, npz.Tensors.Select(t => t.Name).ToArray());
        Assert.False(npz.Contains("README.txt"));
        Assert.False(npz.Contains("README"));
        var missing = Assert.ThrowsAny<LabDataException>(() => npz.Get("nope"));
        Assert.Equal("nope", missing.Key);
        Assert.Contains(file, missing.Message);
    }

    public static IEnumerable<object[]> WriterIdentityCases() =>
        Manifest.Where(e => e.Member is null && !e.FortranOrder && !e.Descr.StartsWith('>') && e.Version[0] == 1)
            .Select(e => new object[] { e.File });

    /// <summary>Our writer reproduces numpy's np.save output byte for byte (header layout, padding, data).</summary>
    [Theory]
    [MemberData(nameof(WriterIdentityCases))]
    public void WriterMatchesNumpyByteForByte(string file)
    {
        string path = TestPaths.Fixture("numpy", file);
        var tensor = NpyReader.Read(path);
        using var ms = new MemoryStream();
        NpyWriter.Write(ms, tensor);
        Assert.Equal(Convert.ToHexString(File.ReadAllBytes(path)), Convert.ToHexString(ms.ToArray()));
    }

    [Fact]
    public void WriterTurnsFortranAndBigEndianIntoNumpysCOrderLittleEndianBytes()
    {
        // numpy would write the same array, once made C-contiguous little-endian, exactly like c_i2_le.npy's layout.
        var e = Find("f_i2_be.npy");
        var tensor = NpyReader.Read(TestPaths.Fixture("numpy", "f_i2_be.npy"));
        using var ms = new MemoryStream();
        NpyWriter.Write(ms, tensor);
        byte[] bytes = ms.ToArray();
        var header = NpyWriter.BuildHeader(DType.I16, e.Shape);
        Assert.Equal(header, bytes[..header.Length]);
        Assert.Equal(e.Raw, bytes[header.Length..]);
        Assert.Contains("'descr': '<i2', 'fortran_order': False, 'shape': (3, 5), }", System.Text.Encoding.ASCII.GetString(header));
    }
}
