using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio.Mel;

/// <summary>
/// Triangular mel filter bank on the Slaney scale with Slaney area normalisation: mirrors <c>librosa.filters.mel</c> with its
/// defaults (<c>htk=False</c>, <c>norm="slaney"</c>), which the official code calls in <c>utils._mel_filters</c> (LLM path),
/// s3tokenizer's <c>_mel_filters</c> and the flow-prompt <c>mel_spectrogram</c> (sr 24 000, n_fft 1920, 80 bands, f_max 8000). Built in float64 from the formula
/// (docs/model.md §2.4), stored as float32 <c>[nMels, nFft/2 + 1]</c>, row-major.
/// </summary>
public sealed class SlaneyMelFilterBank
{
    private const double FSp = 200.0 / 3, MinLogHz = 1000.0, MinLogMel = 15.0;
    private static readonly double LogStep = Math.Log(6.4) / 27.0;

    private static readonly Lazy<SlaneyMelFilterBank> s_llm = new(() => new SlaneyMelFilterBank(16000, 400, 128));

    private readonly float[] _weights;
    private readonly int[] _first, _count; // non-zero bin range per band

    /// <param name="fMax">Upper edge in Hz; <c>null</c> means sampleRate/2 (librosa's default).</param>
    public SlaneyMelFilterBank(int sampleRate, int nFft, int nMels, double fMin = 0.0, double? fMax = null)
    {
        if (sampleRate <= 0) throw new ArgumentOutOfRangeException(nameof(sampleRate), sampleRate, "sample rate must be positive");
        if (nFft < 2) throw new ArgumentOutOfRangeException(nameof(nFft), nFft, "n_fft must be at least 2");
        if (nMels < 1) throw new ArgumentOutOfRangeException(nameof(nMels), nMels, "at least one mel band is needed");
        double hi = fMax ?? sampleRate / 2.0;
        if (!(fMin >= 0 && fMin < hi && double.IsFinite(hi)))
            throw new ArgumentOutOfRangeException(nameof(fMin), $"need 0 ≤ fMin < fMax, got fMin {fMin}, fMax {hi}");

        SampleRate = sampleRate;
        NFft = nFft;
        MelCount = nMels;
        FMin = fMin;
        FMax = hi;
        BinCount = nFft / 2 + 1;

        // Same operation order as the reference (numpy): φ_k = k·sr/n_fft, M_i = m_lo + (m_hi − m_lo)·i/(n+1).
        var phi = new double[BinCount];
        for (int k = 0; k < BinCount; k++) phi[k] = k * (double)sampleRate / nFft;
        double mLo = HzToMel(fMin), mHi = HzToMel(hi);
        var edges = new double[nMels + 2];
        for (int i = 0; i < edges.Length; i++) edges[i] = MelToHz(mLo + (mHi - mLo) * i / (nMels + 1));
        BandEdgesHz = edges;

        _weights = new float[nMels * BinCount];
        _first = new int[nMels];
        _count = new int[nMels];
        for (int i = 0; i < nMels; i++)
        {
            double norm = 2.0 / (edges[i + 2] - edges[i]);
            int first = -1, last = -1;
            for (int k = 0; k < BinCount; k++)
            {
                double lower = (phi[k] - edges[i]) / (edges[i + 1] - edges[i]);
                double upper = (edges[i + 2] - phi[k]) / (edges[i + 2] - edges[i + 1]);
                float w = (float)(Math.Max(0.0, Math.Min(lower, upper)) * norm);
                _weights[i * BinCount + k] = w;
                if (w != 0f)
                {
                    if (first < 0) first = k;
                    last = k;
                }
            }
            // A band can be empty when n_mels is large for n_fft (librosa warns); it then contributes zero.
            _first[i] = first < 0 ? 0 : first;
            _count[i] = first < 0 ? 0 : last - first + 1;
        }
    }

    /// <summary>The LLM-path bank (and the S3 tokenizer's): sr 16 000, n_fft 400, 128 bands, 0–8000 Hz (docs/model.md §2.4).</summary>
    public static SlaneyMelFilterBank Llm128 => s_llm.Value;

    public int SampleRate { get; }
    public int NFft { get; }
    public int MelCount { get; }
    public double FMin { get; }
    public double FMax { get; }
    /// <summary>One-sided FFT bins, n_fft/2 + 1.</summary>
    public int BinCount { get; }
    /// <summary>F_0 … F_{nMels+1}: the band edges in Hz (band i rises from F_i, peaks at F_{i+1}, falls to F_{i+2}).</summary>
    public IReadOnlyList<double> BandEdgesHz { get; }

    /// <summary>All weights, row-major <c>[MelCount, BinCount]</c>.</summary>
    public ReadOnlySpan<float> Weights => _weights;

    /// <summary>Weights of one band over all bins.</summary>
    public ReadOnlySpan<float> Band(int band) => _weights.AsSpan(band * BinCount, BinCount);

    /// <summary>The contiguous bin range outside which the band's weights are zero (Count 0 for an empty band).</summary>
    public (int First, int Count) NonZeroBins(int band) => (_first[band], _count[band]);

    /// <summary>A copy as a float32 tensor <c>[MelCount, BinCount]</c>.</summary>
    public Tensor ToTensor() => Tensor.FromArray((float[])_weights.Clone(), MelCount, BinCount);

    /// <summary>Hz → mel on the Slaney scale: linear below 1 kHz (f/(200/3)), logarithmic above (15 + ln(f/1000)/(ln 6.4/27)).</summary>
    public static double HzToMel(double hz) => hz < MinLogHz ? hz / FSp : MinLogMel + Math.Log(hz / MinLogHz) / LogStep;

    /// <summary>Inverse of <see cref="HzToMel"/>.</summary>
    public static double MelToHz(double mel) => mel < MinLogMel ? FSp * mel : MinLogHz * Math.Exp(LogStep * (mel - MinLogMel));

    /// <summary>mel[b] = Σ_k W[b, k]·power[k] over each band's non-zero bins, accumulated in float64.</summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization)]
    internal void Apply(ReadOnlySpan<double> power, Span<double> mel)
    {
        for (int b = 0; b < MelCount; b++)
        {
            var w = _weights.AsSpan(b * BinCount + _first[b], _count[b]);
            var p = power.Slice(_first[b], _count[b]);
            double acc = 0;
            for (int k = 0; k < w.Length; k++) acc += w[k] * p[k];
            mel[b] = acc;
        }
    }
}
