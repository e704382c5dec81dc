using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// Seeded N(0, 1) noise for the two random inputs of token2wav (the CFM's starting point, the NSF's noise), drawn on the
/// host before upload: Box–Muller on <see cref="Random"/>, both values of each pair used, so one seed gives one tensor
/// bit for bit on every machine and backend.
/// </summary>
public static class GaussianNoise
{
    /// <summary>A host f32 tensor of <paramref name="shape"/> filled from <paramref name="seed"/>.</summary>
    public static Tensor Sample(int seed, params int[] shape)
    {
        var rng = new Random(seed);
        var data = new float[Tensor.CountElements(shape)];
        for (long i = 0; i < data.Length; i += 2)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)), a = 2.0 * Math.PI * u2;
            data[i] = (float)(r * Math.Cos(a));
            if (i + 1 < data.Length) data[i + 1] = (float)(r * Math.Sin(a));
        }
        return Tensor.FromArray(data, shape);
    }
}
