using System.Runtime.CompilerServices;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio.PromptFeatures;

/// <summary>
/// Kaldi-compatible log mel filter bank of the CAM++ speaker embedding (docs/model.md §7.4): what
/// <c>torchaudio.compliance.kaldi.fbank(wav[None], num_mel_bins=80, dither=0, sample_frequency=16000)</c> returns with
/// its remaining defaults (25 ms / 10 ms frames, snip_edges, DC removal, pre-emphasis 0.97, Povey window, 512-point FFT,
/// power spectrum, HTK mel 20 Hz – Nyquist, ln with the float-epsilon floor, no energy column). Framing, FFT and
/// mel sums in float64; the mel bank itself in torchaudio's float32 arithmetic.
/// </summary>
public static class KaldiFbank
{
    /// <summary>Sample rate the fbank expects.</summary>
    public const int SampleRate = 16000;
    /// <summary>Frame length in samples (25 ms).</summary>
    public const int FrameLength = 400;
    /// <summary>Frame shift in samples (10 ms).</summary>
    public const int FrameShift = 160;
    /// <summary>FFT size: the frame length rounded up to a power of two.</summary>
    public const int FftSize = 512;
    /// <summary>Mel bands.</summary>
    public const int MelCount = 80;

    private const double Preemphasis = 0.97, LowFreq = 20.0, HighFreq = SampleRate / 2.0;
    // torchaudio floors at torch.finfo(torch.float).eps, not at Kaldi's double epsilon.
    private const double EnergyFloor = 1.1920928955078125e-07;

    private static readonly Lazy<(double[] Window, float[] Bank, int[] First, int[] Count)> s_tables = new(BuildTables);
    private static readonly Lazy<RealFft> s_fft = new(() => new RealFft(FftSize));

    /// <summary>Frames produced for <paramref name="samples"/> samples (snip_edges): 1 + ⌊(N − 400)/160⌋, 0 below 400.</summary>
    public static int FrameCount(int samples) => samples < FrameLength ? 0 : 1 + (samples - FrameLength) / FrameShift;

    /// <summary>Log mel fbank <c>[T, 80]</c> float32 of a 16 kHz waveform in [−1, 1] (at least 400 samples, as torchaudio asserts).</summary>
    public static Tensor Compute(ReadOnlySpan<float> wav16k)
    {
        if (wav16k.Length < FrameLength)
            throw new ArgumentException($"the Kaldi fbank needs at least {FrameLength} samples (one 25 ms frame), got {wav16k.Length}", nameof(wav16k));
        int frames = FrameCount(wav16k.Length);
        var (window, bank, first, count) = s_tables.Value;
        var fft = s_fft.Value;
        var ws = fft.CreateWorkspace();
        var frame = new double[FftSize];
        var power = new double[fft.BinCount];
        var output = new float[frames * MelCount];
        for (int f = 0; f < frames; f++)
        {
            ProcessFrame(wav16k.Slice(f * FrameShift, FrameLength), window, frame);
            fft.PowerSpectrum(frame, power, ws);
            var row = output.AsSpan(f * MelCount, MelCount);
            for (int b = 0; b < MelCount; b++)
            {
                var w = bank.AsSpan(b * (FftSize / 2) + first[b], count[b]);
                var p = power.AsSpan(first[b], count[b]);
                double e = 0;
                for (int k = 0; k < w.Length; k++) e += w[k] * p[k];
                row[b] = (float)Math.Log(Math.Max(e, EnergyFloor));
            }
        }
        return Tensor.FromArray(output, frames, MelCount);
    }

    /// <summary>The CAM++ input: <see cref="Compute"/> with each bin's mean over time subtracted, <c>[T, 80]</c> float32.</summary>
    public static Tensor CmnFbank(ReadOnlySpan<float> wav16k) => SubtractTimeMean(Compute(wav16k));

    /// <summary>x[t, b] − mean_t x[t, b] of a <c>[T, B]</c> tensor (mean accumulated in float64), as a new float32 tensor.</summary>
    public static Tensor SubtractTimeMean(Tensor features)
    {
        ArgumentNullException.ThrowIfNull(features);
        if (features.Shape.Length != 2 || features.Shape[0] < 1)
            throw new ArgumentException($"expected features [T ≥ 1, B], got [{string.Join(", ", features.Shape)}]", nameof(features));
        int t = features.Shape[0], bins = features.Shape[1];
        var x = features.ToFloatArray();
        var mean = new double[bins];
        for (int i = 0; i < t; i++)
            for (int b = 0; b < bins; b++) mean[b] += x[i * bins + b];
        for (int b = 0; b < bins; b++) mean[b] /= t;
        for (int i = 0; i < t; i++)
            for (int b = 0; b < bins; b++) x[i * bins + b] = (float)(x[i * bins + b] - mean[b]);
        return Tensor.FromArray(x, t, bins);
    }

    /// <summary>The HTK mel scale Kaldi uses: 1127·ln(1 + f/700).</summary>
    public static double HzToMel(double hz) => 1127.0 * Math.Log(1.0 + hz / 700.0);

    /// <summary>The 80 triangular weights over FFT bins 0…255 (the Nyquist bin has weight 0), row-major <c>[80, 256]</c>.</summary>
    public static float[] MelBankWeights() => (float[])s_tables.Value.Bank.Clone();

    // DC removal, pre-emphasis (first sample against itself, torchaudio's replicate pad), Povey window, zero pad to 512.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void ProcessFrame(ReadOnlySpan<float> x, double[] window, double[] frame)
    {
        double mean = 0;
        for (int i = 0; i < FrameLength; i++) mean += x[i];
        mean /= FrameLength;
        double prev = x[0] - mean;
        for (int i = 0; i < FrameLength; i++)
        {
            double cur = x[i] - mean;
            frame[i] = (cur - Preemphasis * prev) * window[i];
            prev = cur;
        }
        Array.Clear(frame, FrameLength, FftSize - FrameLength);
    }

    private static (double[], float[], int[], int[]) BuildTables()
    {
        // Povey window: symmetric Hann (torch periodic=False) to the power 0.85.
        var window = new double[FrameLength];
        for (int n = 0; n < FrameLength; n++)
            window[n] = Math.Pow(0.5 - 0.5 * Math.Cos(2.0 * Math.PI * n / (FrameLength - 1)), 0.85);

        // get_mel_banks in torchaudio's own precision: the band edges are Python doubles cast to float32 and the
        // slopes are float32 tensor arithmetic. Near-silent bins are sensitive to the tail weights, and a float64 bank
        // moves them by up to 2e-4 against torchaudio, so this follows its float32 operation order.
        const int bins = FftSize / 2;
        float binWidth = (float)((double)SampleRate / FftSize);
        float melLow = (float)HzToMel(LowFreq);
        float delta = (float)((HzToMel(HighFreq) - HzToMel(LowFreq)) / (MelCount + 1));
        var bank = new float[MelCount * bins];
        var first = new int[MelCount];
        var count = new int[MelCount];
        var binMel = new float[bins];
        for (int k = 0; k < bins; k++) binMel[k] = 1127.0f * MathF.Log(1.0f + binWidth * k / 700.0f);
        for (int b = 0; b < MelCount; b++)
        {
            float left = melLow + b * delta, center = melLow + (b + 1.0f) * delta, right = melLow + (b + 2.0f) * delta;
            int lo = -1, hi = -1;
            for (int k = 0; k < bins; k++)
            {
                float up = (binMel[k] - left) / (center - left), down = (right - binMel[k]) / (right - center);
                float w = Math.Max(0f, Math.Min(up, down));
                bank[b * bins + k] = w;
                if (w != 0f)
                {
                    if (lo < 0) lo = k;
                    hi = k;
                }
            }
            first[b] = lo < 0 ? 0 : lo;
            count[b] = lo < 0 ? 0 : hi - lo + 1;
        }
        return (window, bank, first, count);
    }
}
