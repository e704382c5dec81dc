using StepAudio2.Lab.IO.Safetensors;
using CsCheck;
using StepAudio2.Lab.Audio.Mel;

namespace StepAudio2.Lab.Tests.Mel;

public sealed class SlaneyMelFilterBankTests
{
    private static readonly Lazy<SafetensorsFile> s_fixture =
        new(() => SafetensorsFile.Open(TestPaths.Fixture("mel", "mel_reference.safetensors")));

    [Fact]
    public void LlmBank_MatchesSpecSelfCheckValues()
    {
        var bank = SlaneyMelFilterBank.Llm128;
        Assert.Equal((128, 201), (bank.MelCount, bank.BinCount));
        Assert.Equal(45.2456405, SlaneyMelFilterBank.HzToMel(8000), 7);
        Assert.Equal(23.3828, bank.BandEdgesHz[1], 4);
        Assert.Equal(8000.0, bank.BandEdgesHz[129], 9);

        // Band 0: a single non-zero weight, at bin 1 (40 Hz).
        Assert.Equal((1, 1), bank.NonZeroBins(0));
        Assert.Equal(0.01237399, bank.Band(0)[1], 8);
        Assert.Equal(1, bank.Band(0).ToArray().Count(w => w != 0));

        Assert.Equal(0.00674968, bank.Band(64)[42], 8);
        Assert.Equal(0.01809152, bank.Band(64)[43], 8);

        var last = bank.Band(127).ToArray();
        Assert.Equal(9, last.Count(w => w != 0));
        Assert.Equal((191, 9), bank.NonZeroBins(127));
        Assert.Equal(0.0004757, last[191], 7);
        Assert.Equal(0.00161717, last[192], 8);
    }

    [Theory]
    [InlineData("16k", 16000, 400, 128, 8000.0)]
    [InlineData("24k", 24000, 1920, 80, 8000.0)] // flow prompt mel (docs/model.md §7.5): f_max below Nyquist
    public void Bank_MatchesReferenceFiltersAndEdges(string key, int sr, int nFft, int nMels, double fMax)
    {
        var bank = new SlaneyMelFilterBank(sr, nFft, nMels, 0.0, fMax);
        var expected = s_fixture.Value.Get("filters." + key);
        Assert.Equal(new[] { nMels, nFft / 2 + 1 }, expected.Shape);
        Assert.Equal(expected.Shape, bank.ToTensor().Shape);

        var want = expected.ToFloatArray();
        var got = bank.Weights;
        double maxAbs = 0;
        for (int i = 0; i < want.Length; i++) maxAbs = Math.Max(maxAbs, Math.Abs(got[i] - want[i]));
        Assert.True(maxAbs <= 1e-9, $"max |Δ| = {maxAbs:E3} vs reference filters.{key}");

        var edges = s_fixture.Value.Get("edges." + key).ToDoubleArray();
        Assert.Equal(edges.Length, bank.BandEdgesHz.Count);
        for (int i = 0; i < edges.Length; i++)
            Assert.True(Math.Abs(bank.BandEdgesHz[i] - edges[i]) <= 1e-9 * Math.Max(1, edges[i]), $"edge {i}: {bank.BandEdgesHz[i]} vs {edges[i]}");

        // The non-zero ranges really bound the non-zero weights.
        for (int b = 0; b < nMels; b++)
        {
            var (first, count) = bank.NonZeroBins(b);
            var row = bank.Band(b);
            for (int k = 0; k < row.Length; k++)
                if (k < first || k >= first + count) Assert.Equal(0f, row[k]);
        }
    }

    [Fact]
    public void Bank24k_IsZeroAboveFMax()
    {
        var bank = new SlaneyMelFilterBank(24000, 1920, 80, 0.0, 8000.0);
        for (int b = 0; b < 80; b++)
        {
            var (first, count) = bank.NonZeroBins(b);
            Assert.True((first + count - 1) * 12.5 < 8000.0, $"band {b} reaches bin {first + count - 1}");
        }
    }

    [Fact]
    public void MelScale_RoundTrips()
    {
        Gen.Double[0.0, 48000.0].Sample(f =>
        {
            double back = SlaneyMelFilterBank.MelToHz(SlaneyMelFilterBank.HzToMel(f));
            Assert.True(Math.Abs(back - f) <= 1e-9 * Math.Max(1, f), $"{f} → {back}");
        });
        Assert.Equal(15.0, SlaneyMelFilterBank.HzToMel(1000.0), 12); // the linear/log break
    }

    [Theory]
    [InlineData(0, 400, 128, 0.0, null)]
    [InlineData(16000, 1, 128, 0.0, null)]
    [InlineData(16000, 400, 0, 0.0, null)]
    [InlineData(16000, 400, 128, 9000.0, 8000.0)]
    [InlineData(16000, 400, 128, -1.0, null)]
    public void Bank_RejectsBadParameters(int sr, int nFft, int nMels, double fMin, double? fMax) =>
        Assert.ThrowsAny<ArgumentException>(() => new SlaneyMelFilterBank(sr, nFft, nMels, fMin, fMax));
}
