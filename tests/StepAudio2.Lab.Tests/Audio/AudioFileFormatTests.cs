using NAudio.Wave;
using StepAudio2.Lab.Audio;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>Every fixture of formats.json decodes to exactly the samples the Python script wrote beside it.</summary>
public sealed class AudioFileFormatTests
{
    public static IEnumerable<object[]> Fixtures => AudioFixtures.FormatFixtureNames();

    [Theory]
    [MemberData(nameof(Fixtures))]
    public void Fixture_decodes_to_python_expected_samples(string file)
    {
        var e = AudioFixtures.FormatEntry(file);
        var clip = AudioFile.Read(AudioFixtures.File(file));

        Assert.Equal(e.GetProperty("sample_rate").GetInt32(), clip.SampleRate);
        Assert.Equal(e.GetProperty("channels").GetInt32(), clip.ChannelCount);
        Assert.Equal(e.GetProperty("frames").GetInt32(), clip.Frames);
        Assert.Equal(e.GetProperty("container").GetString(), clip.Format.Container);
        Assert.Equal(e.GetProperty("codec").GetString(), clip.Format.Codec);
        Assert.Equal(e.GetProperty("bits").GetInt32(), clip.Format.BitsPerSample);
        Assert.Equal(AudioFixtures.File(file), clip.SourcePath);
        Assert.Empty(clip.Notes);

        var expected = AudioFixtures.F32(e.GetProperty("expected").GetString()!);
        Assert.Equal(clip.ChannelCount * clip.Frames, expected.Length);
        for (int c = 0; c < clip.ChannelCount; c++)
        {
            var want = expected.AsSpan(c * clip.Frames, clip.Frames);
            var got = clip.Channel(c);
            for (int i = 0; i < want.Length; i++)
                if (BitConverter.SingleToInt32Bits(want[i]) != BitConverter.SingleToInt32Bits(got[i]))
                    Assert.Fail($"{file} channel {c} sample {i}: expected {want[i]:R}, got {got[i]:R}");
        }
    }

    [Fact]
    public void Scaling_follows_torchaudio_at_the_extremes()
    {
        // The Python script puts [min, max, 0, -1, 1, …] of the integer range at the start of every channel.
        var u8 = AudioFile.Read(AudioFixtures.File("wav_pcm8_1ch_8000.wav")).Channel(0);
        Assert.Equal([-1f, 127f / 128f, 0f, -1f / 128f, 1f / 128f], u8[..5].ToArray());
        var s16 = AudioFile.Read(AudioFixtures.File("wav_pcm16_2ch_16000.wav")).Channel(1);
        Assert.Equal([-1f, 32767f / 32768f, 0f, -1f / 32768f, 1f / 32768f], s16[..5].ToArray());
        var s24 = AudioFile.Read(AudioFixtures.File("aiff_s24_2ch_44100.aiff")).Channel(0);
        Assert.Equal([-1f, 8388607f / 8388608f, 0f, -1f / 8388608f], s24[..4].ToArray());
        var s32 = AudioFile.Read(AudioFixtures.File("wav_pcm32_2ch_48000.wav")).Channel(0);
        Assert.Equal(-1f, s32[0]);
        Assert.Equal(1f, s32[1]); // (2^31 − 1) / 2^31 rounds to 1.0 in float32, as in torch
        Assert.Equal(-1f / 2147483648f, s32[3]);
    }

    [Fact]
    public void Multichannel_channel0_is_the_left_channel_and_mono_helpers_differ()
    {
        var e = AudioFixtures.FormatEntry("wav_pcm16_2ch_16000.wav");
        var expected = AudioFixtures.F32(e.GetProperty("expected").GetString()!);
        var clip = AudioFile.Read(AudioFixtures.File("wav_pcm16_2ch_16000.wav"));
        int n = clip.Frames;
        var left = expected[..n];
        var right = expected[n..];

        Assert.Equal(left, clip.Channel(0).ToArray());
        Assert.Equal(left, clip.MonoChannel0());
        Assert.Equal(right, clip.Channel(1).ToArray());
        var mean = clip.MonoMean();
        for (int i = 0; i < n; i++) Assert.Equal((left[i] + right[i]) / 2f, mean[i]);
        Assert.NotEqual(clip.MonoChannel0(), mean);
    }

    [Theory]
    [InlineData("wav_pcm16_2ch_16000.wav", "WAV", ".aiff")]
    [InlineData("aifc_sowt_s16_2ch_48000.aifc", "AIFF-C", ".wav")]
    [InlineData("aiff_s16_1ch_22050.aiff", "AIFF", ".bin")]
    public void Container_is_chosen_by_magic_bytes_not_by_extension(string file, string container, string misleadingExtension)
    {
        using var tmp = TestPaths.Temp();
        var copy = tmp.File("clip" + misleadingExtension);
        File.Copy(AudioFixtures.File(file), copy);
        var clip = AudioFile.Read(copy);
        Assert.Equal(container, clip.Format.Container);
        Assert.Equal(AudioFile.Read(AudioFixtures.File(file)).Channel(0).ToArray(), clip.Channel(0).ToArray());
    }

    [Fact]
    public void Reading_from_a_stream_matches_reading_the_file()
    {
        var path = AudioFixtures.File("aifc_FL64_2ch_16000.aifc");
        using var ms = new MemoryStream(File.ReadAllBytes(path));
        var a = AudioFile.Read(ms, "in-memory");
        var b = AudioFile.Read(path);
        Assert.Equal("in-memory", a.SourcePath);
        Assert.Equal(b.Channel(1).ToArray(), a.Channel(1).ToArray());
    }

    [Theory]
    [InlineData("music_playing_followed_by_a_woman_speaking.wav", 16000, 2)]
    [InlineData("default_female.wav", 48000, 1)]
    [InlineData("give_me_a_brief_introduction_to_the_great_wall.wav", 24000, 1)]
    [InlineData("tool-search-query-zh.wav", 22050, 1)]
    public void Real_pcm16_wavs_match_naudio_sample_for_sample(string name, int rate, int channels)
    {
        // NAudio's WaveFileReader is an independent parser of the same files: the raw int16s it returns, scaled
        // by 1/32768, must be exactly our floats.
        var path = Path.Combine(TestPaths.SharedAudio, name);
        var clip = AudioFile.Read(path);
        Assert.Equal(rate, clip.SampleRate);
        Assert.Equal(channels, clip.ChannelCount);
        Assert.Equal("WAV 'pcm': 16-bit signed int, little-endian", clip.SourceEncoding);

        using var reader = new WaveFileReader(path);
        Assert.Equal(16, reader.WaveFormat.BitsPerSample);
        var bytes = new byte[reader.Length];
        reader.ReadExactly(bytes);
        Assert.Equal(reader.SampleCount, clip.Frames);
        var ints = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, short>(bytes);
        for (int i = 0; i < clip.Frames; i++)
            for (int c = 0; c < channels; c++)
                if (ints[i * channels + c] / 32768f != clip.Channel(c)[i])
                    Assert.Fail($"{name} frame {i} channel {c}: NAudio {ints[i * channels + c]}, ours {clip.Channel(c)[i]}");
    }
}
