using System.Text.Json;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

/// <summary>
/// The comparer's metrics against NumPy's (numpy.isclose with equal_nan, argmax, norms), computed in float64 by
/// reference-data/make_parity_fixtures.py for pairs it wrote out (bf16 rounded by torch).
/// </summary>
public class NumpyMetricsTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("parity", "cases.json")));
        foreach (var c in doc.RootElement.EnumerateArray()) data.Add(c.GetProperty("name").GetString()!);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MetricsMatchNumpy(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("parity", "cases.json")));
        var c = doc.RootElement.EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
        var cand = Load(c.GetProperty("candidate"));
        var refT = Load(c.GetProperty("reference"));
        var tol = new Tolerance(c.GetProperty("rtol").GetDouble(), c.GetProperty("atol").GetDouble());
        var e = c.GetProperty("expected");

        var r = TensorComparer.Compare(name, cand, refT, tol);

        Assert.Equal(e.GetProperty("element_count").GetInt64(), r.ElementCount);
        Assert.Equal(e.GetProperty("out_of_tolerance").GetInt64(), r.OutOfTolerance);
        Assert.Equal(e.GetProperty("allclose").GetBoolean(), r.Passed);
        Assert.Equal(Ints(e.GetProperty("first_mismatch_index")), r.FirstMismatchIndex);
        Assert.Equal(e.GetProperty("max_abs_diff").GetDouble(), r.MaxAbsDiff);   // a single subtraction: bit-exact
        Assert.Equal(Ints(e.GetProperty("max_abs_index")), r.MaxAbsIndex);
        // Sums: NumPy adds pairwise, we add sequentially; both in float64.
        AssertClose(e.GetProperty("mean_abs_diff").GetDouble(), r.MeanAbsDiff);
        AssertClose(e.GetProperty("rel_l2").GetDouble(), r.RelL2);
        AssertClose(e.GetProperty("cosine").GetDouble(), r.Cosine);
        Assert.Equal(e.GetProperty("nan_candidate").GetInt64(), r.CandidateNaN);
        Assert.Equal(e.GetProperty("nan_reference").GetInt64(), r.ReferenceNaN);
        Assert.Equal(e.GetProperty("inf_candidate").GetInt64(), r.CandidateInf);
        Assert.Equal(e.GetProperty("inf_reference").GetInt64(), r.ReferenceInf);
    }

    private static void AssertClose(double expected, double actual) =>
        Assert.True(Math.Abs(expected - actual) <= 1e-12 * Math.Max(1, Math.Abs(expected)), $"expected {expected:R}, got {actual:R}");

    private static int[]? Ints(JsonElement e) =>
        e.ValueKind == JsonValueKind.Null ? null : e.EnumerateArray().Select(x => x.GetInt32()).ToArray();

    private static Tensor Load(JsonElement side)
    {
        var bytes = File.ReadAllBytes(TestPaths.Fixture("parity", side.GetProperty("file").GetString()!));
        var shape = Ints(side.GetProperty("shape"))!;
        var dtype = side.GetProperty("dtype").GetString() switch
        {
            "f32" => DType.F32,
            "f64" => DType.F64,
            "f16" => DType.F16,
            "bf16" => DType.BF16,
            "i64" => DType.I64,
            "i32" => DType.I32,
            "bool" => DType.Bool,
            var other => throw new InvalidDataException($"dtype {other}"),
        };
        return Tensor.FromBytes(bytes, dtype, shape);
    }
}
