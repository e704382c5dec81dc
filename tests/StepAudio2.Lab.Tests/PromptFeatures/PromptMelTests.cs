using CsCheck;
using StepAudio2.Lab.Audio.PromptFeatures;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.PromptFeatures;

public sealed class PromptMelTests
{
    private static Tensor Ramp(int t, int c)
    {
        var data = new float[t * c];
        for (int i = 0; i < data.Length; i++) data[i] = i + 0.25f;
        return Tensor.FromArray(data, 1, t, c);
    }

    [Fact]
    public void PadOrCrop_PadsByRepeatingTheLastFrame()
    {
        var mel = Ramp(3, 4); // frames [0.25…3.25], [4.25…7.25], [8.25…11.25]
        var y = PromptMel.PadOrCrop(mel, 3);
        Assert.Equal(new[] { 1, 6, 4 }, y.Shape);
        float[] expected =
        [
            0.25f, 1.25f, 2.25f, 3.25f, 4.25f, 5.25f, 6.25f, 7.25f, 8.25f, 9.25f, 10.25f, 11.25f,
            8.25f, 9.25f, 10.25f, 11.25f, 8.25f, 9.25f, 10.25f, 11.25f, 8.25f, 9.25f, 10.25f, 11.25f,
        ];
        Assert.Equal(expected, y.ToFloatArray());
    }

    [Fact]
    public void PadOrCrop_CropsTheTail()
    {
        var y = PromptMel.PadOrCrop(Ramp(5, 2), 1);
        Assert.Equal(new[] { 1, 2, 2 }, y.Shape);
        Assert.Equal(new[] { 0.25f, 1.25f, 2.25f, 3.25f }, y.ToFloatArray());
    }

    [Fact]
    public void PadOrCrop_ExactLengthIsACopy()
    {
        var mel = Ramp(4, 3);
        var y = PromptMel.PadOrCrop(mel, 2);
        Assert.Equal(mel.Shape, y.Shape);
        Assert.Equal(mel.ToFloatArray(), y.ToFloatArray());
    }

    [Fact]
    public void PadOrCrop_ReadsStridedViews()
    {
        // [1, C, T] transposed to [1, T, C]: a non-contiguous view must be read by its strides.
        var ct = Tensor.FromArray(new float[] { 1, 2, 3, 10, 20, 30 }, 1, 2, 3); // C = 2, T = 3
        var y = PromptMel.PadOrCrop(ct.Permute(0, 2, 1), 2);
        Assert.Equal(new[] { 1, 4, 2 }, y.Shape);
        Assert.Equal(new float[] { 1, 10, 2, 20, 3, 30, 3, 30 }, y.ToFloatArray());
    }

    [Fact]
    public void PadOrCrop_ZeroTokensGivesNoFrames()
        => Assert.Equal(new[] { 1, 0, 80 }, PromptMel.PadOrCrop(Ramp(7, 80), 0).Shape);

    [Fact]
    public void PadOrCrop_RejectsBadInput()
    {
        Assert.Throws<ArgumentException>(() => PromptMel.PadOrCrop(Tensor.Zeros(DType.F32, 7, 80), 3));
        Assert.Throws<ArgumentException>(() => PromptMel.PadOrCrop(Tensor.Zeros(DType.F32, 2, 7, 80), 3));
        Assert.Throws<ArgumentException>(() => PromptMel.PadOrCrop(Tensor.Zeros(DType.F32, 1, 0, 80), 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => PromptMel.PadOrCrop(Ramp(2, 80), -1));
    }

    [Fact]
    public void PadOrCrop_EveryOutputFrameIsInputFrameMinFAndLast()
    {
        Gen.Select(Gen.Int[1, 40], Gen.Int[0, 40], Gen.Int[1, 6]).Sample((t, p, c) =>
        {
            var mel = Ramp(t, c);
            var src = mel.ToFloatArray();
            var y = PromptMel.PadOrCrop(mel, p);
            Assert.Equal(new[] { 1, 2 * p, c }, y.Shape);
            var dst = y.ToFloatArray();
            for (int f = 0; f < 2 * p; f++)
                for (int k = 0; k < c; k++)
                    Assert.Equal(src[Math.Min(f, t - 1) * c + k], dst[f * c + k]);
        });
    }
}
