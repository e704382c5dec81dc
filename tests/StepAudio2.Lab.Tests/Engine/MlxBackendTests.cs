using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Mlx;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// Every op of the <c>mlx</c> backend (MLX through mlx-c) against the CPU backend on the same inputs: results stay on
/// the MLX side until an explicit transfer, and agree within float32 rounding (MLX accumulates in its own order).
/// </summary>
public sealed class MlxBackendTests
{
    private static readonly CpuBackend Cpu = new();
    private static readonly Lazy<MlxBackend> LazyMlx = new(() => new MlxBackend());
    private static MlxBackend Mlx => LazyMlx.Value;

    private static Tensor Rand(int seed, params int[] shape)
    {
        var r = new Random(seed);
        var d = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < d.Length; i++) d[i] = (float)(r.NextDouble() * 2 - 1);
        return Tensor.FromArray(d, shape);
    }

    private static Tensor Bf16(Tensor f32)
    {
        var f = f32.ToFloatArray();
        var bits = new ushort[f.Length];
        for (int i = 0; i < f.Length; i++) bits[i] = (ushort)(BitConverter.SingleToUInt32Bits(f[i]) >> 16);
        return Tensor.FromBFloat16Bits(bits, f32.Shape);
    }

    /// <summary>Asserts the mlx result is a device tensor and equals the CPU one within <paramref name="tol"/> rel-L2.</summary>
    private static void Same(Tensor cpu, Tensor mlx, double tol = 1e-6, string what = "")
    {
        Assert.IsType<MlxStorage>(mlx.Storage);
        var host = Mlx.ToHost(mlx);
        Assert.Equal(cpu.Shape, host.Shape);
        double rel = TestMath.RelL2(host, cpu);
        Assert.True(rel <= tol, $"{what}: rel-L2 {rel:E3} > {tol:E1}");
    }

    [MlxFact]
    public void DescribesItselfWithMlxVersion()
    {
        Assert.Equal("mlx", Mlx.Name);
        Assert.Contains(MlxLibrary.MlxVersion, Mlx.Describe());
    }

    [MlxFact]
    public void HostRoundTripIsExactForEveryDType()
    {
        var f = Rand(1, 3, 5);
        Assert.Equal(f.ToFloatArray(), Mlx.ToHost(Mlx.FromHost(f)).ToFloatArray());
        var b = Bf16(f);
        var back = Mlx.ToHost(Mlx.FromHost(b));
        Assert.Equal(DType.BF16, back.DType);
        Assert.Equal(b.ContiguousBytes().ToArray(), back.ContiguousBytes().ToArray());
        var ints = Tensor.FromArray([1, -2, 3, int.MaxValue], 2, 2);
        Assert.Equal(ints.AsSpan<int>().ToArray(), Mlx.ToHost(Mlx.FromHost(ints)).AsSpan<int>().ToArray());
    }

    [MlxFact]
    public void DeviceTensorHasNoHostPointer()
    {
        var d = Mlx.FromHost(Rand(2, 4));
        Assert.False(d.Storage is ManagedStorage);
        Assert.Throws<HostAccessException>(() => d.ToFloatArray());
    }

    [MlxFact]
    public void MlxErrorsBecomeExceptionsNotProcessExit()
    {
        // batch dims that do not broadcast are left to MLX to reject: its error handler must throw, not exit(-1)
        var a = Mlx.FromHost(Rand(3, 2, 2, 3));
        var e = Assert.Throws<MlxException>(() => Mlx.Matmul(a, Rand(4, 3, 3, 4)));
        Assert.Contains("matmul", e.Message);
        Assert.Equal(3, Mlx.ToHost(a).Shape[2]); // the backend keeps working after an error
    }

    [MlxFact]
    public void MatmulAndLinear()
    {
        var a = Rand(4, 2, 5, 7); var b = Rand(5, 2, 7, 3);
        Same(Cpu.Matmul(a, b), Mlx.Matmul(a, b), what: "matmul");
        var x = Rand(6, 2, 4, 16); var w = Rand(7, 9, 16); var bias = Rand(8, 9);
        Same(Cpu.Linear(x, w, bias), Mlx.Linear(x, w, bias), what: "linear f32");
        var wb = Bf16(w);
        Same(Cpu.Linear(x, wb, null), Mlx.Linear(Mlx.FromHost(x), wb, null), what: "linear bf16");
    }

    [MlxTheory]
    [InlineData(1, 0, 1, 1, true)]
    [InlineData(2, 1, 1, 1, true)]
    [InlineData(1, 2, 2, 1, true)]
    [InlineData(1, 1, 1, 2, true)]
    [InlineData(1, 1, 1, 1, false)]
    public void Conv1dInPyTorchLayout(int stride, int padding, int dilation, int groups, bool batched)
    {
        var x = Rand(10, 2, 4, 17); var w = Rand(11, 6, 4 / groups, 3); var b = Rand(12, 6);
        if (!batched) x = x.Select(0, 1);
        Same(Cpu.Conv1d(x, w, b, stride, padding, dilation, groups), Mlx.Conv1d(x, w, b, stride, padding, dilation, groups), what: "conv1d");
    }

    [MlxTheory]
    [InlineData(2, 0, 0, 1)]
    [InlineData(2, 1, 1, 1)]
    [InlineData(3, 1, 0, 2)]
    public void ConvTranspose1dInPyTorchLayout(int stride, int padding, int outputPadding, int dilation)
    {
        var x = Rand(13, 2, 4, 9); var w = Rand(14, 4, 5, 4); var b = Rand(15, 5);
        Same(Cpu.ConvTranspose1d(x, w, b, stride, padding, outputPadding, dilation), Mlx.ConvTranspose1d(x, w, b, stride, padding, outputPadding, dilation), what: "conv_transpose1d");
    }

    [MlxFact]
    public void NormsPoolSoftmaxScale()
    {
        var x = Rand(16, 3, 5, 32); var w = Rand(17, 32); var b = Rand(18, 32);
        Same(Cpu.LayerNorm(x, w, b, 1e-5f), Mlx.LayerNorm(x, w, b, 1e-5f), 2e-6, "layer_norm");
        Same(Cpu.LayerNorm(x, null, null, 1e-6f), Mlx.LayerNorm(x, null, null, 1e-6f), 2e-6, "layer_norm plain");
        Same(Cpu.RmsNorm(x, Bf16(w), 1e-6f), Mlx.RmsNorm(x, Bf16(w), 1e-6f), 2e-6, "rms_norm");
        Same(Cpu.AvgPool1d(x, 2, 2), Mlx.AvgPool1d(x, 2, 2), what: "avg_pool1d");
        Same(Cpu.AvgPool1d(x, 3, 2), Mlx.AvgPool1d(x, 3, 2), what: "avg_pool1d 3/2");
        Same(Cpu.Softmax(x), Mlx.Softmax(x), what: "softmax");
        Same(Cpu.Scale(x, 0.5f, 2f), Mlx.Scale(x, 0.5f, 2f), what: "scale");
    }

    [MlxFact]
    public void UnaryOps()
    {
        var x = Rand(19, 4, 33);
        var pos = Cpu.Unary(UnaryOp.Abs, x, 0);
        foreach (var op in Enum.GetValues<UnaryOp>())
        {
            var input = op is UnaryOp.Log or UnaryOp.Sqrt ? pos : x;
            Same(Cpu.Unary(op, input, 0.2f), Mlx.Unary(op, input, 0.2f), 2e-6, op.ToString());
        }
    }

    [MlxFact]
    public void BinaryOpsBroadcast()
    {
        var a = Rand(20, 2, 3, 4); var b = Rand(21, 3, 1); var c = Rand(22, 4);
        foreach (var op in Enum.GetValues<BinaryOp>())
        {
            Same(Cpu.Binary(op, a, b), Mlx.Binary(op, a, b), what: op + " [2,3,4]⊕[3,1]");
            Same(Cpu.Binary(op, a, c), Mlx.Binary(op, Mlx.FromHost(a), c), what: op + " [2,3,4]⊕[4]");
        }
        Assert.Throws<ArgumentException>(() => Mlx.Binary(BinaryOp.Add, a, Rand(1, 5)));
    }

    [MlxTheory]
    [InlineData(false, false, 4, 4, 6)]
    [InlineData(true, false, 4, 4, 6)]
    [InlineData(true, false, 4, 2, 3)]   // GQA, queries at the end of a longer key range (KV cache)
    [InlineData(false, true, 4, 2, 6)]
    [InlineData(true, true, 4, 2, 2)]
    public void ScaledDotProductAttention(bool causal, bool mask, int hq, int hkv, int tq)
    {
        int tk = 6;
        var q = Rand(23, 2, hq, tq, 8); var k = Rand(24, 2, hkv, tk, 8); var v = Rand(25, 2, hkv, tk, 8);
        var m = mask ? Cpu.Scale(Rand(26, 1, 1, tq, tk), 3f, 0f) : null;
        Same(Cpu.ScaledDotProductAttention(q, k, v, 0.35f, m, causal, null), Mlx.ScaledDotProductAttention(q, k, v, 0.35f, m, causal, null), 2e-6, "sdpa fused");
        // with the .qk scores requested: an mlx scores tensor is filled by swapping its array
        var cpuScores = Tensor.Zeros(DType.F32, 2, hq, tq, tk);
        var mlxScores = Mlx.Zeros(DType.F32, [2, hq, tq, tk]);
        Same(Cpu.ScaledDotProductAttention(q, k, v, 0.35f, m, causal, cpuScores), Mlx.ScaledDotProductAttention(q, k, v, 0.35f, m, causal, mlxScores), 2e-6, "sdpa spelled out");
        var want = cpuScores.ToFloatArray(); var got = Mlx.ToHost(mlxScores).ToFloatArray();
        for (int i = 0; i < want.Length; i++)
            Assert.True(float.IsNegativeInfinity(want[i]) ? float.IsNegativeInfinity(got[i]) : Math.Abs(want[i] - got[i]) <= 1e-5f, $"scores[{i}]: {got[i]} vs {want[i]}");
    }

    [MlxFact]
    public void TakeRowsOfF32AndBf16Tables()
    {
        var t = Rand(27, 10, 6);
        int[] ids = [3, 0, 9, 3];
        Same(Cpu.Take(t, ids), Mlx.Take(t, ids), 0, "take f32");
        Same(Cpu.Take(Bf16(t), ids), Mlx.Take(Bf16(t), ids), 0, "take bf16");
        Assert.Throws<ArgumentOutOfRangeException>(() => Mlx.Take(t, [10]));
    }

    [MlxTheory]
    [InlineData(4, 64)]
    [InlineData(8, 32)]
    [InlineData(3, 32)]
    [InlineData(6, 64)]
    [InlineData(2, 128)]
    public void QuantizedMatmulEqualsOurDequantisingKernel(int bits, int groupSize)
    {
        var w = Bf16(Rand(28, 24, 256));
        var q = AffineQuantizer.Quantize(w, bits, groupSize);
        var x = Rand(29, 3, 256); var b = Rand(30, 24);
        Same(Cpu.QuantizedMatmul(x, q, b), Mlx.QuantizedMatmul(x, q, b), 2e-6, $"quantized_matmul {bits}b g{groupSize}");
        Same(Cpu.QuantizedTake(q, [5, 0, 23]), Mlx.QuantizedTake(q, [5, 0, 23]), 1e-7, $"quantized take {bits}b g{groupSize}");
    }

    [MlxFact]
    public void PadConcatenateReduceArgmax()
    {
        var x = Rand(31, 2, 3, 7);
        foreach (var mode in Enum.GetValues<PadMode>())
            Same(Cpu.Pad(x, [(0, 0), (1, 2), (3, 2)], mode, 0.5f), Mlx.Pad(x, [(0, 0), (1, 2), (3, 2)], mode, 0.5f), 0, "pad " + mode);
        var y = Rand(32, 2, 3, 2);
        Same(Cpu.Concatenate([x, y], -1), Mlx.Concatenate([Mlx.FromHost(x), y], -1), 0, "concatenate");
        foreach (var op in Enum.GetValues<ReduceOp>())
        {
            Same(Cpu.Reduce(op, x, 1, false), Mlx.Reduce(op, x, 1, false), 1e-6, "reduce " + op);
            Same(Cpu.Reduce(op, x, -1, true), Mlx.Reduce(op, x, -1, true), 1e-6, "reduce keep " + op);
        }
        Assert.Equal(Cpu.Argmax(x), Mlx.Argmax(Mlx.FromHost(x)));
        var (v, i) = Mlx.TopK([0.5f, 2f, -1f, 2f], 3);
        Assert.Equal([1, 3, 0], i);
        Assert.Equal([2f, 2f, 0.5f], v);
    }

    [MlxFact]
    public void ViewsOfDeviceTensorsReadAsTheirElements()
    {
        var host = Rand(33, 2, 4, 6);
        var dev = Mlx.FromHost(host);
        foreach (var (h, d, name) in new[]
        {
            (host.Slice(1, 1, 2), dev.Slice(1, 1, 2), "slice"),
            (host.Permute(0, 2, 1), dev.Permute(0, 2, 1), "permute"),
            (host.Select(0, 1), dev.Select(0, 1), "select"),
            (host.Reshape(8, 6), dev.Reshape(8, 6), "reshape"),
        })
        {
            Same(Cpu.Scale(h, 2f, 0f), Mlx.Scale(d, 2f, 0f), 0, name);
            Assert.Equal(h.Contiguous().ToFloatArray(), Mlx.ToHost(d).ToFloatArray());
        }
    }

    [MlxFact]
    public void SliceUpdateWritesInPlace()
    {
        var cache = Mlx.Zeros(DType.F32, [1, 2, 8, 4]);
        var view = cache.Slice(2, 0, 5);               // what attention reads: the filled part of the cache
        var a = Rand(34, 1, 2, 3, 4); var b = Rand(35, 1, 2, 2, 4);
        Mlx.SliceUpdate(cache, a, 2, 0);
        Mlx.SliceUpdate(cache, Mlx.FromHost(b), 2, 3);
        var expected = Cpu.Concatenate([a, b], 2);
        Assert.Equal(expected.ToFloatArray(), Mlx.ToHost(view).ToFloatArray());
        Assert.Equal(new float[24], Mlx.ToHost(cache.Slice(2, 5, 3)).ToFloatArray());
        // a strided destination view: column 1 of a [3, 4] matrix
        var m = Mlx.Zeros(DType.F32, [3, 4]);
        Mlx.SliceUpdate(m.Slice(1, 1, 2), Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2), 0, 1);
        Assert.Equal([0f, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0], Mlx.ToHost(m).ToFloatArray());
        Assert.ThrowsAny<ArgumentException>(() => Mlx.SliceUpdate(cache, a, 2, 6)); // rows outside the destination
    }

    [MlxFact]
    public void RopeAndSmallOpsOfTheBoundary()
    {
        var x = Rand(36, 1, 4, 5, 16);
        // MLX derives inv_freq as exp(−i·ln θ / (D/2)) rather than 1/θ^(2i/D): equal to float32 rounding
        Same(Cpu.Rope(x, 0, 10000f), Mlx.Rope(x, 0, 10000f), 1e-6, "rope");
        Same(Cpu.Rope(x, 37, 1e6f), Mlx.Rope(x, 37, 1e6f), 2e-6, "rope at offset 37");
        Same(Cpu.Rope(x.Select(0, 0).Select(0, 1), 3, 10000f), Mlx.Rope(x.Select(0, 0).Select(0, 1), 3, 10000f), 1e-6, "rope [T, D]");
        var y = Rand(37, 3, 40);
        Same(Cpu.Cumsum(y, 1), Mlx.Cumsum(y, 1), 1e-6, "cumsum");
        Same(Cpu.Cumsum(y, 0), Mlx.Cumsum(y, 0), 1e-6, "cumsum axis 0");
        Same(Cpu.Repeat(y, 0, 3), Mlx.Repeat(y, 0, 3), 0, "repeat");
        Same(Cpu.Repeat(y, -1, 2), Mlx.Repeat(y, -1, 2), 0, "repeat last");
        var cond = Cpu.Binary(BinaryOp.Maximum, y, Tensor.Zeros(DType.F32, 1));
        Same(Cpu.Where(cond, y, Rand(38, 40)), Mlx.Where(cond, y, Rand(38, 40)), 0, "where");
        Same(Cpu.Clamp(y, -0.25f, 0.5f), Mlx.Clamp(y, -0.25f, 0.5f), 0, "clamp");
        var hx = Rand(39, 2, 3, 11); var alpha = Cpu.Scale(Rand(40, 3), 2f, 0f);
        Same(Cpu.Snake(hx, alpha), Mlx.Snake(hx, alpha), 1e-6, "snake");
        Same(Cpu.Snake(hx.Select(0, 1), alpha), Mlx.Snake(hx.Select(0, 1), alpha), 1e-6, "snake [C, T]");
        Same(Cpu.Cast(Cpu.Cast(y, DType.BF16), DType.F32), Mlx.Cast(Mlx.Cast(y, DType.BF16), DType.F32), 0, "cast through bf16 (round to nearest even)");
        Same(Cpu.Contiguous(y.Permute(1, 0)), Mlx.Contiguous(Mlx.FromHost(y).Permute(1, 0)), 0, "contiguous");
        Same(Cpu.Zeros(DType.F32, [2, 3]), Mlx.Zeros(DType.F32, [2, 3]), 0, "zeros");
    }

    [MlxFact]
    public void TransfersAndWeightUploadsAreCounted()
    {
        var backend = new MlxBackend();
        var w = Rand(41, 8, 16); var x = Rand(42, 1, 16);
        var dx = backend.FromHost(x);
        backend.Stats.Reset();
        Tensor y = dx;
        for (int i = 0; i < 4; i++) y = backend.Linear(backend.Unary(UnaryOp.Tanh, dx, 0), w, null);
        Assert.Equal(0, backend.Stats.Transfers);          // the graph stays on the MLX side
        Assert.Equal(1, backend.Stats.WeightUploads);      // the weight once, not per call
        Assert.Equal(8, backend.Stats.Ops);
        var host = y.ToHost();                             // Tensor.ToHost → MlxStorage.Download: the one transfer
        Assert.True(host.IsHost);
        Assert.Equal(1, backend.Stats.Downloads);
        Assert.Equal(8 * 4, backend.Stats.DownloadBytes);
        Assert.True(TestMath.RelL2(host, Cpu.Linear(Cpu.Unary(UnaryOp.Tanh, x, 0), w, null)) <= 1e-6);
        Assert.Throws<HostAccessException>(() => y.AsSpan<float>().ToArray());
    }

    [MlxFact]
    public void RegisteredAsMlxInTheBackendTable()
    {
        Assert.Contains("mlx", Backends.Names);
        Assert.IsType<MlxBackend>(Backends.Get("mlx"));
    }
}
