using System.Text.Json;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// Every op against PyTorch's output for the same inputs (reference-data/make_ops_fixtures.py), on the CPU backend;
/// <see cref="ReferenceOpsTests"/> runs the same cases on the reference backend.
/// </summary>
public class OpsTests : IClassFixture<OpsTests.Fixture>
{
    public sealed class Fixture : IDisposable
    {
        public Fixture() => File = Fixtures.OpenSafetensors(TestPaths.Fixture("ops", "ops.safetensors"), out Metadata);
        public readonly ITensorSource File;
        public readonly IReadOnlyDictionary<string, string> Metadata;
        public void Dispose() => File.Dispose();
    }

    private readonly Fixture _f;
    public OpsTests(Fixture f) : this(f, Backends.Get("cpu")) { }
    protected OpsTests(Fixture f, IBackend backend) { _f = f; Backend = backend; }

    /// <summary>The backend every case runs on (entered with <see cref="Ops.Use"/> at the start of each case).</summary>
    protected IBackend Backend { get; }

    private Tensor In(string c, string name) => _f.File.Get($"{c}.in.{name}");
    private JsonElement Params(string c) => JsonDocument.Parse(_f.Metadata[c]).RootElement;

    private void Check(string c, Tensor actual, double tol = 2e-6, string suffix = "out")
    {
        var expected = _f.File.Get($"{c}.{suffix}");
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.ToDoubleArray();
        var a = actual.ToHost().ToDoubleArray(); // a device result is read through its transfer point
        double num = 0, den = 0, maxAbs = 0;
        for (int i = 0; i < e.Length; i++)
        {
            double d = a[i] - e[i];
            num += d * d; den += e[i] * e[i];
            maxAbs = Math.Max(maxAbs, Math.Abs(d));
        }
        double rel = Math.Sqrt(num / Math.Max(den, 1e-30));
        Assert.True(rel <= tol && maxAbs <= 20 * tol * Math.Max(1, e.Max(Math.Abs)), $"{c}: rel-L2 {rel:E2}, max abs {maxAbs:E2}");
    }

    [Theory]
    [InlineData("linear_f32")]
    [InlineData("linear_bf16")]
    public void Linear(string c)
    {
        using var scope = Ops.Use(Backend);
        var w = In(c, "weight");
        Assert.Equal(c.EndsWith("bf16") ? DType.BF16 : DType.F32, w.DType); // bf16 weight is used as stored
        Check(c, Ops.Linear(In(c, "x"), w, In(c, "bias")));
    }

    [Fact]
    public void Matmul()
    {
        using var scope = Ops.Use(Backend);
        Check("matmul", Ops.Matmul(In("matmul", "a"), In("matmul", "b")));
    }

    [Theory]
    [InlineData("conv1d_basic")]
    [InlineData("conv1d_stride2")]
    [InlineData("conv1d_dilated")]
    [InlineData("conv1d_groups")]
    [InlineData("conv1d_depthwise")]
    [InlineData("conv1d_k30s15")]
    public void Conv1d(string c)
    {
        using var scope = Ops.Use(Backend);
        var p = Params(c);
        Check(c, Ops.Conv1d(In(c, "x"), In(c, "weight"), In(c, "bias"), p.GetProperty("stride").GetInt32(),
            p.GetProperty("padding").GetInt32(), p.GetProperty("dilation").GetInt32(), p.GetProperty("groups").GetInt32()));
    }

    [Theory]
    [InlineData("conv_transpose1d_a")]
    [InlineData("conv_transpose1d_b")]
    public void ConvTranspose1d(string c)
    {
        using var scope = Ops.Use(Backend);
        var p = Params(c);
        Check(c, Ops.ConvTranspose1d(In(c, "x"), In(c, "weight"), In(c, "bias"), p.GetProperty("stride").GetInt32(), p.GetProperty("padding").GetInt32()));
    }

    [Fact]
    public void AvgPool1d()
    {
        using var scope = Ops.Use(Backend);
        Check("avg_pool1d", Ops.AvgPool1d(In("avg_pool1d", "x"), 2, 2));
    }

    [Fact]
    public void Norms()
    {
        using var scope = Ops.Use(Backend);
        Check("layer_norm", Ops.LayerNorm(In("layer_norm", "x"), In("layer_norm", "weight"), In("layer_norm", "bias"), 1e-5f));
        Check("layer_norm_noaffine", Ops.LayerNorm(In("layer_norm_noaffine", "x"), null, null, 1e-6f));
        Check("rms_norm", Ops.RmsNorm(In("rms_norm", "x"), In("rms_norm", "weight"), 1e-6f));
    }

    [Fact]
    public void Activations()
    {
        using var scope = Ops.Use(Backend);
        Check("gelu", Ops.Gelu(In("gelu", "x")));
        Check("gelu_tanh", Ops.GeluApprox(In("gelu_tanh", "x")));
        Check("silu", Ops.Silu(In("silu", "x")));
        Check("relu", Ops.Relu(In("relu", "x")));
        Check("mish", Ops.Mish(In("mish", "x")));
        Check("elu", Ops.Elu(In("elu", "x")));
        Check("leaky_relu", Ops.LeakyRelu(In("leaky_relu", "x"), 0.1f));
        Check("tanh", Ops.Tanh(In("tanh", "x")));
    }

    [Fact]
    public void ErfIsAccurateAgainstFloat64()
    {
        double worst = 0;
        for (double x = -6; x <= 6; x += 1e-3)
            worst = Math.Max(worst, Math.Abs(VectorMath.Erf((float)x) - MathNet.Numerics.SpecialFunctions.Erf((float)x)));
        Assert.True(worst < 4e-7, $"erf max abs error {worst:E2}");
    }

    [Fact]
    public void Softmax()
    {
        using var scope = Ops.Use(Backend);
        Check("softmax", Ops.Softmax(In("softmax", "x")));
    }

    [Fact]
    public void AttentionWithGroupedHeadsAndMaskReturnsScores()
    {
        using var scope = Ops.Use(Backend);
        const string c = "sdpa_gqa_mask";
        var q = In(c, "q");
        var scores = Ops.Zeros(DType.F32, q.Shape[0], q.Shape[1], q.Shape[2], 7);
        Check(c, Ops.ScaledDotProductAttention(q, In(c, "k"), In(c, "v"), 0.35f, In(c, "mask"), scoresOut: scores));
        Check(c, scores, suffix: "scores");
    }

    [Fact]
    public void CausalAttentionAlignsToTheEnd()
    {
        using var scope = Ops.Use(Backend);
        Check("sdpa_causal", Ops.ScaledDotProductAttention(In("sdpa_causal", "q"), In("sdpa_causal", "k"), In("sdpa_causal", "v"), 0.35f, causal: true));
    }

    [Fact]
    public void TakeReadsBf16TableInPlace()
    {
        using var scope = Ops.Use(Backend);
        var table = In("take", "table");
        Assert.Equal(DType.BF16, table.DType);
        var ids = In("take", "ids").ToInt64Array().Select(i => (int)i).ToArray();
        Check("take", Ops.Take(table, ids), tol: 0);
        Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Take(table, [50]));
    }

    [Theory]
    [InlineData("pad_reflect", PadMode.Reflect)]
    [InlineData("pad_constant", PadMode.Constant)]
    [InlineData("pad_replicate", PadMode.Replicate)]
    public void Pad(string c, PadMode mode)
    {
        using var scope = Ops.Use(Backend);
        var p = Params(c);
        var pads = p.GetProperty("pads").EnumerateArray().Select(e => (e[0].GetInt32(), e[1].GetInt32())).ToArray();
        float value = p.TryGetProperty("value", out var v) ? v.GetSingle() : 0f;
        Check(c, Ops.Pad(In(c, "x"), pads, mode, value), tol: 0);
    }

    [Fact]
    public void ConcatenateBroadcastAndReduce()
    {
        using var scope = Ops.Use(Backend);
        Check("concatenate", Ops.Concatenate([In("concatenate", "a"), In("concatenate", "b")], 1), tol: 0);
        Check("add_broadcast", Ops.Add(In("add_broadcast", "a"), In("add_broadcast", "b")), tol: 0);
        Check("mul_broadcast", Ops.Multiply(In("mul_broadcast", "a"), In("mul_broadcast", "b")), tol: 0);
        var transposed = In("sum_axis0_of_transposed", "x").Transpose(); // a strided view, as PyTorch's base.t()
        Assert.False(transposed.IsContiguous);
        Check("sum_axis0_of_transposed", Ops.Sum(transposed, 0));
        Check("mean_axis1", Ops.Mean(In("mean_axis1", "x"), 1));
        Check("max_axis2", Ops.Max(In("max_axis2", "x"), 2), tol: 0);
    }

    [Fact]
    public void ArgmaxAndTopK()
    {
        using var scope = Ops.Use(Backend);
        var expected = _f.File.Get("argmax.out").ToInt64Array();
        Assert.Equal(expected.Select(i => (int)i).ToArray(), Ops.Argmax(In("argmax", "x")));
        var (values, indices) = Ops.TopK(In("topk", "x").ToFloatArray(), 5);
        Assert.Equal(_f.File.Get("topk.out").ToFloatArray(), values);
        Assert.Equal(_f.File.Get("topk.indices").ToInt64Array().Select(i => (int)i).ToArray(), indices);
    }
}
