using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

public class ToleranceTests
{
    [Theory]
    [InlineData("exact", 0, 0, null)]
    [InlineData("f32", 1e-5, 1e-5, 1e-5)]
    [InlineData("F32", 1e-5, 1e-5, 1e-5)]
    [InlineData("bf16", 1.6e-2, 1e-3, 1e-2)]
    [InlineData("f16", 1e-3, 1e-4, 1e-3)]
    [InlineData("loose", 1e-3, 1e-3, null)]
    public void ParsesTiers(string text, double rtol, double atol, double? relL2)
    {
        var t = Tolerance.Parse(text);
        Assert.Equal(rtol, t.Rtol);
        Assert.Equal(atol, t.Atol);
        Assert.Equal(relL2, t.MaxRelL2);
        Assert.Equal(text.ToLowerInvariant(), t.Name);
    }

    [Fact]
    public void ParsesNumbersAndPairs()
    {
        Assert.Equal(new Tolerance(1e-4, 1e-4), Tolerance.Parse("1e-4"));
        Assert.Equal(new Tolerance(2e-3, 5e-6, 1e-3), Tolerance.Parse("rtol=2e-3, atol=5e-6; rel_l2=1e-3"));
        Assert.Equal(new Tolerance(0, 1e-2), Tolerance.Parse("atol=0.01"));
        Assert.Null(Tolerance.Parse("atol=0.01").Name);
    }

    [Theory]
    [InlineData("")]
    [InlineData("f64x")]
    [InlineData("-1e-3")]
    [InlineData("rtol=abc")]
    [InlineData("rtol=-1")]
    [InlineData("foo=1")]
    [InlineData("rtol=NaN")]
    public void RejectsBadText(string text)
    {
        var e = Assert.Throws<FormatException>(() => Tolerance.Parse(text));
        Assert.False(string.IsNullOrWhiteSpace(e.Message));
        Assert.False(Tolerance.TryParse(text, out _));
    }

    [Fact]
    public void OfValidates()
    {
        Assert.Throws<ArgumentException>(() => Tolerance.Of(-1, 0));
        Assert.Throws<ArgumentException>(() => Tolerance.Of(0, double.NaN));
        Assert.Throws<ArgumentException>(() => Tolerance.Of(0, 0, double.PositiveInfinity));
        Assert.Equal(new Tolerance(1e-2, 1e-3, 1e-2), Tolerance.Of(1e-2, 1e-3, 1e-2));
    }

    [Fact]
    public void BoundIsAllcloseWithReferenceMagnitude()
    {
        var t = new Tolerance(0.1, 0.01);
        Assert.Equal(0.01 + 0.1 * 3, t.Bound(-3), 12);
        // |1.1 − 1| = 0.1 ≤ 0.01 + 0.1·|1| = 0.11 passes; |1.2 − 1| = 0.2 does not.
        var pass = TensorComparer.Compare("x", Tensor.FromArray([1.1], 1), Tensor.FromArray([1.0], 1), t);
        Assert.True(pass.Passed);
        var fail = TensorComparer.Compare("x", Tensor.FromArray([1.2], 1), Tensor.FromArray([1.0], 1), t);
        Assert.False(fail.Passed);
        Assert.Equal(1, fail.OutOfTolerance);
    }

    [Fact]
    public void ForDTypesPicksTheLowerPrecision()
    {
        Assert.Same(Tolerance.BF16, Tolerance.ForDTypes(DType.BF16, DType.F32));
        Assert.Same(Tolerance.F16, Tolerance.ForDTypes(DType.F32, DType.F16));
        Assert.Same(Tolerance.Port, Tolerance.ForDTypes(DType.F32, DType.F64));
        Assert.Same(Tolerance.Port, Tolerance.ForDTypes(DType.F32, DType.F32));
        Assert.Same(Tolerance.Exact, Tolerance.ForDTypes(DType.I64, DType.I32));
    }

    [Fact]
    public void ToStringNamesTierAndBounds()
    {
        Assert.Equal("f32 (rtol 1e-05, atol 1e-05, rel-L2 ≤ 1e-05)", Tolerance.F32.ToString());
        Assert.Equal("rtol 0.001, atol 0", new Tolerance(1e-3, 0).ToString());
        Assert.Equal("port (rtol 1e-04, atol 0, 1e-04·rms(b), rel-L2 ≤ 1e-05)", Tolerance.Port.ToString());
        Assert.Equal("port (rtol 1e-04, atol 0, 1e-04·rms(b) [= 3e-04], rel-L2 ≤ 1e-05)", Tolerance.Port.Resolve(3).ToString());
    }

    [Fact]
    public void PortScalesTheElementBoundByTheReferenceRms()
    {
        // reference rms = 10 (sentinel −1e10 excluded): the absolute part is 1e-4·10 = 1e-3, so an element off by 9e-4 on a
        // value near zero passes, one off by 2e-3 fails, while the strict f32 tier fails both
        var b = new double[400];
        for (int i = 0; i < b.Length; i++) b[i] = i % 2 == 0 ? 10 : -10;
        b[0] = 0;
        b[399] = -1e10;
        var near = (double[])b.Clone();
        near[0] = 9e-4;
        var far = (double[])b.Clone();
        far[0] = 2e-3;
        var refT = Tensor.FromArray(b, 400);
        var pass = TensorComparer.Compare("x", Tensor.FromArray(near, 400), refT, Tolerance.Port);
        Assert.True(pass.Passed);
        Assert.Equal(10, pass.Tolerance.ReferenceRms!.Value, 1);
        Assert.False(TensorComparer.Compare("x", Tensor.FromArray(far, 400), refT, Tolerance.Port).Passed);
        Assert.False(TensorComparer.Compare("x", Tensor.FromArray(near, 400), refT, Tolerance.F32).Passed);
        // a systematic 1 % error passes no element-wise bound scaled this way: rel-L2 1e-2 ≫ 1e-5
        var scaled = b.Select(v => v * 1.01).ToArray();
        var s = TensorComparer.Compare("x", Tensor.FromArray(scaled, 400), refT, Tolerance.Port);
        Assert.False(s.Passed);
        Assert.Equal(HintKind.Scaled, s.Hint.Kind);
    }

    [Fact]
    public void ParseKnowsPortAutoAndTheRmsKey()
    {
        Assert.Same(Tolerance.Port, Tolerance.Parse("port"));
        Assert.True(Tolerance.Parse("auto").IsAuto);
        var t = Tolerance.Parse("rtol=1e-4,rms=2e-4,rel_l2=1e-5");
        Assert.Equal(2e-4, t.Scale);
        Assert.Equal(1e-5, t.MaxRelL2);
        Assert.Throws<FormatException>(() => Tolerance.Parse("rms=-1"));
    }
}
