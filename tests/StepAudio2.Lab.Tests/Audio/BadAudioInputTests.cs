using System.Buffers.Binary;
using System.Text;
using CsCheck;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>Malformed, truncated, hostile and unsupported files: each fails with a typed error naming file, fault and place.</summary>
public sealed class BadAudioInputTests
{
    // ------------------------------------------------------------------ builders (crafted here, on purpose)

    private static byte[] ChunkLE(string id, byte[] payload, uint? claimedSize = null)
    {
        var b = new List<byte>(Encoding.ASCII.GetBytes(id));
        b.AddRange(BitConverter.GetBytes(claimedSize ?? (uint)payload.Length));
        b.AddRange(payload);
        if (payload.Length % 2 == 1) b.Add(0);
        return [.. b];
    }

    private static byte[] ChunkBE(string id, byte[] payload, uint? claimedSize = null)
    {
        var b = new List<byte>(Encoding.ASCII.GetBytes(id));
        var sz = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(sz, claimedSize ?? (uint)payload.Length);
        b.AddRange(sz);
        b.AddRange(payload);
        if (payload.Length % 2 == 1) b.Add(0);
        return [.. b];
    }

    private static byte[] Fmt(ushort tag, ushort channels, uint rate, ushort bits, ushort? blockAlign = null)
    {
        var f = new byte[16];
        ushort ba = blockAlign ?? (ushort)(channels * ((bits + 7) / 8));
        BinaryPrimitives.WriteUInt16LittleEndian(f, tag);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(2), channels);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(4), rate);
        BinaryPrimitives.WriteUInt32LittleEndian(f.AsSpan(8), rate * ba);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(12), ba);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(14), bits);
        return f;
    }

    private static byte[] Riff(params byte[][] chunks)
    {
        var body = new List<byte>(Encoding.ASCII.GetBytes("WAVE"));
        foreach (var c in chunks) body.AddRange(c);
        var r = new List<byte>(Encoding.ASCII.GetBytes("RIFF"));
        r.AddRange(BitConverter.GetBytes((uint)body.Count));
        r.AddRange(body);
        return [.. r];
    }

    private static byte[] Ext80(double rate)
    {
        // Positive finite rate -> 80-bit extended, big-endian (exact for integers < 2^53).
        int e = (int)Math.Floor(Math.Log2(rate));
        ulong mant = (ulong)(rate * Math.Pow(2, 63 - e));
        var b = new byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(b, (ushort)(16383 + e));
        BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan(2), mant);
        return b;
    }

    private static byte[] Comm(short channels, uint frames, short bits, byte[] rate80, string? codec = null)
    {
        var c = new List<byte>();
        var tmp = new byte[8];
        BinaryPrimitives.WriteInt16BigEndian(tmp, channels);
        BinaryPrimitives.WriteUInt32BigEndian(tmp.AsSpan(2), frames);
        BinaryPrimitives.WriteInt16BigEndian(tmp.AsSpan(6), bits);
        c.AddRange(tmp);
        c.AddRange(rate80);
        if (codec is not null)
        {
            c.AddRange(Encoding.ASCII.GetBytes(codec));
            var name = Encoding.ASCII.GetBytes(codec + " codec");
            c.Add((byte)name.Length);
            c.AddRange(name);
            if ((name.Length + 1) % 2 == 1) c.Add(0);
        }
        return [.. c];
    }

    private static byte[] Ssnd(byte[] data, uint offset = 0) => [.. new byte[8].Select((_, i) => i < 4 ? (byte)(offset >> (8 * (3 - i))) : (byte)0), .. new byte[offset], .. data];

    private static byte[] Form(string type, params byte[][] chunks)
    {
        var body = new List<byte>(Encoding.ASCII.GetBytes(type));
        foreach (var c in chunks) body.AddRange(c);
        var sz = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(sz, (uint)body.Count);
        return [.. Encoding.ASCII.GetBytes("FORM"), .. sz, .. body];
    }

    private static byte[] Pcm16Data(int samples) => Enumerable.Range(0, samples * 2).Select(i => (byte)(i * 37)).ToArray();

    private static AudioFormatException Fails(byte[] file, string name = "crafted.bin")
    {
        using var tmp = TestPaths.Temp();
        var path = tmp.File(name);
        File.WriteAllBytes(path, file);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var ex = Assert.Throws<AudioFormatException>(() => AudioFile.Read(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        // Nothing is allocated by a claimed size: a rejected file costs a few KiB of bookkeeping, not the claim.
        Assert.True(allocated < 256 * 1024, $"rejecting a {file.Length}-byte file allocated {allocated} bytes");
        Assert.Equal(path, ex.FilePath);
        Assert.Contains(path, ex.Message);
        return ex;
    }

    private static byte[] GoodWav() => Riff(ChunkLE("fmt ", Fmt(1, 1, 16000, 16)), ChunkLE("data", Pcm16Data(100)));

    // ------------------------------------------------------------------ sanity: the builders make readable files

    [Fact]
    public void Crafted_good_files_read()
    {
        using var ms = new MemoryStream(GoodWav());
        var wav = AudioFile.Read(ms, "good.wav");
        Assert.Equal(100, wav.Frames);
        Assert.Equal(BinaryPrimitives.ReadInt16LittleEndian(Pcm16Data(1)) / 32768f, wav.Channel(0)[0]);

        var aiff = Form("AIFF", ChunkBE("COMM", Comm(1, 50, 16, Ext80(22050))), ChunkBE("SSND", Ssnd(Pcm16Data(50), 4)));
        var clip = AudioFile.Read(new MemoryStream(aiff), "good.aiff");
        Assert.Equal((22050, 50), (clip.SampleRate, clip.Frames));
        Assert.Equal(BinaryPrimitives.ReadInt16BigEndian(Pcm16Data(1)) / 32768f, clip.Channel(0)[0]);
    }

    // ------------------------------------------------------------------ WAV

    [Fact]
    public void Truncated_riff_inside_data_is_rejected_with_the_data_offset()
    {
        var good = GoodWav();
        var ex = Fails(good[..(good.Length - 51)]);
        Assert.Equal("data", ex.Key);
        Assert.Equal(36, ex.ByteOffset); // 12 (RIFF header) + 24 (fmt chunk)
        Assert.Contains("truncated", ex.Fault);
    }

    [Fact]
    public void Truncated_riff_inside_fmt_is_rejected()
    {
        var ex = Fails(GoodWav()[..30]);
        Assert.Equal("fmt ", ex.Key);
        Assert.Equal(12, ex.ByteOffset);
    }

    [Fact]
    public void Data_chunk_claiming_more_than_the_file_is_rejected_without_allocating_the_claim()
    {
        var file = Riff(ChunkLE("fmt ", Fmt(1, 2, 48000, 16)), ChunkLE("data", Pcm16Data(8), claimedSize: 0x7FFF_FFF0));
        var ex = Fails(file);
        Assert.Equal("data", ex.Key);
        Assert.Equal(36, ex.ByteOffset);
        Assert.Contains("2147483632", ex.Fault);
    }

    [Fact]
    public void Rf64_with_huge_ds64_size_is_rejected()
    {
        var ds64 = new byte[28];
        BinaryPrimitives.WriteUInt64LittleEndian(ds64.AsSpan(8), 1UL << 40);
        var body = new List<byte>(Encoding.ASCII.GetBytes("WAVE"));
        body.AddRange(ChunkLE("ds64", ds64));
        body.AddRange(ChunkLE("fmt ", Fmt(1, 1, 16000, 16)));
        body.AddRange(ChunkLE("data", Pcm16Data(4), claimedSize: uint.MaxValue));
        byte[] file = [.. "RF64"u8.ToArray(), .. BitConverter.GetBytes(uint.MaxValue), .. body];
        var ex = Fails(file);
        Assert.Equal("ds64", ex.Key);
    }

    [Fact]
    public void Non_data_chunk_past_eof_is_rejected_with_its_id()
    {
        var file = Riff(ChunkLE("fmt ", Fmt(1, 1, 16000, 16)), ChunkLE("LIST", new byte[6], claimedSize: 1000));
        var ex = Fails(file);
        Assert.Equal("LIST", ex.Key);
        Assert.Equal(36, ex.ByteOffset);
    }

    [Theory]
    [InlineData(0x0002, "Adpcm")]
    [InlineData(0x0007, "MuLaw")]
    [InlineData(0x0006, "ALaw")]
    [InlineData(0x0055, "MpegLayer3")]
    [InlineData(0x1234, "unknown")]
    public void Unsupported_format_tag_is_named(int tag, string name)
    {
        var ex = Fails(Riff(ChunkLE("fmt ", Fmt((ushort)tag, 1, 8000, 8)), ChunkLE("data", new byte[10])));
        Assert.Contains($"0x{tag:X4}", ex.Fault);
        Assert.Contains(name, ex.Fault);
        Assert.Equal("fmt ", ex.Key);
        Assert.Equal(20, ex.ByteOffset);
    }

    [Fact]
    public void Extensible_with_a_foreign_subformat_guid_is_rejected()
    {
        var f = new byte[40];
        Fmt(0xFFFE, 1, 16000, 16).CopyTo(f, 0);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(16), 22);
        BinaryPrimitives.WriteUInt16LittleEndian(f.AsSpan(18), 16);
        Guid.NewGuid().TryWriteBytes(f.AsSpan(24));
        var ex = Fails(Riff(ChunkLE("fmt ", f), ChunkLE("data", Pcm16Data(4))));
        Assert.Contains("sub-format", ex.Fault);
    }

    [Theory]
    [InlineData(0, 16000, 16, "0 channels")]
    [InlineData(1, 0, 16, "sample rate 0")]
    [InlineData(1, 50_000_000, 16, "sample rate 50000000")]
    [InlineData(1, 16000, 12, "12 bits")]
    public void Bad_fmt_fields_are_rejected(int channels, int rate, int bits, string fault)
    {
        var ex = Fails(Riff(ChunkLE("fmt ", Fmt(1, (ushort)channels, (uint)rate, (ushort)bits, blockAlign: 2)), ChunkLE("data", Pcm16Data(4))));
        Assert.Contains(fault, ex.Fault);
        Assert.Equal("fmt ", ex.Key);
    }

    [Fact]
    public void Block_align_mismatch_is_rejected()
    {
        var ex = Fails(Riff(ChunkLE("fmt ", Fmt(1, 2, 16000, 16, blockAlign: 6)), ChunkLE("data", Pcm16Data(6))));
        Assert.Contains("block align 6", ex.Fault);
    }

    [Fact]
    public void Missing_fmt_or_data_is_rejected()
    {
        Assert.Equal("fmt ", Fails(Riff(ChunkLE("data", Pcm16Data(4)))).Key);
        Assert.Equal("data", Fails(Riff(ChunkLE("fmt ", Fmt(1, 1, 16000, 16)))).Key);
        Assert.Contains("needs at least 16", Fails(Riff(ChunkLE("fmt ", new byte[10]), ChunkLE("data", Pcm16Data(4)))).Fault);
    }

    [Fact]
    public void Partial_trailing_frame_is_dropped_and_recorded()
    {
        var data = Pcm16Data(5).Take(9).ToArray(); // 2-channel 16-bit: two whole frames and one byte
        var clip = AudioFile.Read(new MemoryStream(Riff(ChunkLE("fmt ", Fmt(1, 2, 16000, 16)), ChunkLE("data", data))), "partial.wav");
        Assert.Equal(2, clip.Frames);
        Assert.Contains(clip.Notes, n => n.Contains("whole frame"));
    }

    // ------------------------------------------------------------------ containers

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, "too short")]
    [InlineData(new byte[] { (byte)'O', (byte)'g', (byte)'g', (byte)'S', 0, 2, 0, 0, 0, 0, 0, 0, 0, 0 }, "unrecognised audio container")]
    [InlineData(new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'X', 0, 0, 0, 4, (byte)'W', (byte)'A', (byte)'V', (byte)'E' }, "RIFX")]
    [InlineData(new byte[] { (byte)'R', (byte)'I', (byte)'F', (byte)'F', 4, 0, 0, 0, (byte)'A', (byte)'V', (byte)'I', (byte)' ' }, "form type 'AVI '")]
    public void Unknown_or_short_files_are_rejected(byte[] file, string fault) => Assert.Contains(fault, Fails(file).Fault);

    // ------------------------------------------------------------------ AIFF / AIFF-C

    [Theory]
    [InlineData("ulaw")]
    [InlineData("alaw")]
    [InlineData("ima4")]
    [InlineData("ALAC")]
    public void Aifc_compressed_codec_is_rejected_by_name(string codec)
    {
        var file = Form("AIFC", ChunkBE("COMM", Comm(1, 10, 16, Ext80(8000), codec)), ChunkBE("SSND", Ssnd(new byte[20])));
        var ex = Fails(file);
        Assert.Equal(codec, ex.Key);
        Assert.Contains($"'{codec}'", ex.Fault);
        Assert.Equal(12 + 8 + 18, ex.ByteOffset); // the compression type field of COMM
    }

    [Fact]
    public void Aiff_without_ssnd_is_rejected()
    {
        var ex = Fails(Form("AIFF", ChunkBE("COMM", Comm(1, 10, 16, Ext80(8000)))));
        Assert.Equal("SSND", ex.Key);
    }

    [Fact]
    public void Aiff_without_comm_is_rejected()
    {
        var ex = Fails(Form("AIFF", ChunkBE("SSND", Ssnd(Pcm16Data(10)))));
        Assert.Equal("COMM", ex.Key);
    }

    [Fact]
    public void Comm_with_zero_channels_is_rejected()
    {
        var ex = Fails(Form("AIFF", ChunkBE("COMM", Comm(0, 10, 16, Ext80(8000))), ChunkBE("SSND", Ssnd(Pcm16Data(10)))));
        Assert.Equal("COMM", ex.Key);
        Assert.Contains("0 channels", ex.Fault);
    }

    [Fact]
    public void Huge_claimed_frame_count_on_a_tiny_file_fails_fast()
    {
        var file = Form("AIFF", ChunkBE("COMM", Comm(2, uint.MaxValue, 16, Ext80(44100))), ChunkBE("SSND", Ssnd(Pcm16Data(8))));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ex = Fails(file);
        Assert.True(sw.ElapsedMilliseconds < 2000);
        Assert.Equal("COMM", ex.Key);
        Assert.Contains("4294967295 frames", ex.Fault);
        Assert.Contains("SSND holds only 16", ex.Fault);
    }

    [Fact]
    public void Aiff_chunk_size_past_eof_is_rejected()
    {
        var file = Form("AIFF", ChunkBE("COMM", Comm(1, 10, 16, Ext80(8000))), ChunkBE("SSND", Ssnd(Pcm16Data(10)), claimedSize: 0xFFFF_FF00));
        var ex = Fails(file);
        Assert.Equal("SSND", ex.Key);
        Assert.Equal(12 + 26, ex.ByteOffset);
    }

    [Fact]
    public void Ssnd_offset_past_its_data_is_rejected()
    {
        var ssnd = Ssnd(Pcm16Data(4));
        BinaryPrimitives.WriteUInt32BigEndian(ssnd, 1000);
        var ex = Fails(Form("AIFF", ChunkBE("COMM", Comm(1, 4, 16, Ext80(8000))), ChunkBE("SSND", ssnd)));
        Assert.Contains("SSND offset 1000", ex.Fault);
    }

    [Theory]
    [InlineData(1e300)]
    [InlineData(0.25)]
    [InlineData(double.PositiveInfinity)]
    public void Absurd_aiff_sample_rates_are_rejected(double rate)
    {
        byte[] r80 = double.IsInfinity(rate) ? [0x7F, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0] : Ext80(rate);
        var ex = Fails(Form("AIFF", ChunkBE("COMM", Comm(1, 4, 16, r80)), ChunkBE("SSND", Ssnd(Pcm16Data(4)))));
        Assert.Contains("implausible sample rate", ex.Fault);
    }

    [Fact]
    public void Aiff_sample_width_out_of_range_is_rejected()
    {
        var ex = Fails(Form("AIFF", ChunkBE("COMM", Comm(1, 4, 40, Ext80(8000))), ChunkBE("SSND", Ssnd(new byte[40]))));
        Assert.Contains("40 bits", ex.Fault);
    }

    [Theory]
    [InlineData(8000.0, new byte[] { 0x40, 0x0B, 0xFA, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(22050.0, new byte[] { 0x40, 0x0D, 0xAC, 0x44, 0, 0, 0, 0, 0, 0 })] // bytes of real_speech.aiff
    [InlineData(44100.0, new byte[] { 0x40, 0x0E, 0xAC, 0x44, 0, 0, 0, 0, 0, 0 })]
    [InlineData(0.5, new byte[] { 0x3F, 0xFE, 0x80, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(-3.0, new byte[] { 0xC0, 0x00, 0xC0, 0, 0, 0, 0, 0, 0, 0 })]
    [InlineData(0.0, new byte[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 })]
    public void Extended80_decodes_known_values(double expected, byte[] bytes) =>
        Assert.Equal(expected, AiffReader.Extended80ToDouble(bytes));

    [Fact]
    public void Fractional_aiff_rate_is_rounded_and_recorded()
    {
        var clip = AudioFile.Read(new MemoryStream(Form("AIFF", ChunkBE("COMM", Comm(1, 4, 16, Ext80(22254.5454))), ChunkBE("SSND", Ssnd(Pcm16Data(4))))), "mac.aiff");
        Assert.Equal(22255, clip.SampleRate);
        Assert.Contains(clip.Notes, n => n.Contains("rounded"));
    }

    // ------------------------------------------------------------------ robustness

    [Fact]
    public void Truncating_or_corrupting_any_fixture_gives_a_clip_or_an_AudioFormatException()
    {
        var files = Directory.GetFiles(AudioFixtures.Dir).Where(f => !f.EndsWith(".f32") && !f.EndsWith(".json") && !f.EndsWith(".i16"))
            .Select(File.ReadAllBytes).ToArray();
        Assert.True(files.Length >= 20);
        Gen.Select(Gen.Int[0, files.Length - 1], Gen.Int[0, 100_000], Gen.Int[0, 255], Gen.Int[0, 2]).Sample((fi, pos, value, mode) =>
        {
            var src = files[fi];
            byte[] bytes = mode switch
            {
                0 => src[..(pos % (src.Length + 1))],                           // truncation anywhere
                1 => src.Select((b, i) => i == pos % src.Length ? (byte)value : b).ToArray(), // one byte changed
                _ => src.Select((b, i) => i % 64 == pos % 64 && i >= 4 ? (byte)value : b).ToArray(), // many bytes changed
            };
            try
            {
                var clip = AudioFile.Read(new MemoryStream(bytes), "fuzz");
                Assert.True(clip.Frames * (long)clip.ChannelCount * 1 <= bytes.Length);
            }
            catch (AudioFormatException e)
            {
                Assert.Equal("fuzz", e.FilePath);
            }
        }, iter: 3000);
    }
}
