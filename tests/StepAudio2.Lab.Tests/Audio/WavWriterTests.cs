using System.Buffers.Binary;
using System.Runtime.InteropServices;
using CsCheck;
using NAudio.Wave;
using StepAudio2.Lab.Audio;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>WAV writing: header sizes, lossless float32 round trip, PCM16 quantisation against numpy's.</summary>
public sealed class WavWriterTests
{
    [Fact]
    public void Pcm16_quantisation_matches_numpy_reference()
    {
        // make_audio_fixtures.py: rint(clip(x, -1, 1) * 32767) in float32, ties to even.
        var x = AudioFixtures.F32("pcm16_quantise_input.f32");
        var want = MemoryMarshal.Cast<byte, short>(File.ReadAllBytes(AudioFixtures.File("pcm16_quantise_expected.i16"))).ToArray();
        Assert.Equal(x.Length, want.Length);
        for (int i = 0; i < x.Length; i++)
            Assert.True(want[i] == WavWriter.ToPcm16(x[i]), $"x[{i}] = {x[i]:R}: numpy {want[i]}, ours {WavWriter.ToPcm16(x[i])}");
    }

    [Theory]
    [InlineData(1f, 32767)]
    [InlineData(-1f, -32767)]
    [InlineData(3f, 32767)]
    [InlineData(-3f, -32767)]
    [InlineData(0f, 0)]
    [InlineData(float.NaN, 0)]
    [InlineData(float.PositiveInfinity, 32767)]
    [InlineData(0.5f, 16384)] // 16383.5 → ties to even
    public void Pcm16_edge_values(float x, short expected) => Assert.Equal(expected, WavWriter.ToPcm16(x));

    [Fact]
    public void Float32_round_trip_is_bit_exact_and_header_is_canonical()
    {
        var rng = new Random(11);
        var chans = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, 333).Select(_ => (float)(rng.NextDouble() * 4 - 2)).ToArray()).ToArray();
        chans[0][0] = float.Epsilon;
        chans[1][1] = -0f;
        var clip = new AudioClip(chans, 24000);
        using var tmp = TestPaths.Temp();
        var path = tmp.File("f32.wav");
        WavWriter.Write(path, clip, WavSampleFormat.Float32);

        var bytes = File.ReadAllBytes(path);
        int dataBytes = 3 * 333 * 4;
        Assert.Equal(58 + dataBytes, bytes.Length);
        Assert.Equal((uint)(bytes.Length - 8), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(3, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(20)));              // IEEE float
        Assert.Equal(333u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(46)));           // fact: frames
        Assert.Equal((uint)dataBytes, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(54))); // data size

        var back = AudioFile.Read(path);
        Assert.Equal((24000, 3, 333), (back.SampleRate, back.ChannelCount, back.Frames));
        Assert.Equal("WAV 'float': 32-bit IEEE float, little-endian", back.SourceEncoding);
        for (int c = 0; c < 3; c++)
            Assert.Equal(chans[c].Select(BitConverter.SingleToInt32Bits), back.Channel(c).ToArray().Select(BitConverter.SingleToInt32Bits));

        // An independent parser agrees on format and samples.
        using var r = new WaveFileReader(path);
        Assert.Equal(WaveFormatEncoding.IeeeFloat, r.WaveFormat.Encoding);
        Assert.Equal((3, 24000), (r.WaveFormat.Channels, r.WaveFormat.SampleRate));
        var frames = new float[6];
        Assert.Equal(6, r.ToSampleProvider().Read(frames.AsSpan()));
        Assert.Equal([chans[0][0], chans[1][0], chans[2][0], chans[0][1], chans[1][1], chans[2][1]], frames);
    }

    [Fact]
    public void Pcm16_round_trip_equals_quantised_input_over_32768()
    {
        Gen.Float[-1.5f, 1.5f].Array[0, 400].Sample(x =>
        {
            using var ms = new MemoryStream();
            WavWriter.Write(ms, x, channels: 1, sampleRate: 16000, WavSampleFormat.Pcm16);
            Assert.Equal(44 + 2 * x.Length, ms.Length);
            ms.Position = 0;
            var back = AudioFile.Read(ms, "pcm16");
            Assert.Equal(x.Length, back.Frames);
            for (int i = 0; i < x.Length; i++)
                Assert.Equal(WavWriter.ToPcm16(x[i]) / 32768f, back.Channel(0)[i]);
        }, iter: 200);
    }

    [Fact]
    public void Stereo_pcm16_interleaves_left_first_and_naudio_reads_it()
    {
        float[] left = [0.25f, -0.5f, 1f], right = [-0.25f, 0.125f, -1f];
        var clip = new AudioClip([left, right], 48000);
        using var tmp = TestPaths.Temp();
        var path = tmp.File("s16.wav");
        WavWriter.Write(path, clip, WavSampleFormat.Pcm16);

        var raw = File.ReadAllBytes(path);
        Assert.Equal(44 + 12, raw.Length);
        var pcm = MemoryMarshal.Cast<byte, short>(raw.AsSpan(44)).ToArray();
        Assert.Equal(new short[] { 8192, -8192, -16384, 4096, 32767, -32767 }, pcm); // 0.25·32767 = 8191.75 → 8192

        using var r = new WaveFileReader(path);
        Assert.Equal((WaveFormatEncoding.Pcm, 2, 48000, 16), (r.WaveFormat.Encoding, r.WaveFormat.Channels, r.WaveFormat.SampleRate, r.WaveFormat.BitsPerSample));
        Assert.Equal(3, r.SampleCount);

        var back = AudioFile.Read(path);
        Assert.Equal(8192 / 32768f, back.Channel(0)[0]);
        Assert.Equal(4096 / 32768f, back.Channel(1)[1]);
    }

    [Fact]
    public void Mono_span_overload_and_argument_checks()
    {
        using var tmp = TestPaths.Temp();
        var path = tmp.File("m.wav");
        WavWriter.Write(path, new float[] { 0.1f, 0.2f }, 22050);
        var back = AudioFile.Read(path);
        Assert.Equal([0.1f, 0.2f], back.Channel(0).ToArray());
        Assert.Equal(22050, back.SampleRate);
        Assert.Throws<ArgumentException>(() => WavWriter.Write(new MemoryStream(), new float[5], 2, 16000, WavSampleFormat.Float32));
        Assert.Throws<ArgumentOutOfRangeException>(() => WavWriter.Write(new MemoryStream(), new float[4], 2, 0, WavSampleFormat.Float32));
    }

    [Fact]
    public void Empty_signal_writes_a_valid_empty_file()
    {
        using var ms = new MemoryStream();
        WavWriter.Write(ms, ReadOnlySpan<float>.Empty, 1, 16000, WavSampleFormat.Pcm16);
        ms.Position = 0;
        var back = AudioFile.Read(ms, "empty");
        Assert.Equal(0, back.Frames);
        Assert.Equal(TimeSpan.Zero, back.Duration);
    }
}
