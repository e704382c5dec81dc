using CsCheck;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

public class TensorComparerTests
{
    [Fact]
    public void IdenticalTensorsPassWithZeroMetrics()
    {
        var b = TestData.RandnTensor(1, 3, 4, 5);
        var a = Tensor.FromArray(b.ToFloatArray(), 3, 4, 5);
        var c = TensorComparer.Compare("x", a, b, Tolerance.Exact);
        Assert.True(c.Passed);
        Assert.True(c.ShapeMatch);
        Assert.True(c.DTypeMatch);
        Assert.Equal(60, c.ElementCount);
        Assert.Equal(0, c.MaxAbsDiff);
        Assert.Equal(0, c.MeanAbsDiff);
        Assert.Equal(0, c.RelL2);
        Assert.Equal(1.0, c.Cosine, 12);
        Assert.Equal(0, c.OutOfTolerance);
        Assert.Null(c.FirstMismatchIndex);
        Assert.Equal(HintKind.None, c.Hint.Kind);
        Assert.Equal("", c.Hint.Text);
    }

    [Fact]
    public void PlantedDifferenceIsFoundAtItsMultiIndex()
    {
        var bv = TestData.Randn(2, 60);
        var av = (float[])bv.Clone();
        int flat = (2 * 4 + 1) * 5 + 3; // [2, 1, 3] in [3, 4, 5]
        av[flat] += 0.75f;
        av[7] += 1e-7f; // a second, smaller difference must not win
        var c = TensorComparer.Compare("x", Tensor.FromArray(av, 3, 4, 5), Tensor.FromArray(bv, 3, 4, 5), Tolerance.F32);
        Assert.False(c.Passed);
        Assert.Equal([2, 1, 3], c.MaxAbsIndex!);
        Assert.Equal(Math.Abs((double)av[flat] - bv[flat]), c.MaxAbsDiff, 15);
        Assert.Equal(1, c.OutOfTolerance);
        Assert.Equal([2, 1, 3], c.FirstMismatchIndex!);
        Assert.Equal(av[flat], c.FirstMismatchCandidate!.Value, 15);
        Assert.Equal(bv[flat], c.FirstMismatchReference!.Value, 15);

        // The scalar metrics, recomputed here from their definitions.
        double d2 = 0, b2 = 0, a2 = 0, ab = 0, sumAbs = 0;
        for (int i = 0; i < 60; i++)
        {
            double d = (double)av[i] - bv[i];
            d2 += d * d; b2 += (double)bv[i] * bv[i]; a2 += (double)av[i] * av[i]; ab += (double)av[i] * bv[i]; sumAbs += Math.Abs(d);
        }
        Assert.Equal(Math.Sqrt(d2 / b2), c.RelL2, 12);
        Assert.Equal(ab / Math.Sqrt(a2 * b2), c.Cosine, 12);
        Assert.Equal(sumAbs / 60, c.MeanAbsDiff, 15);
        Assert.Equal(Math.Sqrt(b2), c.ReferenceNorm, 12);
        Assert.Equal(HintKind.Outliers, c.Hint.Kind);
    }

    [Fact]
    public void ReferenceScalesTheBound()
    {
        var t = new Tolerance(0.1, 0);
        // |1.0 − 0.9| = 0.1 > 0.1·0.9 fails; the other way round 0.1 ≤ 0.1·1.0 passes: b is the reference.
        Assert.False(TensorComparer.Compare("x", Tensor.FromArray([1.0], 1), Tensor.FromArray([0.9], 1), t).Passed);
        Assert.True(TensorComparer.Compare("x", Tensor.FromArray([0.9], 1), Tensor.FromArray([1.0], 1), t).Passed);
    }

    [Fact]
    public void RelL2BoundFailsEvenWhenEveryElementIsWithinTolerance()
    {
        var b = TestData.RandnTensor(3, 100);
        var a = TestData.Map(b, x => x + 0.01f);
        var tol = new Tolerance(0, 0.02, MaxRelL2: 1e-3);
        var c = TensorComparer.Compare("x", a, b, tol);
        Assert.Equal(0, c.OutOfTolerance);
        Assert.True(c.RelL2 > 1e-3);
        Assert.False(c.Passed);
        Assert.Equal(HintKind.ConstantOffset, c.Hint.Kind);
        Assert.True(TensorComparer.Compare("x", a, b, tol with { MaxRelL2 = null }).Passed);
    }

    [Fact]
    public void ZeroNormDefinitions()
    {
        var z = Tensor.Zeros(DType.F32, 4);
        var one = Tensor.FromArray([0f, 1f, 0f, 0f], 4);
        var both = TensorComparer.Compare("x", z, Tensor.Zeros(DType.F32, 4), Tolerance.Exact);
        Assert.True(both.Passed);
        Assert.Equal(0, both.RelL2);
        Assert.Equal(1, both.Cosine);

        var refZero = TensorComparer.Compare("x", one, z, Tolerance.Exact);
        Assert.Equal(double.PositiveInfinity, refZero.RelL2);
        Assert.Equal(0, refZero.Cosine);
        Assert.Contains("reference is all zeros", refZero.Hint.Text);

        var candZero = TensorComparer.Compare("x", z, one, Tolerance.Exact);
        Assert.Equal(1, candZero.RelL2);
        Assert.Equal(0, candZero.Cosine);
        Assert.Equal(HintKind.AllZeros, candZero.Hint.Kind);
    }

    [Fact]
    public void NaNAtTheSamePlaceIsEqual()
    {
        var a = Tensor.FromArray([1f, float.NaN, 3f, float.PositiveInfinity], 4);
        var b = Tensor.FromArray([1f, float.NaN, 3f, float.PositiveInfinity], 4);
        var c = TensorComparer.Compare("x", a, b, Tolerance.Exact);
        Assert.True(c.Passed);
        Assert.Equal(1, c.CandidateNaN);
        Assert.Equal(1, c.ReferenceNaN);
        Assert.Equal(1, c.CandidateInf);
        Assert.Equal(1, c.ReferenceInf);
        Assert.Equal(0, c.NonFiniteMismatches);
        Assert.Equal(0, c.MaxAbsDiff);
        Assert.Equal(0, c.RelL2);
    }

    [Fact]
    public void NaNOnOneSideFailsAndIsHinted()
    {
        var b = TestData.RandnTensor(4, 2, 8);
        var a = TestData.Map(b, (x, i) => i == 11 ? float.NaN : x);
        var c = TensorComparer.Compare("x", a, b, Tolerance.F32);
        Assert.False(c.Passed);
        Assert.Equal(1, c.CandidateNaN);
        Assert.Equal(0, c.ReferenceNaN);
        Assert.Equal(1, c.NonFiniteMismatches);
        Assert.Equal(1, c.OutOfTolerance);
        Assert.Equal([1, 3], c.FirstMismatchIndex!);
        Assert.Equal(0, c.MaxAbsDiff); // statistics cover the finite pairs, which all agree
        Assert.Equal(HintKind.NaNAppeared, c.Hint.Kind);
        Assert.Equal([1, 3], c.Hint.Index!);
        Assert.Contains("in the candidate", c.Hint.Text);

        // Opposite infinities are a mismatch too.
        var inf = TensorComparer.Compare("x", Tensor.FromArray([float.PositiveInfinity], 1), Tensor.FromArray([float.NegativeInfinity], 1), Tolerance.Loose);
        Assert.False(inf.Passed);
        Assert.Equal(1, inf.NonFiniteMismatches);

        var refSide = TensorComparer.Compare("x", b, a, Tolerance.F32);
        Assert.Equal(HintKind.NaNAppeared, refSide.Hint.Kind);
        Assert.Contains("the reference has 1 NaN/Inf", refSide.Hint.Text);
    }

    [Fact]
    public void IntegerTensorsCompareExactly()
    {
        long[] ids = [151643, 12, 7, 900, 4, 4, 18, 2];
        var b = Tensor.FromArray(ids, 1, 8);
        var same = TensorComparer.Compare("input.ids", Tensor.FromArray((long[])ids.Clone(), 1, 8), b, Tolerance.Loose);
        Assert.True(same.Passed);
        Assert.True(same.IsInteger);
        Assert.Same(Tolerance.Exact, same.Tolerance); // loose is ignored for ids

        var changed = (long[])ids.Clone();
        changed[5] = 5; // off by one: within "loose" tolerance as floats, but a different token
        var c = TensorComparer.Compare("input.ids", Tensor.FromArray(changed, 1, 8), b, Tolerance.Loose);
        Assert.False(c.Passed);
        Assert.Equal(1, c.OutOfTolerance);
        Assert.Equal([0, 5], c.FirstMismatchIndex!);
        Assert.Equal(5, c.FirstMismatchCandidate);
        Assert.Equal(4, c.FirstMismatchReference);
        Assert.Equal(HintKind.Outliers, c.Hint.Kind);
        Assert.Contains("1 of 8 values differ", c.Hint.Text);
        Assert.Contains("[0, 5]: 5 vs 4", c.Hint.Text);

        // int32 vs int64 with equal values: dtype reported, values pass.
        var i32 = TensorComparer.Compare("input.ids", Tensor.FromArray(ids.Select(x => (int)x).ToArray(), 1, 8), b, Tolerance.Exact);
        Assert.True(i32.Passed);
        Assert.False(i32.DTypeMatch);
    }

    [Fact]
    public void IntegerComparisonIsExactBeyondDoublePrecision()
    {
        // 2^53 and 2^53 + 1 are the same double; as int64 they differ.
        var c = TensorComparer.Compare("x", Tensor.FromArray([(1L << 53) + 1], 1), Tensor.FromArray([1L << 53], 1), Tolerance.Exact);
        Assert.False(c.Passed);
        Assert.Equal(1, c.OutOfTolerance);
    }

    [Fact]
    public void BoolTensors()
    {
        var b = Tensor.FromArray([true, false, true, true], 2, 2);
        Assert.True(TensorComparer.Compare("mask", Tensor.FromArray([true, false, true, true], 2, 2), b, Tolerance.Exact).Passed);
        var c = TensorComparer.Compare("mask", Tensor.FromArray([true, false, false, true], 2, 2), b, Tolerance.Exact);
        Assert.False(c.Passed);
        Assert.Equal([1, 0], c.FirstMismatchIndex!);
    }

    [Fact]
    public void DTypeMismatchStillComparesValues()
    {
        var b = TestData.RandnTensor(5, 4, 16);
        var a = b.To(DType.BF16);
        var bf = TensorComparer.Compare("x", a, b, Tolerance.BF16);
        Assert.True(bf.Passed, ParityReport.Summary(bf));
        Assert.False(bf.DTypeMatch);
        Assert.Equal(DType.BF16, bf.CandidateDType);
        Assert.Equal(DType.F32, bf.ReferenceDType);
        Assert.True(bf.MaxAbsDiff > 0);
        // bf16 rounding moves values by at most half a bf16 ulp: 2^-9 relative.
        var bv = b.ToFloatArray();
        Assert.True(bf.MaxAbsDiff <= bv.Max(Math.Abs) * Math.Pow(2, -8));
        Assert.False(TensorComparer.Compare("x", a, b, Tolerance.F32).Passed);
    }

    [Fact]
    public void StridedViewsCompareInLogicalOrder()
    {
        var b = TestData.RandnTensor(6, 6, 9);
        var view = b.Transpose();              // strided [9, 6]
        var copy = view.Contiguous();          // contiguous [9, 6]
        Assert.False(view.IsContiguous);
        Assert.True(TensorComparer.Compare("x", view, copy, Tolerance.Exact).Passed);
        var bf16View = b.To(DType.BF16).Transpose();
        Assert.True(TensorComparer.Compare("x", bf16View, copy, Tolerance.BF16).Passed);
    }

    [Fact]
    public void ShapeMismatchWithDifferentCountsNamesTheAxis()
    {
        var b = TestData.RandnTensor(7, 1, 11, 4);
        var a = b.Slice(1, 0, 10).Contiguous();
        var c = TensorComparer.Compare("x", a, b, Tolerance.F32);
        Assert.False(c.Passed);
        Assert.False(c.ShapeMatch);
        Assert.Equal(0, c.ElementCount);
        Assert.True(double.IsNaN(c.MaxAbsDiff));
        Assert.Null(c.MaxAbsIndex);
        Assert.Equal(HintKind.ShapeMismatch, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Axis);
        Assert.Equal(-1, c.Hint.Value);
        Assert.Contains("the first 10 match", c.Hint.Text);

        var dropped = b.Slice(1, 1, 10).Contiguous(); // first frame dropped
        var d = TensorComparer.Compare("x", dropped, b, Tolerance.F32);
        Assert.Contains("the last 10 match", d.Hint.Text);
        Assert.Contains("extra at the start", d.Hint.Text);

        var rank = TensorComparer.Compare("x", TestData.RandnTensor(8, 3, 4), b, Tolerance.F32);
        Assert.Equal(HintKind.ShapeMismatch, rank.Hint.Kind);
        Assert.Contains("[3, 4]", rank.Hint.Text);
        Assert.Contains("[1, 11, 4]", rank.Hint.Text);
    }

    [Fact]
    public void ALeadingBatchDimOfOneIsANoteNotAFailure()
    {
        // an official batch-first [1, T, C] against a [T, C]: compared element for element, passed, and flagged
        var b = TestData.RandnTensor(9, 5, 7);
        var c = TensorComparer.Compare("x", b.Reshape(1, 5, 7), b, Tolerance.Port);
        Assert.True(c.Passed);
        Assert.False(c.ShapeMatch);
        Assert.True(c.BatchDimOnly);
        var other = TensorComparer.Compare("x", b, b.Reshape(1, 1, 5, 7), Tolerance.Port);
        Assert.True(other.Passed && other.BatchDimOnly);
        // values still count: a batch-only shape difference with a wrong value fails
        var wrong = TestData.Map(b, (v, i) => i == 3 ? v + 1f : v).Reshape(1, 5, 7);
        var f = TensorComparer.Compare("x", wrong, b, Tolerance.Port);
        Assert.False(f.Passed);
        Assert.True(f.BatchDimOnly);
        Assert.False(TensorComparer.OnlyLeadingOnesDiffer([5, 7], [7, 5]));
        Assert.False(TensorComparer.OnlyLeadingOnesDiffer([2, 5, 7], [5, 7]));
    }

    [Fact]
    public void SameValuesInAnotherShapeIsAReshape()
    {
        var b = TestData.RandnTensor(9, 5, 7);
        var a = b.Reshape(7, 5);
        var c = TensorComparer.Compare("x", a, b, Tolerance.F32);
        Assert.False(c.Passed);
        Assert.False(c.ShapeMatch);
        Assert.Equal(35, c.ElementCount);
        Assert.Equal(0, c.MaxAbsDiff);
        Assert.Equal(HintKind.Reshaped, c.Hint.Kind);
    }

    [Fact]
    public void EmptyTensors()
    {
        var c = TensorComparer.Compare("x", Tensor.Zeros(DType.F32, 0, 3), Tensor.Zeros(DType.F32, 0, 3), Tolerance.F32);
        Assert.True(c.Passed);
        Assert.Equal(0, c.ElementCount);
        Assert.Null(c.MaxAbsIndex);
    }

    [Fact]
    public void ScalarTensors()
    {
        var c = TensorComparer.Compare("loss", Tensor.FromArray([2.5f]), Tensor.FromArray([2.0f]), Tolerance.F32);
        Assert.False(c.Passed);
        Assert.Equal([], c.MaxAbsIndex!);
        Assert.Equal(0.5, c.MaxAbsDiff);
    }

    [Fact]
    public void ComparingATensorWithItselfAlwaysPasses()
    {
        var gen =
            from dims in Gen.Int[1, 5].Array[1, 4]
            from values in Gen.Float.Array[dims.Aggregate(1, (x, y) => x * y)]
            select (dims, values);
        gen.Sample((dims, values) =>
        {
            var t = Tensor.FromArray(values, dims);
            var copy = Tensor.FromArray((float[])values.Clone(), dims);
            var c = TensorComparer.Compare("x", copy, t, Tolerance.Exact);
            Assert.True(c.Passed);
            Assert.Equal(0, c.MaxAbsDiff);
            Assert.Equal(0, c.OutOfTolerance);
            Assert.Equal(0, c.NonFiniteMismatches);
            Assert.Equal(0, c.RelL2);
            Assert.Equal(c.CandidateNaN, c.ReferenceNaN);
            var bf = t.To(DType.BF16);
            Assert.True(TensorComparer.Compare("x", bf, bf, Tolerance.Exact).Passed);
        }, iter: 300);
    }

    [Fact]
    public void FourMillionElementsWithAPlantedDifference()
    {
        const int n = 4 * 1024 * 1024;
        var rng = new Random(10);
        var bv = new float[n];
        for (int i = 0; i < n; i++) bv[i] = rng.NextSingle() * 2 - 1; // uniform: Box–Muller would dominate the test's time
        var av = (float[])bv.Clone();
        av[3_000_001] += 0.5f;
        var c = TensorComparer.Compare("big", Tensor.FromArray(av, 4, 1024, 1024), Tensor.FromArray(bv, 4, 1024, 1024), Tolerance.F32);
        Assert.Equal(TensorComparer.Unravel(3_000_001, [4, 1024, 1024]), c.MaxAbsIndex!);
        Assert.Equal(HintKind.Outliers, c.Hint.Kind);
        Assert.Equal(1, c.Hint.Count);
    }
}
