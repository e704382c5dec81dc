using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Audio;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>Parity with torchaudio's default resampler (resample.json, made by make_audio_fixtures.py).</summary>
public sealed class ResamplerTests(ITestOutputHelper output)
{
    private const float Tolerance = 1e-5f;

    public static IEnumerable<object[]> Cases =>
        AudioFixtures.Json("resample.json").GetProperty("cases").EnumerateArray().Select(c => new object[] { c.GetProperty("output").GetString()! });

    public static IEnumerable<object[]> Kernels =>
        AudioFixtures.Json("resample.json").GetProperty("kernels").EnumerateArray().Select(c => new object[] { c.GetProperty("file").GetString()! });

    private static JsonElement Case(string output, string list = "cases") =>
        AudioFixtures.Json("resample.json").GetProperty(list).EnumerateArray()
            .Single(c => c.GetProperty(list == "cases" ? "output" : "file").GetString() == output);

    [Theory]
    [MemberData(nameof(Cases))]
    public void Matches_torchaudio_resample(string outputFile)
    {
        var c = Case(outputFile);
        int from = c.GetProperty("from_rate").GetInt32(), to = c.GetProperty("to_rate").GetInt32();
        string input = c.GetProperty("input").GetString()!;
        float[] x = input.EndsWith(".f32")
            ? AudioFixtures.F32(input)
            : AudioFile.Read(AudioFixtures.RealSpeech).Channel(0)[..22050].ToArray();
        Assert.Equal(c.GetProperty("input_length").GetInt32(), x.Length);

        var want = AudioFixtures.F32(outputFile);
        var got = Resampler.Resample(x, from, to);

        Assert.Equal(c.GetProperty("output_length").GetInt32(), want.Length);
        Assert.Equal(want.Length, got.Length);
        Assert.Equal(want.Length, Resampler.OutputLength(x.Length, from, to));
        float maxDiff = 0;
        int at = -1;
        for (int i = 0; i < want.Length; i++)
        {
            float d = Math.Abs(want[i] - got[i]);
            if (d > maxDiff) (maxDiff, at) = (d, i);
        }
        output.WriteLine($"{c.GetProperty("name").GetString()}: max |ours − torchaudio| = {maxDiff:E2} at {at}");
        Assert.True(maxDiff <= Tolerance, $"max abs diff {maxDiff:E3} at sample {at} exceeds {Tolerance:E0}");
        Assert.True(want.Max(Math.Abs) > 0.1f, "reference output is not trivially small");
    }

    [Theory]
    [MemberData(nameof(Kernels))]
    public void Kernel_matches_torchaudio_float64_kernel(string file)
    {
        var c = Case(file, "kernels");
        var k = ResampleKernel.For(c.GetProperty("from_rate").GetInt32(), c.GetProperty("to_rate").GetInt32());
        Assert.Equal(c.GetProperty("phases").GetInt32(), k.Phases);
        Assert.Equal(c.GetProperty("taps").GetInt32(), k.Taps);
        Assert.Equal(c.GetProperty("width").GetInt32(), k.Width);
        var want = AudioFixtures.F32(file);
        for (int j = 0; j < k.Phases; j++)
            for (int n = 0; n < k.Taps; n++)
            {
                float w = want[j * k.Taps + n], g = k.Phase(j)[n];
                // float64 math then one rounding to float32: at most one float32 ulp apart (libm vs SLEEF sin/cos).
                Assert.True(Math.Abs(w - g) <= Math.Max(1e-12f, MathF.BitIncrement(Math.Abs(w)) - Math.Abs(w)),
                    $"phase {j} tap {n}: torchaudio {w:R}, ours {g:R}");
            }
    }

    [Theory]
    [InlineData(22050, 16000, 441, 320, 9)]
    [InlineData(44100, 16000, 441, 160, 17)]
    [InlineData(48000, 16000, 3, 1, 19)]
    [InlineData(16000, 24000, 2, 3, 7)]
    [InlineData(8000, 16000, 1, 2, 7)]
    [InlineData(22050, 24000, 147, 160, 7)]
    public void Kernel_geometry_follows_the_spec(int from, int to, int a, int b, int width)
    {
        // Spec §2.1: a, b reduced by the gcd; W = ⌈6a / (0.99·min(a, b))⌉; taps 2W + a.
        var k = ResampleKernel.For(from, to);
        Assert.Equal((a, b, width, 2 * width + a), (k.A, k.B, k.Width, k.Taps));
    }

    [Theory]
    [InlineData(0, 22050, 16000, 0)]
    [InlineData(1, 22050, 16000, 1)]
    [InlineData(441, 22050, 16000, 320)]
    [InlineData(442, 22050, 16000, 321)]
    [InlineData(67529, 22050, 16000, 49001)] // ⌈320·67529/441⌉ = ⌈49000.2…⌉
    [InlineData(7, 16000, 24000, 11)]
    [InlineData(5, 48000, 16000, 2)]
    public void Output_length_is_ceil_b_n_over_a(int n, int from, int to, int expected)
    {
        Assert.Equal(expected, Resampler.OutputLength(n, from, to));
        Assert.Equal(expected, Resampler.Resample(new float[n], from, to).Length);
    }

    [Fact]
    public void Equal_rates_return_a_copy_and_bad_rates_throw()
    {
        float[] x = [0.1f, -0.2f, 0.3f];
        var y = Resampler.Resample(x, 16000, 16000);
        Assert.Equal(x, y);
        Assert.NotSame(x, y);
        Assert.Throws<ArgumentOutOfRangeException>(() => Resampler.Resample(x, 0, 16000));
        Assert.Throws<ArgumentOutOfRangeException>(() => Resampler.Resample(x, 16000, -1));
        Assert.Throws<ArgumentException>(() => Resampler.Resample(x, 44100, 44099)); // a 44099×88 k kernel: refused
    }

    [Fact]
    public void Dc_passes_with_unit_gain_away_from_the_edges()
    {
        var x = Enumerable.Repeat(0.5f, 8000).ToArray();
        foreach (var (from, to) in new[] { (22050, 16000), (16000, 24000), (8000, 16000), (48000, 16000) })
        {
            var y = Resampler.Resample(x, from, to);
            for (int i = y.Length / 4; i < 3 * y.Length / 4; i++) Assert.InRange(y[i], 0.499f, 0.501f);
        }
    }

    [Fact]
    public void Thirty_seconds_of_44k1_to_16k_is_fast_and_prefix_consistent()
    {
        var rng = new Random(5);
        var x = new float[44100 * 30];
        for (int i = 0; i < x.Length; i++) x[i] = (float)(rng.NextDouble() * 2 - 1);
        Resampler.Resample(x.AsSpan(0, 44100), 44100, 16000); // warm-up: kernel cache, JIT
        var sw = Stopwatch.StartNew();
        var y = Resampler.Resample(x, 44100, 16000);
        sw.Stop();
        output.WriteLine($"30 s 44.1 kHz → 16 kHz: {sw.Elapsed.TotalMilliseconds:F0} ms on {Environment.ProcessorCount} cores");
        Assert.Equal(480000, y.Length);
        // ~30 ms of CPU on an idle core; the bound is loose because test machines run many jobs at once.
        Assert.True(sw.Elapsed.TotalSeconds < 8, $"took {sw.Elapsed.TotalSeconds:F2} s");

        // Outputs whose windows lie inside a 1 s prefix are the same bits whether the prefix or the whole signal is resampled.
        var prefix = Resampler.Resample(x.AsSpan(0, 44100), 44100, 16000);
        Assert.Equal(prefix.AsSpan(0, 15000).ToArray(), y.AsSpan(0, 15000).ToArray());
    }

    [Fact]
    public void Clip_resample_resamples_every_channel()
    {
        var clip = AudioFile.Read(AudioFixtures.File("wav_pcm16_2ch_16000.wav"));
        var r = clip.Resample(24000);
        Assert.Equal(24000, r.SampleRate);
        Assert.Equal(Resampler.Resample(clip.Channel(1), 16000, 24000), r.Channel(1).ToArray());
        Assert.Same(clip, clip.Resample(16000));
    }
}
