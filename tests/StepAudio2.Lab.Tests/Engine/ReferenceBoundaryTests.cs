using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Reference;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The boundary the reference backend enforces: its tensors have no host memory (any host read outside a transfer
/// point throws <see cref="HostAccessException"/> naming the caller's file and line), transfers and weight uploads are
/// counted in <see cref="BackendStats"/>, and tensors of another backend are refused with both backends named.
/// </summary>
public sealed class ReferenceBoundaryTests
{
    private static Tensor Ramp(params int[] shape) =>
        Tensor.FromArray(Enumerable.Range(0, (int)Tensor.CountElements(shape)).Select(i => i * 0.25f - 1f).ToArray(), shape);

    [Fact]
    public void IsRegisteredUnderItsName()
    {
        var b = Backends.Get("reference");
        Assert.IsType<ReferenceBackend>(b);
        Assert.Equal("reference", b.Name);
        Assert.Same(b, Backends.Get("REFERENCE"));
        Assert.Contains("reference", Backends.Names);
        Assert.Contains("scalar", b.Describe());
    }

    [Fact]
    public void HostAccessOutsideATransferPointThrowsNamingTheCaller()
    {
        var rb = new ReferenceBackend();
        var t = rb.FromHost(Ramp(2, 3));
        Assert.False(t.IsHost);
        var owner = Assert.IsType<ReferenceStorage>(t.Storage);
        Assert.Same(rb, owner.Owner);

        var ex = Assert.Throws<HostAccessException>(() => t.ToFloatArray());
        Assert.Contains(nameof(HostAccessOutsideATransferPointThrowsNamingTheCaller), ex.Message);
        Assert.Contains($"{nameof(ReferenceBoundaryTests)}.cs:", ex.Message);
        Assert.Contains("reference", ex.Message);
        Assert.Contains("[2, 3]", ex.Message);

        Assert.Throws<HostAccessException>(() => t.AsSpan<float>().Length);
        Assert.Throws<HostAccessException>(() => t.ContiguousBytes().Length);
        Assert.Throws<HostAccessException>(() => t.ToDoubleArray());
        Assert.Throws<HostAccessException>(() => t.GetDouble(0, 0));
        Assert.Throws<HostAccessException>(() => t.ElementIndices().Count());
        Assert.Throws<HostAccessException>(() => t.Slice(1, 1, 2).AsWritableSpan<float>().Length); // views are device tensors too
        unsafe { Assert.Throws<HostAccessException>(() => (long)t.Storage.Pointer); }
        Assert.Throws<HostAccessException>(() => t.Storage.Span(0, 4).Length);

        // the transfer points and metadata-only views work
        Assert.Equal(Ramp(2, 3).ToFloatArray(), t.ToHost().ToFloatArray());
        Assert.Equal(Ramp(2, 3).ToFloatArray(), Ops.ToHost(t).ToFloatArray());
        Assert.Equal(Ramp(3, 2).ToFloatArray(), t.Reshape(3, 2).ToHost().ToFloatArray());
        Assert.Equal(Ramp(2, 3).Transpose().ToFloatArray(), t.Transpose().ToHost().ToFloatArray());
        Assert.Equal(Ramp(2, 3).Transpose().Contiguous().ToFloatArray(), t.Transpose().Contiguous().ToHost().ToFloatArray());
        Assert.Contains("reference", t.ToString());
    }

    [Fact]
    public void TheCpuBackendCannotReadAReferenceTensor()
    {
        // a device tensor handed to a host backend is caught at the boundary, not read through a stale pointer
        var t = new ReferenceBackend().FromHost(Ramp(2, 3));
        Assert.Throws<HostAccessException>(() => Backends.Get("cpu").Softmax(t));
    }

    [Fact]
    public void StatsCountTransfersWeightUploadsAndOps()
    {
        var rb = new ReferenceBackend();
        var w = Ramp(4, 3).To(DType.BF16);
        var bias = Ramp(4);
        var x = Ramp(2, 3);

        var dx = rb.FromHost(x);
        Assert.Equal(1, rb.Stats.Uploads);
        Assert.Equal(x.ByteCount, rb.Stats.UploadBytes);

        var y = rb.Linear(dx, w, bias);
        rb.Linear(dx, w, bias);
        rb.Linear(y.Slice(1, 0, 3), w, null); // a device view: no transfer
        Assert.Equal(1, rb.Stats.Uploads);
        Assert.Equal(2, rb.Stats.WeightUploads); // the weight and the bias, once each
        Assert.Equal(w.ByteCount + bias.ByteCount, rb.Stats.WeightUploadBytes); // bf16 stays bf16 on the device
        Assert.Equal(3, rb.Stats.Ops);

        rb.Linear(x, w, bias); // a host activation is uploaded on every use
        rb.Linear(x, w, bias);
        Assert.Equal(3, rb.Stats.Uploads);
        Assert.Equal(2, rb.Stats.WeightUploads);

        var host = rb.ToHost(y);
        Assert.True(host.IsHost);
        Assert.Equal(1, rb.Stats.Downloads);
        Assert.Equal(y.ByteCount, rb.Stats.DownloadBytes);
        Assert.Same(host, rb.ToHost(host)); // host tensors come back as they are, not counted
        y.ToHost(); // through the storage, counted the same
        Assert.Equal(2, rb.Stats.Downloads);

        rb.Argmax(y); // ids come back to the host
        Assert.Equal(3, rb.Stats.Downloads);
        rb.Take(Ramp(10, 3), [1, 2]); // the ids go up
        Assert.Equal(4, rb.Stats.Uploads);
        Assert.Equal(4 + 3, rb.Stats.Transfers);

        rb.Stats.Reset();
        Assert.Equal(0, rb.Stats.Transfers + rb.Stats.WeightUploads + rb.Stats.Ops);
        rb.Linear(dx, w, bias); // still cached after a reset
        Assert.Equal(0, rb.Stats.WeightUploads);
    }

    [Fact]
    public void MappedCheckpointTensorsAreCachedAsWeights()
    {
        using var file = Fixtures.OpenSafetensors(TestPaths.Fixture("ops", "ops.safetensors"), out _);
        var mapped = file.Get("softmax.in.x");
        Assert.True(mapped.Storage.IsMapped);
        var rb = new ReferenceBackend();
        rb.Softmax(mapped);
        rb.Softmax(mapped);
        Assert.Equal(0, rb.Stats.Uploads);
        Assert.Equal(1, rb.Stats.WeightUploads);
    }

    [Fact]
    public void ResultsAreDeviceTensorsEvenForHostInputs()
    {
        var rb = new ReferenceBackend();
        using (Ops.Use(rb))
        {
            var y = Ops.Add(Ramp(3), Ramp(3));
            Assert.IsType<ReferenceStorage>(y.Storage);
            Assert.Equal(Ramp(3).ToFloatArray().Select(v => v + v).ToArray(), Ops.ToHost(y).ToFloatArray());
            var z = Ops.Zeros(2, 2);
            Assert.IsType<ReferenceStorage>(z.Storage);
        }
    }

    [Fact]
    public void ATensorOfAnotherBackendIsRefusedNamingBoth()
    {
        var rb = new ReferenceBackend();
        var foreign = new Tensor(new ForeignStorage(24), DType.F32, [2, 3]);
        var ex = Assert.Throws<ArgumentException>(() => rb.Softmax(foreign));
        Assert.Contains("'fake'", ex.Message);
        Assert.Contains("'reference'", ex.Message);
        Assert.Throws<ArgumentException>(() => rb.Linear(rb.FromHost(Ramp(2, 3)), foreign, null));
        Assert.Throws<ArgumentException>(() => rb.ToHost(foreign));
        Assert.Throws<ArgumentException>(() => rb.FromHost(foreign));

        // another instance of the reference backend owns its own memory
        var other = new ReferenceBackend().FromHost(Ramp(2, 3));
        var ex2 = Assert.Throws<ArgumentException>(() => rb.Softmax(other));
        Assert.Contains("another instance", ex2.Message);
    }

    /// <summary>Device memory of a made-up backend "fake".</summary>
    private sealed class ForeignStorage(long bytes) : DeviceStorage
    {
        public override object Owner => this;
        public override string BackendName => "fake";
        public override long ByteLength => bytes;
        public override Tensor Download(Tensor view) => throw new NotSupportedException();
        public override Tensor Contiguous(Tensor view) => throw new NotSupportedException();
        public override Tensor Cast(Tensor view, DType dtype) => throw new NotSupportedException();
        public override void Dispose() { }
    }
}
