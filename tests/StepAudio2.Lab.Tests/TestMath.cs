using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests;

/// <summary>Shared numeric helpers of the parity tests.</summary>
internal static class TestMath
{
    /// <summary>‖a − b‖₂ / ‖b‖₂ after asserting equal shapes (b is the reference).</summary>
    public static double RelL2(Tensor actual, Tensor expected)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var a = actual.ToDoubleArray();
        var e = expected.ToDoubleArray();
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    /// <summary>The dump's <c>input.mel.N</c> batched as the encoder takes them (docs/model.md §2.7): mels [B, 128, T] and lengths L − 2.</summary>
    public static (Tensor Batch, int[] Lengths) MelBatch(ITensorSource dump)
    {
        var mels = dump.Tensors.Select(t => t.Name).Where(n => n.StartsWith("input.mel.")).OrderBy(n => int.Parse(n[10..])).Select(dump.Get).ToList();
        var batch = LogMelFrontend.Batch(mels);
        return (batch.Mels, batch.Lengths.ToInt64Array().Select(l => (int)l).ToArray());
    }
}
