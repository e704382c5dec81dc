using StepAudio2.Lab.Audio.PromptFeatures;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.PromptFeatures;

public sealed class Mel24kTests
{
    private static readonly Lazy<SafetensorsFile> s_fixture =
        new(() => SafetensorsFile.Open(TestPaths.Fixture("prompt_features", "mel24k.safetensors")));

    [Fact]
    public void Compute_MatchesSpecReferenceOnFemalePrompt()
    {
        var wav = s_fixture.Value.Get("female.wav24k").ToFloatArray();
        var expected = s_fixture.Value.Get("female.mel");

        var actual = Mel24k.Compute(wav);

        Assert.Equal(DType.F32, actual.DType);
        Assert.Equal(new[] { 1, wav.Length / 480, 80 }, actual.Shape);
        double rel = TestMath.RelL2(actual, expected);
        Assert.True(rel <= 1e-5, $"rel-L2 {rel:E3}");
        double maxAbs = KaldiFbankTests.MaxAbs(actual, expected);
        Assert.True(maxAbs <= 3e-4, $"max abs {maxAbs:E3}");
    }

    [Fact]
    public void Compute_ReflectPaddingMakesTheFirstFrameDependOnMirroredSamples()
    {
        // Frame 0 covers padded samples 0…1919 = mirrored x[720…1] then x[0…1199]: changing x[1199] moves frame 0,
        // changing x[1200] (first sample outside frame 0) does not.
        var rng = new Random(7);
        var wav = new float[4800];
        for (int i = 0; i < wav.Length; i++) wav[i] = (float)(rng.NextDouble() - 0.5);
        var baseMel = Mel24k.Compute(wav).ToFloatArray();

        var inside = (float[])wav.Clone();
        inside[1199] += 0.5f;
        var outside = (float[])wav.Clone();
        outside[1200] += 0.5f;
        var melInside = Mel24k.Compute(inside).ToFloatArray();
        var melOutside = Mel24k.Compute(outside).ToFloatArray();

        Assert.Contains(Enumerable.Range(0, 80), b => melInside[b] != baseMel[b]);
        Assert.All(Enumerable.Range(0, 80), b => Assert.Equal(baseMel[b], melOutside[b]));
        Assert.Contains(Enumerable.Range(80, 80), b => melOutside[b] != baseMel[b]); // frame 1 starts at x[−240]
    }

    [Fact]
    public void Compute_SilenceHitsTheLogFloorOrTheEpsilonMagnitude()
    {
        // Zero input: |X| = sqrt(1e−9) in every bin, so each band is ln(max(sqrt(1e−9)·Σ_k W[b,k], 1e−5)).
        var mel = Mel24k.Compute(new float[2400]).ToFloatArray();
        var bank = Mel24k.FilterBank;
        for (int b = 0; b < 80; b++)
        {
            double rowSum = 0;
            foreach (var w in bank.Band(b)) rowSum += w;
            float expected = (float)Math.Log(Math.Max(Math.Sqrt(1e-9) * rowSum, 1e-5));
            for (int f = 0; f < 5; f++) Assert.Equal(expected, mel[f * 80 + b], 6);
        }
    }

    [Theory]
    [InlineData(721, 1)]
    [InlineData(959, 1)]
    [InlineData(960, 2)]
    [InlineData(96_000, 200)]
    public void Compute_FrameCountIsSamplesOver480(int samples, int frames)
    {
        Assert.Equal(frames, Mel24k.FrameCount(samples));
        Assert.Equal(new[] { 1, frames, 80 }, Mel24k.Compute(new float[samples]).Shape);
    }

    [Fact]
    public void Compute_RejectsInputTooShortToReflect()
    {
        var ex = Assert.Throws<ArgumentException>(() => Mel24k.Compute(new float[720]));
        Assert.Contains("720", ex.Message);
    }
}
