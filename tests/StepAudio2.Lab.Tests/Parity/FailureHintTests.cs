using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

/// <summary>Each detector fires on its planted defect, names the right numbers, and stays silent on plain noise.</summary>
public class FailureHintTests
{
    private static TensorComparison Cmp(Tensor a, Tensor b, Tolerance? tol = null) =>
        TensorComparer.Compare("t", a, b, tol ?? Tolerance.F32);

    [Fact]
    public void AllZeros()
    {
        var b = TestData.RandnTensor(1, 4, 8, 16);
        var c = Cmp(Tensor.Zeros(DType.F32, 4, 8, 16), b);
        Assert.False(c.Passed);
        Assert.Equal(HintKind.AllZeros, c.Hint.Kind);
        Assert.Contains("weight not loaded", c.Hint.Text);
        Assert.Equal(0, c.Cosine);
    }

    [Fact]
    public void ConstantOffset()
    {
        var b = TestData.RandnTensor(2, 4, 8, 16);
        var c = Cmp(TestData.Map(b, x => x + 0.5f), b);
        Assert.Equal(HintKind.ConstantOffset, c.Hint.Kind);
        Assert.Equal(0.5, c.Hint.Value!.Value, 5);
        Assert.Contains("bias missing or doubled", c.Hint.Text);
        Assert.Contains("+ 0.5", c.Hint.Text);
    }

    [Fact]
    public void SignFlip()
    {
        var b = TestData.RandnTensor(3, 4, 8, 16);
        var c = Cmp(TestData.Map(b, x => -x), b);
        Assert.Equal(HintKind.SignFlip, c.Hint.Kind);
        Assert.Equal(-1, c.Cosine, 9);
    }

    [Fact]
    public void Scaled()
    {
        var b = TestData.RandnTensor(4, 4, 8, 16);
        var c = Cmp(TestData.Map(b, x => x * 0.125f), b);
        Assert.Equal(HintKind.Scaled, c.Hint.Kind);
        Assert.Equal(0.125, c.Hint.Value!.Value, 9);
        Assert.Contains("scale 0.125 off", c.Hint.Text);
        Assert.Contains("1/√64", c.Hint.Text);
    }

    [Fact]
    public void ScaledWithBf16NoiseStillFound()
    {
        var b = TestData.RandnTensor(5, 16, 64);
        var c = Cmp(TestData.Map(b, x => x * 2f).To(DType.BF16), b, Tolerance.BF16);
        Assert.Equal(HintKind.Scaled, c.Hint.Kind);
        Assert.Equal(2.0, c.Hint.Value!.Value, 2);
    }

    [Fact]
    public void TransposeOf7x5()
    {
        var b = TestData.RandnTensor(6, 7, 5);
        var a = b.Transpose().Contiguous(); // [5, 7]
        var c = Cmp(a, b);
        Assert.False(c.ShapeMatch);
        Assert.Equal(HintKind.Transposed, c.Hint.Kind);
        Assert.Equal([1, 0], c.Hint.Axes!);
        Assert.Contains("[5, 7]", c.Hint.Text);
    }

    [Fact]
    public void TransposeOfSquareSameShape()
    {
        var b = TestData.RandnTensor(7, 6, 6);
        var c = Cmp(b.Transpose().Contiguous(), b);
        Assert.True(c.ShapeMatch);
        Assert.Equal(HintKind.Transposed, c.Hint.Kind);
        Assert.Equal([1, 0], c.Hint.Axes!);
    }

    [Fact]
    public void AllAxesReversedIsTransposed()
    {
        var b = TestData.RandnTensor(8, 2, 3, 4);
        var c = Cmp(b.Permute(2, 1, 0).Contiguous(), b);
        Assert.Equal(HintKind.Transposed, c.Hint.Kind);
        Assert.Equal([2, 1, 0], c.Hint.Axes!);
    }

    [Fact]
    public void PermutedAxes()
    {
        var b = TestData.RandnTensor(9, 2, 3, 4);
        var a = b.Permute(0, 2, 1).Contiguous(); // [2, 4, 3]
        var c = Cmp(a, b);
        Assert.Equal(HintKind.PermutedAxes, c.Hint.Kind);
        Assert.Equal([0, 2, 1], c.Hint.Axes!);
        Assert.Contains("permute(0, 2, 1)", c.Hint.Text);
    }

    [Fact]
    public void PermutedAxesSameShapeLargeTensorUsesSampling()
    {
        // [B, T, C] with T == C: same shape, 2·512·512 elements, enough to take the sampled path.
        var b = TestData.RandnTensor(10, 2, 512, 512);
        var c = Cmp(b.Permute(0, 2, 1).Contiguous(), b);
        Assert.True(c.ShapeMatch);
        Assert.Equal(HintKind.PermutedAxes, c.Hint.Kind);
        Assert.Equal([0, 2, 1], c.Hint.Axes!);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    public void ShiftByOneAlongTime(int shift)
    {
        // [B, T, C]: candidate[t] = reference[t − shift]; the vacated frame is zeros.
        var b = TestData.RandnTensor(11, 1, 50, 8);
        var bv = b.ToFloatArray();
        var av = new float[bv.Length];
        for (int t = 0; t < 50; t++)
        {
            int src = t - shift;
            if (src is < 0 or >= 50) continue;
            Array.Copy(bv, src * 8, av, t * 8, 8);
        }
        var c = Cmp(Tensor.FromArray(av, 1, 50, 8), b);
        Assert.Equal(HintKind.Shifted, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Axis);
        Assert.Equal(shift, c.Hint.Value);
        Assert.Contains(shift > 0 ? "lags one step" : "runs one step ahead", c.Hint.Text);
    }

    [Fact]
    public void ShiftedTokenIds()
    {
        long[] ids = Enumerable.Range(0, 40).Select(i => (long)(i * 7919 % 5000)).ToArray();
        long[] lagged = [0, .. ids[..^1]];
        var c = Cmp(Tensor.FromArray(lagged, 1, 40), Tensor.FromArray(ids, 1, 40));
        Assert.True(c.IsInteger);
        Assert.Equal(HintKind.Shifted, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Axis);
    }

    [Fact]
    public void ShiftOnLargeTensorUsesSampling()
    {
        var b = TestData.RandnTensor(12, 1, 3000, 64);
        var c = Cmp(Tensor.FromArray(b.ToFloatArray()[64..].Concat(new float[64]).ToArray(), 1, 3000, 64), b);
        Assert.Equal(HintKind.Shifted, c.Hint.Kind);
        Assert.Equal(-1, c.Hint.Value);
    }

    [Fact]
    public void FewOutliers()
    {
        var b = TestData.RandnTensor(13, 4, 32, 32);
        var a = TestData.Map(TestData.AddNoise(b, 99, 1e-8), (x, i) => i is 100 or 2000 or 3000 ? x + 1f : x);
        var c = Cmp(a, b);
        Assert.Equal(HintKind.Outliers, c.Hint.Kind);
        Assert.Equal(3, c.Hint.Count);
        Assert.Equal(TensorComparer.Unravel(100, [4, 32, 32]), c.Hint.Index!);
        Assert.Contains("3 of 4096 elements off", c.Hint.Text);
        Assert.Contains("first at [0, 3, 4]", c.Hint.Text);
    }

    [Fact]
    public void ChannelOffset()
    {
        var b = TestData.RandnTensor(14, 2, 20, 16);
        var bias = TestData.Randn(15, 16, 0.5);
        var c = Cmp(TestData.Map(b, (x, i) => x + bias[i % 16]), b);
        Assert.Equal(HintKind.ChannelOffset, c.Hint.Kind);
        Assert.Equal(2, c.Hint.Axis);
        Assert.Contains("bias", c.Hint.Text);
    }

    [Fact]
    public void ChannelScaled()
    {
        // [B, C, T] with a per-channel gain on axis 1 (a norm weight not applied).
        var b = TestData.RandnTensor(16, 2, 12, 30);
        var gamma = TestData.Randn(17, 12).Select(g => 1 + 0.5f * g).ToArray();
        var c = Cmp(TestData.Map(b, (x, i) => x * gamma[i / 30 % 12]), b);
        Assert.Equal(HintKind.ChannelScaled, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Axis);
    }

    [Fact]
    public void ZeroSlices()
    {
        // Frames 40.. never written.
        var b = TestData.RandnTensor(18, 1, 64, 8);
        var c = Cmp(TestData.Map(b, (x, i) => i / 8 >= 40 ? 0f : x), b);
        Assert.Equal(HintKind.ZeroSlices, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Axis);
        Assert.Equal(24, c.Hint.Count);
        Assert.Equal([0, 40, 0], c.Hint.Index!);
        Assert.Contains("40..63", c.Hint.Text);
    }

    [Fact]
    public void SlicesPermuted()
    {
        // Four heads [H, T, D] in the order 1, 0, 3, 2.
        var b = TestData.RandnTensor(19, 4, 16, 8);
        int[] order = [1, 0, 3, 2];
        var a = Tensor.FromArray(order.SelectMany(h => b.Select(0, h).ToFloatArray()).ToArray(), 4, 16, 8);
        var c = Cmp(a, b);
        Assert.Equal(HintKind.SlicesPermuted, c.Hint.Kind);
        Assert.Equal(0, c.Hint.Axis);
        Assert.Equal(4, c.Hint.Count);
        Assert.Contains("0 ← 1", c.Hint.Text);
    }

    [Fact]
    public void ValuesPermuted()
    {
        var b = TestData.RandnTensor(20, 200);
        var values = b.ToFloatArray();
        var rng = new Random(5);
        rng.Shuffle(values);
        var c = Cmp(Tensor.FromArray(values, 200), b);
        Assert.Equal(HintKind.ValuesPermuted, c.Hint.Kind);
    }

    [Theory]
    [InlineData(0.3)]
    [InlineData(0.05)]
    [InlineData(0.01)]
    [InlineData(1e-4)]
    public void PlainNoiseHasNoPattern(double level)
    {
        var b = TestData.RandnTensor(21, 4, 32, 32);
        var c = Cmp(TestData.AddNoise(b, 22, level), b);
        Assert.False(c.Passed);
        Assert.Equal(HintKind.None, c.Hint.Kind);
        Assert.Contains("no structural pattern", c.Hint.Text);
    }

    [Fact]
    public void RoundingLevelNoiseIsCalledRoundingNotBadPositions()
    {
        // 5e-6 noise on unit values fails the strict f32 tier here and there; the hint must say "rounding", not blame masks
        var b = TestData.RandnTensor(23, 4, 32, 32);
        var c = Cmp(TestData.AddNoise(b, 24, 5e-6), b, Tolerance.F32);
        Assert.False(c.Passed);
        Assert.Equal(HintKind.Rounding, c.Hint.Kind);
        Assert.Contains("rounding-level differences", c.Hint.Text);
        Assert.DoesNotContain("mask", c.Hint.Text);
        // the same tensor passes the default port rule; 1e-4 noise is no longer called rounding
        Assert.True(Cmp(TestData.AddNoise(b, 24, 5e-6), b, Tolerance.Port).Passed);
        Assert.NotEqual(HintKind.Rounding, Cmp(TestData.AddNoise(b, 24, 1e-4), b, Tolerance.F32).Hint.Kind);
    }

    [Fact]
    public void HugeMaskValuesDoNotFakeAPattern()
    {
        // Attention scores with a −1e10 additive mask on both sides dominate ‖b‖; the sums-based residual formulas cancel
        // to nothing there, and must not report a "fit" for what is ordinary float noise on the unmasked scores.
        var b = TestData.RandnTensor(27, 1, 2, 24, 24);
        var noise = TestData.Randn(28, 1152, 3e-6);
        var a = TestData.Map(b, (x, i) => i % 24 > i / 24 % 24 ? -1e10f : x + noise[i]);
        b = TestData.Map(b, (x, i) => i % 24 > i / 24 % 24 ? -1e10f : x);
        var c = Cmp(a, b, new Tolerance(1e-5, 1e-6));
        Assert.False(c.Passed);
        // equal mask fills on both sides are matches that do not enter rel-L2: it measures the unmasked scores' noise
        Assert.InRange(c.RelL2, 1e-7, 1e-5);
        Assert.Equal(HintKind.Rounding, c.Hint.Kind);
    }

    [Fact]
    public void PlainNoiseOnALargeTensorHasNoPattern()
    {
        var b = TestData.RandnTensor(23, 2, 512, 512);
        var c = Cmp(TestData.AddNoise(b, 24, 0.01), b);
        Assert.Equal(HintKind.None, c.Hint.Kind);
    }

    [Fact]
    public void RelativeNoiseAtBf16RoundingLevelPassesBf16Only()
    {
        // Half a bf16 ulp is 2^-9 ≈ 2e-3 relative: what one rounding of each value does.
        var b = TestData.RandnTensor(25, 4, 32, 32);
        var eps = TestData.Randn(26, 4096, 2e-3);
        var a = TestData.Map(b, (x, i) => x * (1 + eps[i]));
        Assert.True(Cmp(a, b, Tolerance.BF16).Passed);
        var f32 = Cmp(a, b, Tolerance.F32);
        Assert.False(f32.Passed);
        Assert.Equal(HintKind.None, f32.Hint.Kind);
    }
}
