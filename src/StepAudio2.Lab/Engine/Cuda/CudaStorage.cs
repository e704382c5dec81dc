using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>Bytes in CUDA device memory, made by a <see cref="CudaBackend"/>: no host address; downloads, copies and casts
/// go through the owning backend (the transfer points the boundary counts).</summary>
public sealed class CudaStorage : DeviceStorage
{
    private readonly CudaBackend _backend;

    internal CudaStorage(CudaBackend backend, DeviceBuffer buffer, long byteLength)
    {
        _backend = backend;
        Buffer = buffer;
        ByteLength = byteLength;
    }

    public DeviceBuffer Buffer { get; }
    public override long ByteLength { get; }
    public override object Owner => _backend;
    public override string BackendName => "cuda";
    public override Tensor Download(Tensor view) => _backend.ToHost(view);
    public override Tensor Contiguous(Tensor view) => _backend.Contiguous(view);
    public override Tensor Cast(Tensor view, DType dtype) => _backend.Cast(view, dtype);
    public override void Dispose() => Buffer.Dispose();
}
