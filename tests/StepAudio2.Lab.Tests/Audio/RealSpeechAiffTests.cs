using StepAudio2.Lab.Audio;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>The shared AIFF-C 'twos' clip against torchaudio.load's decoding of it (real_speech.json).</summary>
public sealed class RealSpeechAiffTests
{
    [Fact]
    public void Real_speech_aiff_c_twos_matches_torchaudio()
    {
        var meta = AudioFixtures.Json("real_speech.json");
        var clip = AudioFile.Read(AudioFixtures.RealSpeech);

        Assert.Equal(22050, clip.SampleRate);
        Assert.Equal(meta.GetProperty("sample_rate").GetInt32(), clip.SampleRate);
        Assert.Equal(meta.GetProperty("channels").GetInt32(), clip.ChannelCount);
        Assert.Equal(meta.GetProperty("frames").GetInt32(), clip.Frames);
        Assert.Equal("AIFF-C", clip.Format.Container);
        Assert.Equal("twos", clip.Format.Codec);
        Assert.Equal(SampleEncoding.Int16BE, clip.Format.Encoding);
        Assert.Equal(clip.Frames / 22050.0, clip.Duration.TotalSeconds, 6);
        Assert.InRange(clip.Duration.TotalSeconds, 3.0, 3.1);

        var first = AudioFixtures.F32(meta.GetProperty("first2000_ch0").GetString()!);
        Assert.Equal(2000, first.Length);
        Assert.Equal(first, clip.Channel(0)[..2000].ToArray());

        var sums = meta.GetProperty("sum").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        var sumSq = meta.GetProperty("sum_sq").EnumerateArray().Select(x => x.GetDouble()).ToArray();
        for (int c = 0; c < clip.ChannelCount; c++)
        {
            double s = 0, s2 = 0;
            foreach (float v in clip.Channel(c)) { s += v; s2 += (double)v * v; }
            // Every sample is k/32768, so float64 sums are exact up to ~1e-12 regardless of order.
            Assert.Equal(sums[c], s, 9);
            Assert.Equal(sumSq[c], s2, 9);
        }
        Assert.True(sumSq[0] > 1, "the clip is speech, not silence");
    }
}
