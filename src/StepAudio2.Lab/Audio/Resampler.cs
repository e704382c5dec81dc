using System.Collections.Concurrent;
using System.Numerics.Tensors;

namespace StepAudio2.Lab.Audio;

/// <summary>
/// The polyphase windowed-sinc filter bank of torchaudio's default resampler for one reduced ratio a→b
/// (<c>sinc_interp_hann</c>, lowpass_filter_width 6, rolloff 0.99): <see cref="Phases"/> = b rows of <see cref="Taps"/> = 2W + a weights.
/// </summary>
public sealed class ResampleKernel
{
    /// <summary>torchaudio's defaults, which the official loader uses.</summary>
    public const int LowpassFilterWidth = 6;
    public const double Rolloff = 0.99;

    private readonly float[] _weights;

    private ResampleKernel(int fromRate, int toRate)
    {
        int g = Gcd(fromRate, toRate);
        A = fromRate / g;
        B = toRate / g;
        double baseFreq = Math.Min(A, B) * Rolloff;
        Width = (int)Math.Ceiling(LowpassFilterWidth * A / baseFreq);
        Taps = 2 * Width + A;
        if ((long)B * Taps > 1 << 26)
            throw new ArgumentException(
                $"{fromRate}→{toRate} Hz reduces to {A}→{B}: a {B}×{Taps} kernel is too large; resample through an intermediate rate");
        _weights = new float[B * Taps];

        // Same operation order as torchaudio's _get_sinc_resample_kernel with dtype=None (float64, then float32),
        // which is what transforms.Resample (the official load_audio) builds. One quirk is kept on purpose:
        // torchaudio forms the phase term as int64 arange / new_freq, which PyTorch evaluates in float32 before it
        // meets the float64 tap grid.
        double scale = baseFreq / A;
        for (int j = 0; j < B; j++)
        {
            double phase = (float)(-j) / (float)B;
            var row = _weights.AsSpan(j * Taps, Taps);
            for (int n = 0; n < Taps; n++)
            {
                double t = (phase + (double)(n - Width) / A) * baseFreq;
                t = Math.Clamp(t, -LowpassFilterWidth, LowpassFilterWidth);
                double w = Math.Cos(t * Math.PI / LowpassFilterWidth / 2);
                w *= w;
                t *= Math.PI;
                double k = t == 0 ? 1.0 : Math.Sin(t) / t;
                row[n] = (float)(k * (w * scale));
            }
        }
    }

    /// <summary>Input rate after dividing by gcd(from, to).</summary>
    public int A { get; }
    /// <summary>Output rate after dividing by gcd(from, to): the number of phases.</summary>
    public int B { get; }
    /// <summary>W: zeros of padding on the left; the right gets W + A.</summary>
    public int Width { get; }
    /// <summary>Weights per phase: 2W + A.</summary>
    public int Taps { get; }
    public int Phases => B;

    /// <summary>Weights of output phase <paramref name="j"/> (0 ≤ j &lt; B), applied to input x[i·A − W + n].</summary>
    public ReadOnlySpan<float> Phase(int j) => _weights.AsSpan(checked(j * Taps), Taps);

    private static readonly ConcurrentDictionary<(int, int), ResampleKernel> Cache = new();

    /// <summary>The kernel for a rate pair, built once per reduced ratio and cached.</summary>
    public static ResampleKernel For(int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(toRate);
        int g = Gcd(fromRate, toRate);
        return Cache.GetOrAdd((fromRate / g, toRate / g), k => new ResampleKernel(k.Item1, k.Item2));
    }

    internal static int Gcd(int a, int b)
    {
        while (b != 0) (a, b) = (b, a % b);
        return a;
    }
}

/// <summary>
/// torchaudio's default resampler (spec §2.1): zero-pad W left and W + A right, strided correlation with stride A
/// giving B outputs per step (one per kernel phase), phases interleaved, first ⌈B·N/A⌉ samples kept.
/// </summary>
public static class Resampler
{
    // Below this many output samples threading costs more than it saves.
    private const int ParallelThreshold = 1 << 15;

    /// <summary>
    /// Resamples <paramref name="x"/> from <paramref name="fromRate"/> to <paramref name="toRate"/> Hz; equal rates return a copy.
    /// Matches <c>torchaudio.transforms.Resample(fromRate, toRate)</c> to float32 rounding.
    /// </summary>
    public static float[] Resample(ReadOnlySpan<float> x, int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(fromRate);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(toRate);
        if (fromRate == toRate) return x.ToArray();
        var k = ResampleKernel.For(fromRate, toRate);
        int outLen = OutputLength(x.Length, fromRate, toRate);
        var y = new float[outLen];
        if (outLen == 0) return y;

        // Padded copy so every window is a plain contiguous slice.
        var padded = new float[(long)x.Length + 2 * k.Width + k.A];
        x.CopyTo(padded.AsSpan(k.Width));

        int steps = (outLen + k.B - 1) / k.B; // input strides needed
        if (outLen < ParallelThreshold || Environment.ProcessorCount == 1)
            Run(k, padded, y, 0, steps);
        else
        {
            int chunk = Math.Max(1, ParallelThreshold / k.B);
            Parallel.For(0, (steps + chunk - 1) / chunk, c =>
                Run(k, padded, y, c * chunk, Math.Min(steps, (c + 1) * chunk)));
        }
        return y;
    }

    /// <summary>⌈toRate·N / fromRate⌉ evaluated as torchaudio does (reduced ratio, float64 quotient).</summary>
    public static int OutputLength(int inputLength, int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputLength);
        if (fromRate == toRate) return inputLength;
        int g = ResampleKernel.Gcd(fromRate, toRate);
        long n = (long)Math.Ceiling((double)((long)(toRate / g) * inputLength) / (fromRate / g));
        return checked((int)n);
    }

    private static void Run(ResampleKernel k, float[] padded, float[] y, int stepStart, int stepEnd)
    {
        int a = k.A, b = k.B, taps = k.Taps;
        for (int i = stepStart; i < stepEnd; i++)
        {
            var window = new ReadOnlySpan<float>(padded, i * a, taps);
            int o = i * b;
            int phases = Math.Min(b, y.Length - o);
            for (int j = 0; j < phases; j++)
                y[o + j] = TensorPrimitives.Dot(k.Phase(j), window);
        }
    }
}
