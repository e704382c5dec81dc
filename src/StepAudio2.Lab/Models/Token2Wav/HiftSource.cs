using StepAudio2.Lab.Engine;
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
        LinearWeight = WeightNorm.Plain(w, $"{key}.l_linear.weight", 1, harmonics);
        LinearBias = WeightNorm.Plain(w, $"{key}.l_linear.bias", 1);
        _harmonicNumbers = Tensor.FromArray(Enumerable.Range(1, harmonics).Select(k => (float)k).ToArray(), 1, 1, harmonics);
    }

    private readonly Tensor _harmonicNumbers;

    /// <summary><c>l_linear</c> [1, harmonics] and its bias [1]: the harmonics merged into one source signal.</summary>
    public Tensor LinearWeight { get; }
    public Tensor LinearBias { get; }

    /// <summary>N(0,1) noise [batch, upsample·frames, harmonics] from a seeded generator (<see cref="GaussianNoise"/>).</summary>
    public Tensor SampleNoise(int batch, int frames, int seed) => GaussianNoise.Sample(seed, batch, frames * Upsample, Harmonics);

    /// <summary>f0 [B, T] (Hz, frame rate) and noise [B, upsample·T, harmonics] → source [B, upsample·T, 1].</summary>
    public Tensor Forward(Tensor f0, Tensor noise, Trace? trace = null)
    {
        if (f0.Rank != 2) throw new ArgumentException($"hift source: f0 {Tensor.ShapeString(f0.Shape)} must be [B, T]");
        int bsz = f0.Shape[0], frames = f0.Shape[1], up = Upsample, h = Harmonics;
        int n = checked(frames * up);
        if (noise.Rank != 3 || noise.Shape[0] != bsz || noise.Shape[1] != n || noise.Shape[2] != h)
            throw new ArgumentException($"hift source: noise {Tensor.ShapeString(noise.Shape)} must be [{bsz}, {n}, {h}]");
        // float32 operation order of SineGen2 (docs/model.md §9: Φ reaches thousands of radians, so ulps matter).
        // Frame-rate phase: r = (h·f0 / sr) mod 1 (the linear down-sampling reads two equal samples of a frame; SineGen2's
        // random initial phase sits at sample 0 and is never read), cumulative sum over frames, then ·2·π and ·upsample.
        var r = Ops.Divide(Ops.Multiply(f0.Reshape(bsz, frames, 1), Ops.FromHost(_harmonicNumbers)), Scalar(SampleRate));
        r = Ops.Subtract(r, Ops.Floor(r));
        var phi = Ops.Multiply(Ops.Multiply(Ops.Multiply(Ops.Cumsum(r, 1), 2f), (float)Math.PI), (float)up); // [B, T, H]

        // linear up-sampling to the sample rate (align_corners=false): Φ(s) = l0·Φ[i0] + l1·Φ[i1]; the positions depend
        // only on the lengths, so the gather indices and weights are built on the host
        var (i0, i1, l0, l1) = UpsampleTable(frames, up);
        var w0 = Ops.FromHost(Tensor.FromArray(l0, n, 1));
        var w1 = Ops.FromHost(Tensor.FromArray(l1, n, 1));
        var rows = new Tensor[bsz];
        for (int b = 0; b < bsz; b++)
        {
            var table = Ops.Contiguous(phi.Slice(0, b, 1)).Reshape(frames, h);
            rows[b] = Ops.Add(Ops.Multiply(Ops.Take(table, i0), w0), Ops.Multiply(Ops.Take(table, i1), w1)).Reshape(1, n, h);
        }
        var phase = bsz == 1 ? rows[0] : Ops.Concatenate(rows, 0);
        var sine = Ops.Multiply(Ops.Sin(phase), SineAmp);

        // voiced where f0 > threshold (at the sample's frame): f0 − θ > 0 exactly then, and ReLU leaves it non-zero
        var f0Up = Ops.Repeat(f0.Reshape(bsz, frames, 1), 1, up); // [B, n, 1]
        var uv = Ops.Where(Ops.Relu(Ops.Multiply(f0Up, 1f, -VoicedThreshold)), Scalar(1f), Scalar(0f));
        float unvoicedAmp = (float)(0.1 / 3);
        var noiseAmp = Ops.Add(Ops.Multiply(uv, NoiseStd), Ops.Multiply(Ops.Multiply(uv, -1f, 1f), unvoicedAmp)); // uv·σ + (1 − uv)·a
        var e = Ops.Add(Ops.Multiply(sine, uv), Ops.Multiply(noiseAmp, noise));
        var y = Ops.Tanh(Ops.Linear(e, LinearWeight, LinearBias));
        trace?.Record(Path, y);
        return y;
    }

    private static Tensor Scalar(float v) => Ops.FromHost(Tensor.FromArray([v], 1));

    /// <summary>Source frames and weights of F.interpolate(mode="linear", align_corners=False, scale_factor=up) per sample.</summary>
    private static (int[] I0, int[] I1, float[] L0, float[] L1) UpsampleTable(int frames, int up)
    {
        int n = frames * up;
        var i0 = new int[n]; var i1 = new int[n]; var l0 = new float[n]; var l1 = new float[n];
        float scale = (float)(1.0 / up);
        for (int s = 0; s < n; s++)
        {
            float src = scale * (s + 0.5f) - 0.5f; // source position, clamped at 0
            if (src < 0) src = 0;
            int a = (int)src;
            i0[s] = a;
            i1[s] = a + (a < frames - 1 ? 1 : 0);
            l1[s] = src - a;
            l0[s] = 1f - l1[s];
        }
        return (i0, i1, l0, l1);
    }
}
