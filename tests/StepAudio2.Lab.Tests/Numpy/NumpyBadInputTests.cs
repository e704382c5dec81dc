using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Numpy;

/// <summary>Malformed, truncated and hostile .npy/.npz files fail with an NpyFormatException naming file, fault and offset.</summary>
public sealed class NumpyBadInputTests
{
    private const string GoodDict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    private static readonly int GoodHeader = Npy(GoodDict, 0).Length; // 128: 10 + 60 characters padded to 64

    /// <summary>A .npy image: magic, version, length field, header text padded as numpy pads it, then data bytes 0,1,2,….</summary>
    private static byte[] Npy(string dict, int dataBytes, byte major = 1, byte minor = 0, long? headerLengthField = null, Encoding? encoding = null)
    {
        int prefix = major == 1 ? 10 : 12;
        var text = new List<byte>((encoding ?? Encoding.Latin1).GetBytes(dict));
        while ((prefix + text.Count + 1) % 64 != 0) text.Add((byte)' ');
        text.Add((byte)'\n');
        var bytes = new List<byte>([0x93, .. "NUMPY"u8, major, minor]);
        long len = headerLengthField ?? text.Count;
        if (prefix == 10) bytes.AddRange(BitConverter.GetBytes((ushort)len));
        else bytes.AddRange(BitConverter.GetBytes((uint)len));
        bytes.AddRange(text);
        for (int i = 0; i < dataBytes; i++) bytes.Add((byte)i);
        return bytes.ToArray();
    }

    private static NpyFormatException ReadBad(byte[] bytes, string fileName = "bad.npy")
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File(fileName);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<NpyFormatException>(() => NpyReader.Read(path));
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(path, ex.Message);
        // The same fault, the same way, through every entry point.
        Assert.Equal(ex.Fault, Assert.Throws<NpyFormatException>(() => NpyReader.Read(path, map: true)).Fault);
        Assert.Equal(ex.Fault, Assert.Throws<NpyFormatException>(() => NpyFile.Open(path)).Fault);
        using (var ms = new MemoryStream(bytes))
            Assert.Equal(ex.Fault, Assert.Throws<NpyFormatException>(() => NpyReader.Read(ms, fileName)).Fault);
        Assert.Equal(bytes, File.ReadAllBytes(path)); // never modified
        return ex;
    }

    [Fact]
    public void WellFormedCraftedFileReads()
    {
        // Guards the helper: everything below fails because of the one fault it introduces.
        using var ms = new MemoryStream(Npy(GoodDict, 24));
        var t = NpyReader.Read(ms, "good.npy");
        Assert.Equal(new[] { 2, 3 }, t.Shape);
        Assert.Equal(BitConverter.ToSingle([4, 5, 6, 7]), t.GetDouble(0, 1), 0);
    }

    [Fact]
    public void BadMagic()
    {
        var bytes = Npy(GoodDict, 24);
        bytes[5] = (byte)'X';
        var ex = ReadBad(bytes);
        Assert.Contains("magic", ex.Fault);
        Assert.Equal(0, ex.ByteOffset);
    }

    [Fact]
    public void TooShortForMagic()
    {
        var ex = ReadBad([0x93, (byte)'N', (byte)'U']);
        Assert.Contains("too short", ex.Fault);
        Assert.Equal(0, ex.ByteOffset);
    }

    [Theory]
    [InlineData(4, 0)]
    [InlineData(1, 1)]
    [InlineData(0, 9)]
    public void UnsupportedVersion(byte major, byte minor)
    {
        var bytes = Npy(GoodDict, 24);
        bytes[6] = major;
        bytes[7] = minor;
        var ex = ReadBad(bytes);
        Assert.Contains($"unsupported .npy format version {major}.{minor}", ex.Fault);
        Assert.Equal(6, ex.ByteOffset);
    }

    [Theory]
    [InlineData(1, 0xFFFFL)]
    [InlineData(2, 0xFFFF_FFFFL)]
    public void HeaderLengthPastEndOfFile(byte major, long length)
    {
        var ex = ReadBad(Npy(GoodDict, 24, major, 0, headerLengthField: length));
        Assert.Contains($"header length {length} runs past the end", ex.Fault);
        Assert.Equal(8, ex.ByteOffset);
    }

    [Fact]
    public void TruncatedHeaderLengthField()
    {
        var ex = ReadBad(Npy(GoodDict, 0, 2)[..10]);
        Assert.Contains("header length field is cut off", ex.Fault);
    }

    /// <param name="marker">Text whose last occurrence in the header is the character at fault ("" = the end of the header).</param>
    [Theory]
    [InlineData("['descr', '<f4']", "expected '{'", "[")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, }", "lacks the 'shape' key", "}")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), 'x': 1, }", "unexpected key 'x'", "'x'")]
    [InlineData("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", "duplicate key 'descr'", "'descr'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (6), }", "is an integer in Python, not a tuple", "(6)")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': 6, }", "must be a tuple of integers, found the integer 6", "6")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 'a'), }", "only tuples of integers", "'a'")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5, 3), }", "only plain decimal integers", ".")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", "out of range", "99999999999999999999")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (02, 3), }", "leading zero", "02")]
    [InlineData("{'descr': '<f4', 'fortran_order': 0, 'shape': (2, 3), }", "must be True or False", "0")]
    [InlineData("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2, 3), }", "unknown name 'Maybe'", "Maybe")]
    [InlineData("{'descr': '<f4, 'fortran_order': False, 'shape': (2, 3), }", "expected ',' or '}'", "fortran_order")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } x", "after the header dict", "x")]
    [InlineData("{'descr': '<f4' 'fortran_order': False, 'shape': (2, 3), }", "expected ',' or '}'", "'fortran_order'")]
    [InlineData("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 3), }", "lists are not supported", "[")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), ", "expected a quoted key or '}'", "")]
    [InlineData("{'descr': '<f\\q4', 'fortran_order': False, 'shape': (2, 3), }", "unsupported escape", "\\q")]
    [InlineData("{'descr': __import__('os'), 'fortran_order': False, 'shape': (2, 3), }", "unknown name '__import__'", "__import__")]
    public void HeaderNotParseable(string dict, string fault, string marker)
    {
        var bytes = Npy(dict, 24);
        var ex = ReadBad(bytes);
        Assert.StartsWith("header not parseable: ", ex.Fault);
        Assert.Contains(fault, ex.Fault);
        // Offsets point into the header text (10 = magic + version + u16 length), at the offending character.
        long expected = marker == "" ? 10 + BitConverter.ToUInt16(bytes, 8) : 10 + dict.LastIndexOf(marker, StringComparison.Ordinal);
        Assert.Equal(expected, ex.ByteOffset);
    }

    [Theory]
    [InlineData("<c8", "complex")]
    [InlineData("<u2", "unsigned 2-byte")]
    [InlineData("<M8[ns]", "datetime")]
    [InlineData("<U5", "string")]
    [InlineData("<V2", "bfloat16")]
    [InlineData("<f16", "unknown dtype descriptor '<f16'")]
    [InlineData("", "unknown dtype descriptor ''")]
    public void UnknownDescrIsNamed(string descr, string fault)
    {
        var ex = ReadBad(Npy($"{{'descr': '{descr}', 'fortran_order': False, 'shape': (2, 3), }}", 24));
        Assert.Contains($"'{descr}'", ex.Fault);
        Assert.Contains(fault, ex.Fault);
        Assert.Equal(10 + 10, ex.ByteOffset);
    }

    [Fact]
    public void ObjectDtypeIsRefused()
    {
        var ex = ReadBad(Npy("{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", 16));
        Assert.Contains("object dtype '|O'", ex.Fault);
        Assert.Contains("refused", ex.Fault);
    }

    [Fact]
    public void NegativeDimension()
    {
        var ex = ReadBad(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 24));
        Assert.Contains("negative dimension -1 in shape (-1, 3)", ex.Fault);
        Assert.Equal(10 + 50, ex.ByteOffset); // the shape tuple
    }

    [Theory]
    [InlineData("(1000000000000,)", "exceeds the supported maximum")]
    [InlineData("(2147483647, 2147483647, 2147483647)", "more than 2^63 bytes")]
    [InlineData("(1000000000, 1000)", "4000000000000 bytes needed, 100 present")]
    [InlineData("(2147483647, 2147483647, 0, 5)", "0 bytes needed, 100 present")]
    public void AbsurdShapeFailsFastWithoutAllocating(string shape, string fault)
    {
        byte[] bytes = Npy($"{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}", 100);
        using var tmp = TestPaths.Temp();
        string path = tmp.File("absurd.npy");
        File.WriteAllBytes(path, bytes);
        Assert.Contains(fault, Assert.Throws<NpyFormatException>(() => NpyReader.Read(path)).Fault); // warm up JIT

        var sw = Stopwatch.StartNew();
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<NpyFormatException>(() => NpyReader.Read(path));
        var ex2 = Assert.Throws<NpyFormatException>(() => NpyReader.Read(new NonSeekableStream(bytes), "absurd.npy"));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        sw.Stop();

        Assert.Contains(fault, ex.Fault);
        Assert.Contains(path, ex.Message);
        Assert.True(allocated < 1_000_000, $"allocated {allocated} bytes");
        Assert.True(sw.ElapsedMilliseconds < 1000, $"took {sw.ElapsedMilliseconds} ms");
        if (!fault.Contains("present")) Assert.Contains(fault, ex2.Fault);
    }

    [Fact]
    public void DataShorterThanShape()
    {
        var ex = ReadBad(Npy(GoodDict, 20));
        Assert.Contains("data is shorter than shape (2, 3) of <f4 implies: 24 bytes needed, 20 present", ex.Fault);
        Assert.Equal(GoodHeader + 20, ex.ByteOffset);
    }

    [Fact]
    public void DataLongerThanShape()
    {
        var ex = ReadBad(Npy(GoodDict, 25));
        Assert.Contains("data is longer than shape (2, 3) of <f4 implies: 24 bytes needed, 25 present", ex.Fault);
        Assert.Equal(GoodHeader + 24, ex.ByteOffset);
    }

    [Fact]
    public void NonSeekableStreamStillEnforcesExactLength()
    {
        var shorter = Assert.Throws<NpyFormatException>(() => NpyReader.Read(new NonSeekableStream(Npy(GoodDict, 20)), "pipe.npy"));
        Assert.Contains("shorter", shorter.Fault);
        Assert.Equal("pipe.npy", shorter.FilePath);
        var longer = Assert.Throws<NpyFormatException>(() => NpyReader.Read(new NonSeekableStream(Npy(GoodDict, 30)), "pipe.npy"));
        Assert.Contains("longer", longer.Fault);
        Assert.Equal(GoodHeader + 24, longer.ByteOffset);
        var ok = NpyReader.Read(new NonSeekableStream(Npy(GoodDict, 24)), "pipe.npy");
        Assert.Equal(new[] { 2, 3 }, ok.Shape);
        // A non-seekable stream that ends early in a large array: no allocation beyond what arrived.
        var big = Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (100000000,), }", 3_000_000);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<NpyFormatException>(() => NpyReader.Read(new NonSeekableStream(big), "pipe.npy"));
        Assert.Contains("800000000 bytes needed, 3000000 present", ex.Fault);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 16_000_000);
    }

    [Fact]
    public void Version3HeaderMustBeUtf8()
    {
        var bytes = Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } \u00e9", 24, 3, 0);
        int at = Array.IndexOf(bytes, (byte)0xE9);
        var ex = ReadBad(bytes);
        Assert.Contains("not valid UTF-8", ex.Fault);
        Assert.Equal(at, ex.ByteOffset);
        // The same text is fine latin-1 in version 1.0, where it fails only for the stray character.
        Assert.Contains("after the header dict", ReadBad(Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } \u00e9", 24)).Fault);
    }

    [Fact]
    public void Version3Utf8OffsetsCountBytes()
    {
        var ex = ReadBad(Npy("{'descr': '\u00e9\u00e9', 'fortran_order': False, 'shape': (2, 3), }", 24, 3, 0, encoding: Encoding.UTF8));
        Assert.Contains("'\u00e9\u00e9'", ex.Fault);
        Assert.Equal(12 + 10, ex.ByteOffset);
        const string dict = "{'descr': '\u00e9', 'fortran_order': False, 'shape': (2, 3), 'x': 1}";
        var ex2 = ReadBad(Npy(dict, 24, 3, 0, encoding: Encoding.UTF8));
        Assert.Equal(12 + dict.IndexOf("'x'") + 1, ex2.ByteOffset); // one 2-byte character before the fault
    }

    // ---------------------------------------------------------------- .npz

    private static NpyFormatException OpenBadNpz(byte[] bytes, string? get = null)
    {
        using var tmp = TestPaths.Temp();
        string path = tmp.File("bad.npz");
        File.WriteAllBytes(path, bytes);
        NpyFormatException ex;
        if (get is null) ex = Assert.Throws<NpyFormatException>(() => NpzFile.Open(path));
        else
        {
            using var npz = NpzFile.Open(path);
            ex = Assert.Throws<NpyFormatException>(() => npz.Get(get));
        }
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(path, ex.Message);
        Assert.Equal(bytes, File.ReadAllBytes(path));
        return ex;
    }

    [Fact]
    public void NpzThatIsNotAZip()
    {
        Assert.Contains("not a valid .npz (zip) archive", OpenBadNpz(Npy(GoodDict, 24)).Fault);
        Assert.Contains("not a valid .npz (zip) archive", OpenBadNpz([]).Fault);
    }

    [Fact]
    public void NpzTruncated()
    {
        byte[] full = File.ReadAllBytes(TestPaths.Fixture("numpy", "savez.npz"));
        Assert.Contains("not a valid .npz (zip) archive", OpenBadNpz(full[..(full.Length * 2 / 3)]).Fault);
    }

    private static byte[] Zip(params (string Name, byte[] Content, bool Deflate)[] members)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, content, deflate) in members)
            {
                var e = zip.CreateEntry(name, deflate ? CompressionLevel.Optimal : CompressionLevel.NoCompression);
                using var s = e.Open();
                s.Write(content);
            }
        return ms.ToArray();
    }

    /// <summary>Rewrites the uncompressed size of every member in both the local headers and the central directory.</summary>
    private static byte[] WithDeclaredSize(byte[] zip, uint size)
    {
        var b = (byte[])zip.Clone();
        for (int i = 0; i + 4 <= b.Length; i++)
        {
            uint sig = BitConverter.ToUInt32(b, i);
            if (sig == 0x04034b50) BitConverter.GetBytes(size).CopyTo(b, i + 22);
            else if (sig == 0x02014b50) BitConverter.GetBytes(size).CopyTo(b, i + 24);
        }
        return b;
    }

    [Fact]
    public void NpzMemberWithAbsurdShapeFailsAtOpenWithoutAllocating()
    {
        var zip = Zip(("ok.npy", Npy(GoodDict, 24), false),
            ("big.npy", Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000), }", 100), true));
        OpenBadNpz(zip); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = OpenBadNpz(zip);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 1_000_000);
        Assert.Equal("big", ex.Key);
        Assert.Contains("[big]", ex.Message);
        Assert.Contains("8000000000000 bytes needed, 100 present", ex.Fault);
    }

    [Fact]
    public void NpzMemberDeclaringMoreThanDeflateCanProduce()
    {
        var zip = WithDeclaredSize(Zip(("x.npy", Npy(GoodDict, 24), true)), 2_000_000_000);
        var ex = OpenBadNpz(zip);
        Assert.Equal("x", ex.Key);
        Assert.Contains("more than deflate can produce", ex.Fault);
    }

    [Fact]
    public void NpzMemberWhoseDataIsShorterThanDeclaredFailsWhileReading()
    {
        // The header and declared size agree (128 + 24 bytes) but the deflate stream holds only 128 + 20: caught on read.
        var zip = WithDeclaredSize(Zip(("x.npy", Npy(GoodDict, 20), true)), (uint)GoodHeader + 24);
        var ex = OpenBadNpz(zip, get: "x");
        Assert.Equal("x", ex.Key);
        Assert.Contains("shorter", ex.Fault);
    }

    [Theory]
    [InlineData(true, "CRC-32 mismatch")]  // ZipArchive cuts a deflated member at its declared size; the checksum catches it
    [InlineData(false, "data is longer")]  // a stored member is read to its compressed size, so the surplus shows
    public void NpzMemberHoldingMoreThanDeclared(bool deflate, string fault)
    {
        // Header and declared size say 24 data bytes; the member really holds 30.
        var zip = WithDeclaredSize(Zip(("x.npy", Npy(GoodDict, 30), deflate)), (uint)GoodHeader + 24);
        var ex = OpenBadNpz(zip, get: "x");
        Assert.Equal("x", ex.Key);
        Assert.Contains(fault, ex.Fault);
    }

    [Fact]
    public void NpzMemberWithFlippedDataBitFailsTheChecksum()
    {
        var zip = Zip(("x.npy", Npy(GoodDict, 24), false));
        zip[30 + "x.npy".Length + GoodHeader + 5] ^= 0x10; // a data byte of the stored member
        var ex = OpenBadNpz(zip, get: "x");
        Assert.Contains("CRC-32 mismatch", ex.Fault);
    }

    [Fact]
    public void NpzMemberDeclaredSmallerThanItsHeaderImplies()
    {
        var zip = WithDeclaredSize(Zip(("x.npy", Npy(GoodDict, 24), true)), (uint)GoodHeader + 8);
        var ex = OpenBadNpz(zip);
        Assert.Equal("x", ex.Key);
        Assert.Contains("24 bytes needed, 8 present", ex.Fault);
    }

    [Fact]
    public void NpzWithCorruptDeflateData()
    {
        var zip = Zip(("x.npy", Npy(GoodDict, 24), true));
        // Local header is 30 bytes + name; the deflate stream follows. 0xFF as the first block header is an invalid block type.
        int dataStart = 30 + "x.npy".Length;
        zip[dataStart] = 0xFF;
        var ex = OpenBadNpz(zip);
        Assert.Equal("x", ex.Key);
        Assert.Contains("corrupt or unsupported archive member", ex.Fault);
    }

    [Fact]
    public void NpzMemberWithBadNpyInside()
    {
        var bad = Npy(GoodDict, 24);
        bad[0] = 0;
        var ex = OpenBadNpz(Zip(("a.npy", Npy(GoodDict, 24), false), ("b.npy", bad, false)));
        Assert.Equal("b", ex.Key);
        Assert.Contains("magic", ex.Fault);
        Assert.Equal(0, ex.ByteOffset);
    }

    [Fact]
    public void NpzDuplicateMember()
    {
        var ex = OpenBadNpz(Zip(("a.npy", Npy(GoodDict, 24), false), ("a.npy", Npy(GoodDict, 24), false)));
        Assert.Contains("duplicate archive member 'a.npy'", ex.Fault);
    }

    // ---------------------------------------------------------------- exhaustive corruption

    /// <summary>Every truncation and every single-byte corruption of numpy-made files either reads or fails typed.</summary>
    [Theory]
    [InlineData("c_f4_le.npy")]
    [InlineData("f_i2_be.npy")]
    [InlineData("v3_i4.npy")]
    public void EveryCorruptionOfAnNpyFailsTyped(string file)
    {
        byte[] good = File.ReadAllBytes(TestPaths.Fixture("numpy", file));
        int typed = 0;
        for (int n = 0; n < good.Length; n++)
            typed += Outcome(() => NpyReader.Read(new MemoryStream(good[..n]), file));
        Assert.Equal(good.Length, typed); // every truncation is an error
        for (int i = 0; i < good.Length; i++)
            foreach (byte x in new byte[] { 0xFF, 0x01, 0x20 })
            {
                var bad = (byte[])good.Clone();
                bad[i] ^= x;
                Outcome(() => NpyReader.Read(new MemoryStream(bad), file));
            }
    }

    [Theory]
    [InlineData("savez.npz")]
    [InlineData("savez_compressed.npz")]
    [InlineData("handmade.npz")]
    public void EveryCorruptionOfAnNpzFailsTyped(string file)
    {
        byte[] good = File.ReadAllBytes(TestPaths.Fixture("numpy", file));
        void ReadAll(byte[] bytes)
        {
            using var npz = NpzFile.Open(new MemoryStream(bytes), file);
            foreach (var t in npz.Tensors) npz.Get(t.Name);
        }
        int truncations = 0, typed = 0;
        for (int n = 0; n < good.Length; n += 3, truncations++)
            typed += Outcome(() => ReadAll(good[..n]));
        Assert.Equal(truncations, typed); // a cut archive loses its end-of-central-directory record: always an error
        ReadAll(good);
        for (int i = 0; i < good.Length; i++)
        {
            var bad = (byte[])good.Clone();
            bad[i] ^= 0x5A;
            Outcome(() => ReadAll(bad));
        }
    }

    /// <summary>1 when <paramref name="read"/> failed with an NpyFormatException, 0 when it succeeded; anything else fails the test.</summary>
    private static int Outcome(Action read)
    {
        try { read(); return 0; }
        catch (NpyFormatException) { return 1; }
    }

    /// <summary>A read-only stream that cannot seek or report its length (a pipe, a network body).</summary>
    private sealed class NonSeekableStream(byte[] data) : Stream
    {
        private readonly MemoryStream _inner = new(data);
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => _inner.Read(buffer, offset, Math.Min(count, 7)); // short reads too
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
