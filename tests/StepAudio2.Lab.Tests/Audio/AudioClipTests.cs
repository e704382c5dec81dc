using StepAudio2.Lab.Audio;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>AudioClip invariants and the two mono conventions of the spec (§2.1 channel 0, §7.2 mean).</summary>
public sealed class AudioClipTests
{
    [Fact]
    public void Real_stereo_clip_channel0_is_not_the_mean()
    {
        var clip = AudioFile.Read(Path.Combine(TestPaths.SharedAudio, "music_playing_followed_by_a_woman_speaking.wav"));
        Assert.Equal(2, clip.ChannelCount);
        var ch0 = clip.MonoChannel0();
        var mean = clip.MonoMean();
        Assert.Equal(clip.Channel(0).ToArray(), ch0);
        int differ = 0;
        for (int i = 0; i < clip.Frames; i++)
        {
            Assert.Equal((clip.Channel(0)[i] + clip.Channel(1)[i]) / 2f, mean[i]);
            if (ch0[i] != mean[i]) differ++;
        }
        Assert.True(differ > clip.Frames / 10, $"only {differ} of {clip.Frames} samples differ: the channels are nearly identical");
    }

    [Fact]
    public void Mean_of_three_channels_sums_in_order_then_divides()
    {
        float[] a = [0.1f, 1f], b = [0.2f, -1f], c = [0.3f, 0.5f];
        var m = new AudioClip([a, b, c], 8000).MonoMean();
        Assert.Equal(((0.1f + 0.2f) + 0.3f) / 3f, m[0]);
        Assert.Equal(0.5f / 3f, m[1]);
    }

    [Fact]
    public void Mono_helpers_return_copies()
    {
        var clip = AudioClip.FromMono([0.5f, -0.5f], 16000);
        var m = clip.MonoChannel0();
        m[0] = 9f;
        Assert.Equal(0.5f, clip.Channel(0)[0]);
        Assert.Equal(0.5f, clip.MonoMean()[0]);
        Assert.Equal(AudioSourceFormat.InMemory, clip.Format);
        Assert.Null(clip.SourcePath);
    }

    [Fact]
    public void Constructor_and_accessors_validate()
    {
        Assert.Throws<ArgumentException>(() => new AudioClip([], 16000));
        Assert.Throws<ArgumentException>(() => new AudioClip([new float[3], new float[4]], 16000));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AudioClip([new float[3]], 0));
        var clip = new AudioClip([new float[3], new float[3]], 16000);
        Assert.Throws<ArgumentOutOfRangeException>(() => clip.Channel(2));
        Assert.Throws<ArgumentOutOfRangeException>(() => clip.Channel(-1));
    }

    [Fact]
    public void Duration_and_tensor_layout()
    {
        var clip = new AudioClip([[1f, 2f, 3f, 4f], [5f, 6f, 7f, 8f]], 8);
        Assert.Equal(TimeSpan.FromSeconds(0.5), clip.Duration);
        var t = clip.ToTensor();
        Assert.Equal([2, 4], t.Shape);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f, 7f, 8f], t.ToFloatArray());
    }

    [Fact]
    public void Source_description_names_container_codec_and_layout()
    {
        var clip = AudioFile.Read(AudioFixtures.File("aifc_sowt_s16_2ch_48000.aifc"));
        Assert.Equal("AIFF-C 'sowt': 16-bit signed int, little-endian", clip.SourceEncoding);
        Assert.Contains("2 ch, 48000 Hz, 175 frames", clip.ToString());
        Assert.Equal("WAV 'pcm': 8-bit unsigned int", AudioFile.Read(AudioFixtures.File("wav_pcm8_1ch_8000.wav")).SourceEncoding);
    }
}
