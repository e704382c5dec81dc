using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio.PromptFeatures;

/// <summary>
/// The 24 kHz prompt mel of the flow and vocoder domain (docs/model.md §7.5): reflect pad 720 both sides, STFT without centring
/// (n_fft 1920, hop 480, periodic Hann), magnitude sqrt(|X|² + 1e−9), Slaney mel sr 24 000 / 80 bands / 0–8000 Hz,
/// ln(max(x, 1e−5)). Float64 inside, float32 out.
/// </summary>
public static class Mel24k
{
    /// <summary>Sample rate the mel expects.</summary>
    public const int SampleRate = 24000;
    /// <summary>FFT size and window length.</summary>
    public const int NFft = 1920;
    /// <summary>Hop in samples (50 frames per second).</summary>
    public const int Hop = 480;
    /// <summary>Mel bands.</summary>
    public const int MelCount = 80;
    /// <summary>Reflect padding on each side, (n_fft − hop)/2.</summary>
    public const int Pad = (NFft - Hop) / 2;

    private const double MagnitudeEpsilon = 1e-9, LogFloor = 1e-5;

    private static readonly Lazy<SlaneyMelFilterBank> s_bank = new(() => new SlaneyMelFilterBank(SampleRate, NFft, MelCount, 0.0, 8000.0));
    private static readonly Lazy<MixedRadixStftPower> s_stft = new(() => new MixedRadixStftPower(NFft));

    /// <summary>The Slaney bank used (sr 24 000, n_fft 1920, 80 bands, f_max 8000).</summary>
    public static SlaneyMelFilterBank FilterBank => s_bank.Value;

    /// <summary>Frames for N samples: ⌊N/480⌋.</summary>
    public static int FrameCount(int samples) => samples / Hop;

    /// <summary>Log mel <c>[1, T, 80]</c> float32 of a 24 kHz mono waveform; needs more than 720 samples (reflect padding).</summary>
    public static Tensor Compute(ReadOnlySpan<float> wav24k)
    {
        if (wav24k.Length <= Pad)
            throw new ArgumentException($"the 24 kHz mel needs more than {Pad} samples for its reflect padding, got {wav24k.Length}", nameof(wav24k));
        int n = wav24k.Length;
        var padded = new float[n + 2 * Pad];
        wav24k.CopyTo(padded.AsSpan(Pad));
        for (int i = 1; i <= Pad; i++)
        {
            padded[Pad - i] = wav24k[i];
            padded[Pad + n - 1 + i] = wav24k[n - 1 - i];
        }

        int frames = FrameCount(n);
        var stft = s_stft.Value;
        var bank = s_bank.Value;
        int bins = stft.BinCount;
        var power = new double[frames * bins];
        stft.CreateWorker().Compute(padded, 0, Hop, frames, power);

        var output = new float[frames * MelCount];
        var mel = new double[MelCount];
        for (int f = 0; f < frames; f++)
        {
            var p = power.AsSpan(f * bins, bins);
            for (int k = 0; k < bins; k++) p[k] = Math.Sqrt(p[k] + MagnitudeEpsilon);
            bank.Apply(p, mel);
            for (int b = 0; b < MelCount; b++) output[f * MelCount + b] = (float)Math.Log(Math.Max(mel[b], LogFloor));
        }
        return Tensor.FromArray(output, 1, frames, MelCount);
    }
}
