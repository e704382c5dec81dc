using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio.PromptFeatures;

/// <summary>Aligns the 24 kHz prompt mel to the flow's requirement of exactly two frames per prompt token (docs/model.md §7.2 item 3).</summary>
public static class PromptMel
{
    /// <summary>
    /// <paramref name="mel"/> <c>[1, T, C]</c> → <c>[1, 2·P, C]</c> float32: crops the tail when T &gt; 2·P, otherwise
    /// repeats the last frame (the official "padding for prompt mel" fix) up to 2·P frames.
    /// </summary>
    public static Tensor PadOrCrop(Tensor mel, int promptTokens)
    {
        ArgumentNullException.ThrowIfNull(mel);
        ArgumentOutOfRangeException.ThrowIfNegative(promptTokens);
        if (mel.Shape.Length != 3 || mel.Shape[0] != 1)
            throw new ArgumentException($"expected a prompt mel [1, T, C], got [{string.Join(", ", mel.Shape)}]", nameof(mel));
        int t = mel.Shape[1], c = mel.Shape[2];
        long target = 2L * promptTokens;
        if (target > int.MaxValue / Math.Max(c, 1))
            throw new ArgumentOutOfRangeException(nameof(promptTokens), promptTokens, "prompt too long for one mel tensor");
        if (t == 0 && target > 0)
            throw new ArgumentException("cannot pad an empty prompt mel: there is no last frame to repeat", nameof(mel));

        int frames = (int)target;
        var src = mel.ToFloatArray();
        var dst = new float[frames * c];
        int kept = Math.Min(t, frames);
        Array.Copy(src, dst, kept * c);
        for (int f = kept; f < frames; f++) Array.Copy(src, (t - 1) * c, dst, f * c, c);
        return Tensor.FromArray(dst, 1, frames, c);
    }
}
