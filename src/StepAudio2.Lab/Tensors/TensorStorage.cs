using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Tensors;

/// <summary>
/// The bytes behind one or more tensors: either managed memory or a read-only region of a memory-mapped file.
/// Tensors hold a storage plus an element offset and strides, so views never copy.
/// </summary>
public abstract unsafe class TensorStorage : IDisposable
{
    /// <summary>Address of byte 0. Valid while the storage is alive (not disposed).</summary>
    public abstract byte* Pointer { get; }

    public abstract long ByteLength { get; }

    /// <summary>True when the bytes come from a mapped file; writes through such a view are refused.</summary>
    public abstract bool IsMapped { get; }

    /// <summary>Where the bytes come from, for error messages ("model-00001-of-00004.safetensors", "managed").</summary>
    public abstract string Origin { get; }

    /// <summary>
    /// True when the bytes are in this process's memory (managed or mapped) and <see cref="Pointer"/> is valid; false for
    /// a <see cref="DeviceStorage"/>, whose bytes only its backend can read.
    /// </summary>
    public virtual bool IsHost => true;

    /// <summary>
    /// A view of a byte range. Managed storage returns an array-backed span, which the GC tracks: the bytes stay alive
    /// while the span is in use even if the tensor itself is no longer referenced.
    /// </summary>
    public virtual ReadOnlySpan<byte> Span(long byteOffset, int byteLength)
    {
        if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > ByteLength)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"byte range [{byteOffset}, {byteOffset + byteLength}) outside storage of {ByteLength} bytes ({Origin})");
        return new ReadOnlySpan<byte>(Pointer + byteOffset, byteLength);
    }

    public abstract void Dispose();
}

/// <summary>Managed, pinned, writable storage (activations, tensors read from compressed or non-native files).</summary>
public sealed unsafe class ManagedStorage : TensorStorage
{
    private readonly byte[] _bytes;
    private readonly byte* _pointer;

    public ManagedStorage(long byteLength)
    {
        if (byteLength < 0 || byteLength > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(byteLength), $"managed storage of {byteLength} bytes is not supported");
        _bytes = GC.AllocateArray<byte>((int)byteLength, pinned: true);
        _pointer = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_bytes));
    }

    /// <summary>Wraps existing bytes (copied into pinned memory once).</summary>
    public static ManagedStorage FromBytes(ReadOnlySpan<byte> bytes)
    {
        var s = new ManagedStorage(bytes.Length);
        bytes.CopyTo(s.WritableSpan);
        return s;
    }

    public override byte* Pointer => _pointer;
    public override long ByteLength => _bytes.LongLength;

    public override ReadOnlySpan<byte> Span(long byteOffset, int byteLength)
    {
        if (byteOffset < 0 || byteLength < 0 || byteOffset + byteLength > _bytes.LongLength)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"byte range [{byteOffset}, {byteOffset + byteLength}) outside storage of {_bytes.LongLength} bytes");
        return new ReadOnlySpan<byte>(_bytes, (int)byteOffset, byteLength);
    }
    public override bool IsMapped => false;
    public override string Origin => "managed";
    public Span<byte> WritableSpan => _bytes;
    public override void Dispose() { }
}

/// <summary>A read-only memory map of a whole file; tensors are zero-copy views into it.</summary>
public sealed unsafe class MappedFileStorage : TensorStorage
{
    private readonly MemoryMappedFile? _file;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly long _length;
    private byte* _pointer;
    private int _disposed;

    public MappedFileStorage(string path)
    {
        Path = System.IO.Path.GetFullPath(path);
        using var stream = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.Read);
        _length = stream.Length;
        if (_length == 0) return; // mapping an empty file is not allowed; there is nothing to view anyway
        _file = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _pointer = p + _view.PointerOffset;
    }

    public string Path { get; }
    public override byte* Pointer => _disposed != 0 ? throw new ObjectDisposedException(Path) : _pointer;
    public override long ByteLength => _length;
    public override bool IsMapped => true;
    public override string Origin => Path;

    public override void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _file?.Dispose();
        _pointer = null;
    }
}

/// <summary>
/// Bytes owned by a backend (a GPU buffer, an MLX array, the reference backend's private memory): there is no host
/// address. Reading such a tensor on the host goes through the explicit transfer points — <see cref="Tensor.ToHost"/>,
/// <c>IBackend.ToHost</c> — and any other host access throws <see cref="HostAccessException"/> naming the caller.
/// Copies, dtype conversion and reshape-with-copy of a device tensor are done by its backend.
/// </summary>
public abstract unsafe class DeviceStorage : TensorStorage
{
    public sealed override bool IsHost => false;
    public override bool IsMapped => false;

    /// <summary>The backend that made these bytes (an <c>IBackend</c>; typed <c>object</c> so tensors do not depend on the engine).</summary>
    public abstract object Owner { get; }

    /// <summary>The owning backend's name, for messages ("reference", "cuda", "mlx").</summary>
    public abstract string BackendName { get; }

    public override string Origin => $"{BackendName} device memory";

    public sealed override byte* Pointer => throw new HostAccessException($"the host address of {Origin} was asked for; device bytes have none (use Tensor.ToHost())");

    public sealed override ReadOnlySpan<byte> Span(long byteOffset, int byteLength) =>
        throw new HostAccessException($"a host span of {Origin} was asked for; device bytes have none (use Tensor.ToHost())");

    /// <summary>A contiguous host copy of <paramref name="view"/> (a view of this storage) — a transfer point.</summary>
    public abstract Tensor Download(Tensor view);

    /// <summary>A contiguous copy of <paramref name="view"/> in new storage of the same backend.</summary>
    public abstract Tensor Contiguous(Tensor view);

    /// <summary>A contiguous copy of <paramref name="view"/> converted to <paramref name="dtype"/>, on the same backend.</summary>
    public abstract Tensor Cast(Tensor view, DType dtype);
}

/// <summary>Host access to a tensor whose bytes live on a device, outside the explicit transfer points.</summary>
public sealed class HostAccessException(string message) : InvalidOperationException(message);
