using StepAudio2.Lab.Tensors;
using MlxArray = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_array;

namespace StepAudio2.Lab.Engine.Mlx;

/// <summary>
/// Device storage of the <c>mlx</c> backend: one MLX array (an <c>mlx::core::array</c> held through mlx-c), possibly
/// not yet evaluated. Tensors over it keep their shape/stride/offset metadata; <see cref="MlxBackend"/> turns a view
/// back into an array (a reshape or <c>as_strided</c> node) when an op reads it. In-place writes
/// (<see cref="IBackend.SliceUpdate"/>, the SDPA scores output) build a new array and swap it in, as MLX itself does for
/// <c>a[..] = b</c>. No host pointer: host reads go through <see cref="Download"/>, which evaluates the graph.
/// </summary>
public sealed class MlxStorage : DeviceStorage
{
    private readonly MlxBackend _owner;
    private MlxArray _array;

    internal MlxStorage(MlxBackend owner, MlxArray array, DType dtype, int[] shape)
    {
        _owner = owner;
        _array = array;
        DType = dtype;
        Shape = shape;
        ElementCount = Tensor.CountElements(shape);
    }

    /// <summary>The element type and shape of the array held (what a natural view of the storage has).</summary>
    public DType DType { get; }
    public int[] Shape { get; }
    public long ElementCount { get; }

    internal MlxArray Array => _array.IsNull ? throw new ObjectDisposedException("mlx storage") : _array;

    /// <summary>Replaces the held array by <paramref name="next"/> (same dtype and element count); frees the old handle.
    /// Call with <see cref="MlxLibrary.Lock"/> held.</summary>
    internal void Swap(MlxArray next)
    {
        var old = _array;
        _array = next;
        MlxNative.mlx_array_free(old);
    }

    public override long ByteLength => ElementCount * DType.SizeOf();
    public override string BackendName => "mlx";
    public override object Owner => _owner;
    public override Tensor Download(Tensor view) => _owner.ToHost(view);
    public override Tensor Contiguous(Tensor view) => _owner.Contiguous(view);
    public override Tensor Cast(Tensor view, DType dtype) => _owner.Cast(view, dtype);

    public override void Dispose()
    {
        var a = _array;
        _array = default;
        MlxLibrary.Free(a, fromFinalizer: false);
        GC.SuppressFinalize(this);
    }

    ~MlxStorage() => MlxLibrary.Free(_array, fromFinalizer: true);
}
