using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The NSF harmonic source <c>SourceModuleHnNSF2</c> with <c>SineGen2</c> (docs/model.md §7.10 steps 2–3): f0 [B, T] at frame
/// rate → source [B, upsample·T, 1] = tanh(l_linear(sine·uv + noise)). The N(0,1) noise [B, upsample·T, harmonics] is an
/// input so a run can reproduce the reference; <see cref="SampleNoise"/> draws it from a seed otherwise.
/// </summary>
public sealed class HiftSource
{
    private readonly float[] _linearWeight;
    private readonly float _linearBias;

    public string Path { get; }
    /// <summary>Fundamental plus overtones (9 for the official 8 harmonics).</summary>
    public int Harmonics { get; }
    public int SampleRate { get; }
    /// <summary>Output samples per f0 frame (480).</summary>
    public int Upsample { get; }
    public float SineAmp { get; } = 0.1f;
    public float NoiseStd { get; } = 0.003f;
    public float VoicedThreshold { get; } = 10f;

    public HiftSource(Weights w, string key, string path, int harmonics, int sampleRate, int upsample)
    {
        Path = path;
        Harmonics = harmonics;
        SampleRate = sampleRate;
        Upsample = upsample;
        _linearWeight = WeightNorm.Plain(w, $"{key}.l_linear.weight", 1, harmonics).ToFloatArray();
        _linearBias = WeightNorm.Plain(w, $"{key}.l_linear.bias", 1).ToFloatArray()[0];
    }

    /// <summary>N(0,1) noise [batch, upsample·frames, harmonics] from a seeded generator (Box–Muller on System.Random).</summary>
    public Tensor SampleNoise(int batch, int frames, int seed)
    {
        var rng = new Random(seed);
        var data = new float[(long)batch * frames * Upsample * Harmonics];
        for (long i = 0; i < data.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)), a = 2.0 * Math.PI * u2;
            data[i] = (float)(r * Math.Cos(a));
            if (i + 1 < data.Length) data[i + 1] = (float)(r * Math.Sin(a));
        }
        return Tensor.FromArray(data, batch, frames * Upsample, Harmonics);
    }

    /// <summary>f0 [B, T] (Hz, frame rate) and noise [B, upsample·T, harmonics] → source [B, upsample·T, 1].</summary>
    public Tensor Forward(Tensor f0, Tensor noise, Trace? trace = null)
    {
        if (f0.Rank != 2) throw new ArgumentException($"hift source: f0 {Tensor.ShapeString(f0.Shape)} must be [B, T]");
        int bsz = f0.Shape[0], frames = f0.Shape[1], up = Upsample, h = Harmonics;
        long n = (long)frames * up;
        if (noise.Rank != 3 || noise.Shape[0] != bsz || noise.Shape[1] != n || noise.Shape[2] != h)
            throw new ArgumentException($"hift source: noise {Tensor.ShapeString(noise.Shape)} must be [{bsz}, {n}, {h}]");
        var f0s = f0.ToFloatArray();
        var nz = noise.ToFloatArray();
        var outp = new float[bsz * n];
        var phaseFrames = new float[frames * h];
        var e = new float[h];
        // float32 operation order of SineGen2 (docs/model.md §9: Φ reaches thousands of radians, so ulps matter)
        float pi = (float)Math.PI, upF = up, sr = SampleRate;
        float scale = (float)(1.0 / up);
        float unvoicedAmp = (float)(0.1 / 3), sineAmp = SineAmp, noiseStd = NoiseStd;
        for (int b = 0; b < bsz; b++)
        {
            // Frame-rate phase: r_d,h = (h·f0_d / sr) mod 1 (the linear down-sampling reads two equal samples of frame d;
            // SineGen2's random initial phase sits at sample 0 and is never read), cumulative sum in double as torch's
            // CPU cumsum, then ·2·π and ·upsample in float.
            for (int k = 0; k < h; k++)
            {
                double acc = 0;
                for (int d = 0; d < frames; d++)
                {
                    float fn = f0s[b * frames + d] * (k + 1);
                    float r = fn / sr;
                    r -= MathF.Floor(r);
                    acc += r;
                    phaseFrames[d * h + k] = (float)acc * 2f * pi * upF;
                }
            }
            for (long s = 0; s < n; s++)
            {
                // linear up-sampling, align_corners=false: source position (s+0.5)/up − 0.5, clamped at 0
                float src = scale * (s + 0.5f) - 0.5f;
                if (src < 0) src = 0;
                int i0 = (int)src;
                int i1 = i0 + (i0 < frames - 1 ? 1 : 0);
                float l1 = src - i0, l0 = 1f - l1;
                float f0n = f0s[b * frames + (int)(s / up)];
                float uv = f0n > VoicedThreshold ? 1f : 0f;
                float noiseAmp = uv * noiseStd + (1f - uv) * unvoicedAmp;
                float acc = _linearBias;
                float sum = 0;
                for (int k = 0; k < h; k++)
                {
                    float phase = l0 * phaseFrames[i0 * h + k] + l1 * phaseFrames[i1 * h + k];
                    float sine = MathF.Sin(phase) * sineAmp;
                    e[k] = sine * uv + noiseAmp * nz[(b * n + s) * h + k];
                    sum += _linearWeight[k] * e[k];
                }
                outp[b * n + s] = MathF.Tanh(sum + acc);
            }
        }
        var y = Tensor.FromArray(outp, bsz, (int)n, 1);
        trace?.Record(Path, y);
        return y;
    }
}
