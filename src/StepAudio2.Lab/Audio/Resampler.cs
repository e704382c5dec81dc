using System.Collections.Concurrent;
using System.Numerics.Tensors;
using System.Runtime.CompilerServices;

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
        if ((long)B * Taps > 1 << 24) // 64 MiB of weights: beyond that the ratio is pathological (e.g. 44100→44099)
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

        // Each phase is nonzero on only ~2W of its 2W + A taps: beyond |t| = 6 the clamped window is cos²(π/2)
        // ≈ 4e−33, whose product with sin(6π)/(6π) underflows to exactly 0 in float32. torchaudio multiplies those
        // zeros anyway (its comment calls the filters "unbalanced"); skipping them changes no sum for finite input
        // and makes 44.1→16 kHz ~14× cheaper.
        _support = new (int, int)[B];
        for (int j = 0; j < B; j++)
        {
            var row = _weights.AsSpan(j * Taps, Taps);
            int lo = row.IndexOfAnyExcept(0f), hi = row.LastIndexOfAnyExcept(0f);
            _support[j] = lo < 0 ? (0, 0) : (lo, hi - lo + 1);
        }
    }

    private readonly (int Start, int Length)[] _support;

    /// <summary>First nonzero tap and count of taps from there to the last nonzero one, for phase <paramref name="j"/>.</summary>
    public (int Start, int Length) Support(int j) => _support[j];

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
/// torchaudio's default resampler (docs/model.md §2.1): zero-pad W left and W + A right, strided correlation with stride A
/// giving B outputs per step (one per kernel phase), phases interleaved, first ⌈B·N/A⌉ samples kept.
/// </summary>
public static class Resampler
{
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

        Run(k, padded, y);
        return y;
    }

    /// <summary>⌈toRate·N / fromRate⌉ evaluated as torchaudio does (reduced ratio, float64 quotient).</summary>
    public static int OutputLength(int inputLength, int fromRate, int toRate)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(inputLength);
        if (fromRate == toRate) return inputLength;
        int g = ResampleKernel.Gcd(fromRate, toRate);
        double n = Math.Ceiling((double)((long)(toRate / g) * inputLength) / (fromRate / g));
        // A typed refusal rather than an OverflowException: the output must fit one .NET array.
        if (n > Array.MaxLength)
            throw new ArgumentException(
                $"resampling {inputLength} samples from {fromRate} to {toRate} Hz would give {n:0} samples, more than one array holds ({Array.MaxLength})");
        return (int)n;
    }

    // One long loop per call: skip tier-0 JIT so the first call is already fast.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Run(ResampleKernel k, float[] padded, float[] y)
    {
        int a = k.A, b = k.B;
        // Output o = i·B + j is phase j of input step i: y[o] = Σ_n h_j[n] · padded[i·A + n], over h_j's nonzero span.
        // Step-major order keeps the input window (~A + 2W floats) and the trimmed kernel rows in L1.
        var src = padded.AsSpan();
        for (int i = 0, o = 0; o < y.Length; i++)
        {
            int baseIdx = i * a;
            for (int j = 0; j < b && o < y.Length; j++, o++)
            {
                var (start, len) = k.Support(j);
                y[o] = TensorPrimitives.Dot(k.Phase(j).Slice(start, len), src.Slice(baseIdx + start, len));
            }
        }
    }
}
