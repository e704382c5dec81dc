using CsCheck;
using StepAudio2.Lab.Audio.Mel;

namespace StepAudio2.Lab.Tests.Mel;

public sealed class RealFftTests
{
    // 400 and 1920 are the frontend sizes; the others reach the radix-2/3/4/5 and generic-prime butterflies alone.
    [Theory]
    [InlineData(2)]
    [InlineData(6)]
    [InlineData(10)]
    [InlineData(16)]
    [InlineData(154)] // 77 = 7·11: generic radix
    [InlineData(400)]
    [InlineData(1920)]
    public void Forward_MatchesDirectDft(int n)
    {
        var fft = new RealFft(n);
        Gen.Double[-1.0, 1.0].Array[n].Sample(x =>
        {
            var ws = fft.CreateWorkspace(); // CsCheck samples on several threads; a workspace is per thread

            var re = new double[n / 2 + 1];
            var im = new double[n / 2 + 1];
            var power = new double[n / 2 + 1];
            fft.Forward(x, re, im, ws);
            fft.PowerSpectrum(x, power, ws);
            for (int k = 0; k <= n / 2; k++)
            {
                // Direct DFT with exact angle reduction (k·t mod n) so the reference itself is accurate to ~1e-15·n.
                double sr = 0, si = 0;
                for (int t = 0; t < n; t++)
                {
                    double a = -2.0 * Math.PI * ((long)k * t % n) / n;
                    sr += x[t] * Math.Cos(a);
                    si += x[t] * Math.Sin(a);
                }
                double tol = 1e-12 * n;
                Assert.True(Math.Abs(re[k] - sr) <= tol && Math.Abs(im[k] - si) <= tol, $"n={n} k={k}: ({re[k]}, {im[k]}) vs ({sr}, {si})");
                Assert.True(Math.Abs(power[k] - (sr * sr + si * si)) <= tol * (1 + Math.Sqrt(sr * sr + si * si)) * 2, $"power n={n} k={k}");
            }
        }, iter: n >= 1000 ? 3 : 20);
    }

    [Fact]
    public void LaneBatch_EqualsSingleFrameBitForBit()
    {
        const int n = 400;
        var fft = new RealFft(n);
        var ws = fft.CreateWorkspace();
        var rng = new Random(7);
        var frames = new double[RealFft.Lanes][];
        for (int j = 0; j < frames.Length; j++) frames[j] = Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        for (int t = 0; t < n; t++)
            ws.Input[t] = System.Runtime.Intrinsics.Vector256.Create(frames[0][t], frames[1][t], frames[2][t], frames[3][t]);
        var batched = new double[frames.Length * 201];
        fft.PowerSpectrum(batched, ws, frames.Length);
        for (int j = 0; j < frames.Length; j++)
        {
            var single = new double[201];
            fft.PowerSpectrum(frames[j], single, fft.CreateWorkspace());
            Assert.Equal(single, batched.AsSpan(j * 201, 201).ToArray());
        }
    }

    [Fact]
    public void PureTone_LandsInItsBin()
    {
        const int n = 400;
        var x = new double[n];
        for (int t = 0; t < n; t++) x[t] = Math.Cos(2 * Math.PI * 37 * t / n);
        var fft = new RealFft(n);
        var power = new double[201];
        fft.PowerSpectrum(x, power, fft.CreateWorkspace());
        Assert.Equal(200.0 * 200.0, power[37], 6); // |X| = N/2 for a unit cosine
        for (int k = 0; k < 201; k++)
            if (k != 37) Assert.True(power[k] < 1e-18, $"bin {k}: {power[k]}");
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(-4)]
    public void Constructor_RejectsOddOrTinyLengths(int n) => Assert.Throws<ArgumentOutOfRangeException>(() => new RealFft(n));
}
