using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace StepAudio2.Lab.Audio.Mel;

/// <summary>
/// |STFT|² of windowed frames: the one step of the mel frontend with competing implementations (the measured
/// alternatives live in bench/StepAudio2.Lab.Bench/Mel/StftPowerAlternatives.cs, timed by its mel-kernels mode). Immutable and shared; each thread gets a worker.
/// </summary>
internal interface IStftPower
{
    int NFft { get; }
    int BinCount { get; }
    IStftPowerWorker CreateWorker();
}

/// <summary>Per-thread state of an <see cref="IStftPower"/>.</summary>
internal interface IStftPowerWorker
{
    /// <summary>
    /// For frames f = 0…count−1 starting at <c>signal[start + f·hop]</c> (n_fft samples each, already padded), writes
    /// |X_f[k]|² to <c>power[f·BinCount + k]</c>.
    /// </summary>
    void Compute(ReadOnlySpan<float> signal, int start, int hop, int count, Span<double> power);
}

/// <summary>Periodic Hann window, w[n] = 0.5 − 0.5·cos(2πn/N) (<c>torch.hann_window(N, periodic=True)</c>), in float64.</summary>
internal static class HannWindow
{
    public static double[] Periodic(int n)
    {
        var w = new double[n];
        for (int i = 0; i < n; i++) w[i] = 0.5 - 0.5 * Math.Cos(2.0 * Math.PI * i / n);
        return w;
    }
}

/// <summary>The production kernel: periodic Hann window and <see cref="RealFft"/> (mixed radix, float64) per frame.</summary>
internal sealed class MixedRadixStftPower : IStftPower
{
    private readonly RealFft _fft;
    private readonly double[] _window;

    public MixedRadixStftPower(int nFft)
    {
        _fft = new RealFft(nFft);
        _window = HannWindow.Periodic(nFft);
    }

    public int NFft => _fft.Length;
    public int BinCount => _fft.BinCount;
    public IStftPowerWorker CreateWorker() => new Worker(this);

    private sealed class Worker(MixedRadixStftPower owner) : IStftPowerWorker
    {
        private readonly RealFft.Workspace _ws = owner._fft.CreateWorkspace();

        [MethodImpl(MethodImplOptions.AggressiveOptimization)]
        public void Compute(ReadOnlySpan<float> signal, int start, int hop, int count, Span<double> power)
        {
            int n = owner.NFft, bins = owner.BinCount, lanes = RealFft.Lanes;
            var window = owner._window;
            var input = _ws.Input;
            for (int f = 0; f < count; f += lanes)
            {
                int used = Math.Min(lanes, count - f);
                // Lane j holds frame f + j; spare lanes of the last group repeat its last frame (outputs unused).
                int s0 = start + f * hop;
                int s1 = start + (f + Math.Min(1, used - 1)) * hop;
                int s2 = start + (f + Math.Min(2, used - 1)) * hop;
                int s3 = start + (f + Math.Min(3, used - 1)) * hop;
                var x0 = signal.Slice(s0, n);
                var x1 = signal.Slice(s1, n);
                var x2 = signal.Slice(s2, n);
                var x3 = signal.Slice(s3, n);
                for (int i = 0; i < n; i++)
                    input[i] = Vector256.Create((double)x0[i], x1[i], x2[i], x3[i]) * window[i];
                owner._fft.PowerSpectrum(power[(f * bins)..], _ws, used);
            }
        }
    }
}
