using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Reference;

/// <summary>
/// The reference backend's device memory: a private managed byte array that only <see cref="ReferenceBackend"/> reads
/// or writes. It has no host address (<see cref="DeviceStorage"/> makes <c>Pointer</c> and <c>Span</c> throw
/// <see cref="HostAccessException"/>), so any model code that reaches for host memory of a reference tensor outside
/// the transfer points fails, naming the caller — the same contract a GPU buffer would impose.
/// </summary>
public sealed class ReferenceStorage : DeviceStorage
{
    private readonly ReferenceBackend _owner;
    private readonly byte[] _bytes;

    internal ReferenceStorage(ReferenceBackend owner, long byteLength)
    {
        if (byteLength < 0 || byteLength > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(byteLength), $"reference storage of {byteLength} bytes is not supported");
        _owner = owner;
        _bytes = new byte[byteLength];
    }

    public override object Owner => _owner;
    public override string BackendName => _owner.Name;
    public override long ByteLength => _bytes.LongLength;

    /// <summary>The bytes, for <see cref="ReferenceBackend"/>'s kernels only (the "device" side of the boundary).</summary>
    internal Span<byte> Bytes => _bytes;

    public override Tensor Download(Tensor view) => _owner.ToHost(view);
    public override Tensor Contiguous(Tensor view) => _owner.Contiguous(view);
    public override Tensor Cast(Tensor view, DType dtype) => _owner.Cast(view, dtype);
    public override void Dispose() { }
}
