using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Cli;
using StepAudio2.Lab.Tests.Parity;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The engine boundary itself (docs/engine.md): device tensors refuse host access outside the transfer points, backends
/// are scoped per model (not per process), the new ops mean what IBackend says, and the CLI picks a backend by name.
/// </summary>
public sealed class EngineBoundaryTests
{
    /// <summary>A device storage as small as the contract allows: bytes held privately, downloads counted.</summary>
    private sealed class FakeDevice(byte[] bytes) : DeviceStorage
    {
        public int Downloads;
        public override long ByteLength => bytes.Length;
        public override object Owner => this;
        public override string BackendName => "fake";
        public override void Dispose() { }

        public override Tensor Download(Tensor view)
        {
            Downloads++;
            var host = new Tensor(ManagedStorage.FromBytes(bytes), view.DType, view.Shape, view.Strides, view.Offset);
            return Tensor.FromArray(host.ToFloatArray(), view.Shape);
        }

        public override Tensor Contiguous(Tensor view) => throw new NotSupportedException();
        public override Tensor Cast(Tensor view, DType dtype) => throw new NotSupportedException();
    }

    private static Tensor DeviceTensor(float[] values, out FakeDevice device, params int[] shape)
    {
        device = new FakeDevice(System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());
        return new Tensor(device, DType.F32, shape);
    }

    [Fact]
    public void HostAccessToADeviceTensorThrowsNamingTheCallerAndToHostIsTheTransferPoint()
    {
        var t = DeviceTensor([1, 2, 3, 4, 5, 6], out var device, 2, 3);
        Assert.False(t.IsHost);
        var e = Assert.Throws<HostAccessException>(() => t.AsSpan<float>().ToArray());
        Assert.Contains("fake device tensor [2, 3] f32", e.Message);
        Assert.Contains(nameof(EngineBoundaryTests) + ".cs:", e.Message); // the caller's file and line
        Assert.Throws<HostAccessException>(() => t.ToFloatArray());
        Assert.Throws<HostAccessException>(() => t.GetDouble(0, 0));
        Assert.Throws<HostAccessException>(() => t.Storage.Span(0, 4).Length);
        // views are metadata only and stay on the device
        var row = t.Select(0, 1);
        Assert.False(row.IsHost);
        Assert.Equal([4f, 5f, 6f], row.ToHost().ToFloatArray());
        Assert.Equal(1, device.Downloads);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], Ops.ToHost(t).ToFloatArray());
        // the CPU backend does not read device bytes behind the backend's back either
        Assert.Throws<HostAccessException>(() => new CpuBackend().Softmax(t));
    }

    [Fact]
    public void BackendScopesNestRestoreAndStayOnTheirThread()
    {
        var a = new CpuBackend();
        var b = new CpuBackend();
        var outside = Ops.Backend;
        using (Ops.Use(a))
        {
            Assert.Same(a, Ops.Backend);
            using (Ops.Use(b)) Assert.Same(b, Ops.Backend);
            Assert.Same(a, Ops.Backend);
            IBackend? seenElsewhere = null;
            var thread = new Thread(() => seenElsewhere = Ops.Backend);
            thread.UnsafeStart(); // no execution context: a thread of its own sees no scope
            thread.Join();
            Assert.Same(Ops.Default, seenElsewhere);
        }
        Assert.Same(outside, Ops.Backend);
    }

    [Fact]
    public void UnknownBackendNamesListTheKnownOnes()
    {
        var e = Assert.Throws<ArgumentException>(() => Backends.Get("nope"));
        Assert.Contains("known backends: cpu", e.Message);
        Assert.Same(Backends.Get("cpu"), Backends.Get("CPU"));
    }

    [Fact]
    public void CliRejectsAnUnknownBackendAsBadInput()
    {
        var (code, _, err) = InspectCliTests.Run("transcribe", "--model", Path.Combine(TestPaths.ReferenceData, "tiny"), "--backend", "nope", Path.Combine(TestPaths.SharedAudio, "real_speech.aiff"));
        Assert.Equal(2, code);
        Assert.Contains("unknown backend 'nope'", err);
        Assert.Contains("cpu", err);
        var (helpCode, help, _) = InspectCliTests.Run("trace", "--help");
        Assert.Equal(0, helpCode);
        Assert.Contains("--backend", help);
    }

    [Fact]
    public void SliceUpdateWritesIntoAStridedViewAndChecksShapes()
    {
        var dst = Ops.Zeros(DType.F32, 2, 5, 3);
        var src = TestData.RandnTensor(7, 2, 2, 3);
        Ops.SliceUpdate(dst, src, axis: 1, start: 2);
        var d = dst.ToFloatArray();
        var s = src.ToFloatArray();
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < 5; t++)
                for (int c = 0; c < 3; c++)
                    Assert.Equal(t is 2 or 3 ? s[(b * 2 + t - 2) * 3 + c] : 0f, d[(b * 5 + t) * 3 + c]);
        // a permuted (strided) source is written in logical order
        var permuted = TestData.RandnTensor(8, 3, 5).Permute(1, 0).Reshape(1, 5, 3);
        Ops.SliceUpdate(dst, permuted, axis: 0, start: 1);
        Assert.Equal(permuted.Contiguous().ToFloatArray(), dst.Slice(0, 1, 1).Contiguous().ToFloatArray());
        Assert.Contains("outside dim 1", Assert.Throws<ArgumentOutOfRangeException>(() => Ops.SliceUpdate(dst, src, 1, 4)).Message);
        Assert.Contains("differ on axis 2", Assert.Throws<ArgumentException>(() => Ops.SliceUpdate(dst, Ops.Zeros(DType.F32, 2, 1, 4), 1, 0)).Message);
    }

    [Fact]
    public void CumsumAccumulatesInDoubleAsTorchOnTheCpu()
    {
        // torch.cumsum(torch.tensor([1e8, 1., -1e8]), 0) → [1e8, 1e8, 1.] on the CPU (float accumulation would end at 0)
        Assert.Equal([1e8f, 1e8f, 1f], Ops.Cumsum(Tensor.FromArray([1e8f, 1f, -1e8f], 3), 0).ToFloatArray());
        Assert.Equal([1f, 2f, 4f, 6f], Ops.Cumsum(Tensor.FromArray([1f, 2f, 3f, 4f], 2, 2), 0).ToFloatArray());
        // torch.repeat_interleave(torch.tensor([1., 2., 3.]), 2)
        Assert.Equal([1f, 1f, 2f, 2f, 3f, 3f], Ops.Repeat(Tensor.FromArray([1f, 2f, 3f], 3), 0, 2).ToFloatArray());
        Assert.Equal([0f, 5f, 2f], Ops.Where(Tensor.FromArray([0f, 1f, 0f], 3), Tensor.FromArray([5f], 1), Tensor.FromArray([0f, 1f, 2f], 3)).ToFloatArray());
        Assert.Equal([-1f, 0.5f, 1f], Ops.Clamp(Tensor.FromArray([-3f, 0.5f, 9f], 3), -1f, 1f).ToFloatArray());
    }

    [Fact]
    public void RopeRotatesPairsHalfADimensionApartAtTheirPositions()
    {
        // position 0 is the identity; at position p the pair (x_i, x_{i+D/2}) turns by p·θ^(−2i/D)
        var x = TestData.RandnTensor(9, 2, 3, 8);
        var y = Ops.Rope(x, offset: 5, theta: 10000f).ToFloatArray();
        var xs = x.ToFloatArray();
        for (int h = 0; h < 2; h++)
            for (int p = 0; p < 3; p++)
                for (int i = 0; i < 4; i++)
                {
                    double angle = (5 + p) * Math.Pow(10000, -2.0 * i / 8);
                    int o = (h * 3 + p) * 8;
                    double a = xs[o + i], b = xs[o + 4 + i];
                    Assert.Equal(a * Math.Cos(angle) - b * Math.Sin(angle), y[o + i], 4);
                    Assert.Equal(b * Math.Cos(angle) + a * Math.Sin(angle), y[o + 4 + i], 4);
                }
        var atZero = Ops.Rope(x.Slice(1, 0, 1), 0, 10000f).ToFloatArray(); // position 0 turns by nothing
        Assert.Equal(x.Slice(1, 0, 1).Contiguous().ToFloatArray(), atZero);
    }

    [Fact]
    public void KvCacheGrowsByDoublingSoAppendsStayConstantPerToken()
    {
        var cache = new LayerKvCache(kvHeads: 1, headDim: 2);
        var storages = new HashSet<TensorStorage>();
        for (int i = 0; i < 1000; i++)
        {
            var k = Tensor.FromArray([(float)i, -i], 1, 1, 2);
            var (kAll, _) = cache.Append(k, k);
            storages.Add(kAll.Storage);
        }
        Assert.True(storages.Count <= 6, $"{storages.Count} buffers for 1000 appends"); // 64, 128, …, 1024
        var all = cache.Append(Tensor.FromArray([0f, 0f], 1, 1, 2), Tensor.FromArray([0f, 0f], 1, 1, 2)).K.Contiguous().ToFloatArray();
        for (int i = 0; i < 1000; i++) Assert.Equal([(float)i, -i], all[(2 * i)..(2 * i + 2)]);
    }
}
