using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace StepAudio2.Lab.Tensors;

/// <summary>
/// An n-dimensional array: dtype, shape, element strides and an element offset into a <see cref="TensorStorage"/>.
/// Views (permute, slice, select, reshape of contiguous data) share storage; nothing is widened on load, so a bf16
/// weight mapped from a safetensors file stays bf16 in the mapped pages.
/// Mirrors the role of <c>mlx.core.array</c> / <c>torch.Tensor</c> in the upstream code.
/// </summary>
public sealed unsafe class Tensor
{
    public Tensor(TensorStorage storage, DType dtype, int[] shape, long[]? strides = null, long offset = 0)
    {
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(shape);
        foreach (int d in shape)
            if (d < 0) throw new ArgumentException($"negative dimension in shape {ShapeString(shape)}", nameof(shape));
        strides ??= ContiguousStrides(shape);
        if (strides.Length != shape.Length)
            throw new ArgumentException($"strides rank {strides.Length} != shape rank {shape.Length}", nameof(strides));
        Storage = storage;
        DType = dtype;
        Shape = shape;
        Strides = strides;
        Offset = offset;
        ElementCount = CountElements(shape);
        if (ElementCount > 0)
        {
            // Every addressable element must lie inside the storage: views can never read past their bytes.
            long min = offset, max = offset;
            for (int i = 0; i < shape.Length; i++)
            {
                long span = (long)(shape[i] - 1) * strides[i];
                if (span < 0) min += span; else max += span;
            }
            if (min < 0 || (max + 1) * dtype.SizeOf() > storage.ByteLength)
                throw new ArgumentException(
                    $"view {ShapeString(shape)} (strides [{string.Join(", ", strides)}], offset {offset}) of {dtype.ShortName()} exceeds storage of {storage.ByteLength} bytes ({storage.Origin})");
        }
    }

    public TensorStorage Storage { get; }
    public DType DType { get; }
    /// <summary>Dimensions, outermost first (PyTorch order).</summary>
    public int[] Shape { get; }
    /// <summary>Strides in elements (not bytes), PyTorch convention.</summary>
    public long[] Strides { get; }
    /// <summary>Offset of element [0,…,0] in elements from the start of <see cref="Storage"/>.</summary>
    public long Offset { get; }
    public long ElementCount { get; }
    public int Rank => Shape.Length;
    public long ByteCount => ElementCount * DType.SizeOf();

    public bool IsContiguous
    {
        get
        {
            if (ElementCount == 0) return true; // no element to address, so any strides describe the (empty) row-major layout
            long expected = 1;
            for (int i = Shape.Length - 1; i >= 0; i--)
            {
                if (Shape[i] != 1 && Strides[i] != expected) return false;
                expected *= Shape[i];
            }
            return true;
        }
    }

    // ---------------------------------------------------------------- factories

    public static Tensor Zeros(DType dtype, params int[] shape)
    {
        long n = CountElements(shape);
        return new Tensor(new ManagedStorage(checked(n * dtype.SizeOf())), dtype, (int[])shape.Clone());
    }

    public static Tensor FromArray(float[] data, params int[] shape) => FromSpan<float>(data, DType.F32, shape);
    public static Tensor FromArray(double[] data, params int[] shape) => FromSpan<double>(data, DType.F64, shape);
    public static Tensor FromArray(long[] data, params int[] shape) => FromSpan<long>(data, DType.I64, shape);
    public static Tensor FromArray(int[] data, params int[] shape) => FromSpan<int>(data, DType.I32, shape);
    public static Tensor FromArray(short[] data, params int[] shape) => FromSpan<short>(data, DType.I16, shape);
    public static Tensor FromArray(sbyte[] data, params int[] shape) => FromSpan<sbyte>(data, DType.I8, shape);
    public static Tensor FromArray(byte[] data, params int[] shape) => FromSpan<byte>(data, DType.U8, shape);
    public static Tensor FromArray(bool[] data, params int[] shape) => FromSpan<bool>(data, DType.Bool, shape);
    public static Tensor FromArray(uint[] data, params int[] shape) => FromSpan<uint>(data, DType.U32, shape);
    public static Tensor FromArray(Half[] data, params int[] shape) => FromSpan<Half>(data, DType.F16, shape);

    /// <summary>bf16 tensor from raw bf16 bit patterns.</summary>
    public static Tensor FromBFloat16Bits(ushort[] bits, params int[] shape) => FromSpan<ushort>(bits, DType.BF16, shape);

    /// <summary>Copies <paramref name="data"/> into new managed storage of the given dtype (element size must match).</summary>
    public static Tensor FromSpan<T>(ReadOnlySpan<T> data, DType dtype, params int[] shape) where T : unmanaged
    {
        if (sizeof(T) != dtype.SizeOf())
            throw new ArgumentException($"{typeof(T).Name} ({sizeof(T)} bytes) cannot hold {dtype.ShortName()}");
        if (data.Length != CountElements(shape))
            throw new ArgumentException($"{data.Length} values do not fill shape {ShapeString(shape)}");
        var storage = ManagedStorage.FromBytes(MemoryMarshal.AsBytes(data));
        return new Tensor(storage, dtype, (int[])shape.Clone());
    }

    /// <summary>A tensor from raw little-endian bytes of the given dtype (copied).</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> bytes, DType dtype, params int[] shape)
    {
        long expected = CountElements(shape) * dtype.SizeOf();
        if (bytes.Length != expected)
            throw new ArgumentException($"{bytes.Length} bytes do not match {dtype.ShortName()} {ShapeString(shape)} ({expected} bytes)");
        return new Tensor(ManagedStorage.FromBytes(bytes), dtype, (int[])shape.Clone());
    }

    // ---------------------------------------------------------------- raw access

    /// <summary>The bytes of a contiguous tensor, in place (zero-copy; mapped pages for mapped storage).</summary>
    public ReadOnlySpan<byte> ContiguousBytes([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        RequireHost(caller, file, line);
        if (!IsContiguous) throw new InvalidOperationException($"tensor {ShapeString(Shape)} is not contiguous; call Contiguous() first");
        if (ElementCount == 0) return default; // an empty view's offset may point past its storage
        return Storage.Span(Offset * DType.SizeOf(), checked((int)ByteCount));
    }

    /// <summary>Typed read-only view of a contiguous tensor's elements.</summary>
    public ReadOnlySpan<T> AsSpan<T>([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : unmanaged
    {
        RequireHost(caller, file, line);
        if (sizeof(T) != DType.SizeOf())
            throw new InvalidOperationException($"cannot view {DType.ShortName()} as {typeof(T).Name}");
        return MemoryMarshal.Cast<byte, T>(ContiguousBytes(caller, file, line));
    }

    /// <summary>Writable typed view of a contiguous tensor in managed storage.</summary>
    public Span<T> AsWritableSpan<T>([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : unmanaged
    {
        RequireHost(caller, file, line);
        if (Storage.IsMapped) throw new InvalidOperationException($"tensor maps {Storage.Origin} read-only");
        var ro = AsSpan<T>(caller, file, line);
        return MemoryMarshal.CreateSpan(ref MemoryMarshal.GetReference(ro), ro.Length);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private double ReadAt(long element)
    {
        byte* p = Storage.Pointer + element * DType.SizeOf();
        return DType switch
        {
            DType.F32 => *(float*)p,
            DType.F64 => *(double*)p,
            DType.BF16 => BFloat16.ToSingle(*(ushort*)p),
            DType.F16 => Float16.ToSingle(*(ushort*)p),
            DType.I64 => *(long*)p,
            DType.I32 => *(int*)p,
            DType.I16 => *(short*)p,
            DType.I8 => *(sbyte*)p,
            DType.U8 => *p,
            DType.U32 => *(uint*)p,
            DType.Bool => *p != 0 ? 1 : 0,
            _ => throw new NotSupportedException(DType.ToString()),
        };
    }

    /// <summary>Element storage indices in row-major (logical) order; works for any strides.</summary>
    public IEnumerable<long> ElementIndices([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        RequireHost(caller, file, line);
        return Odometer();
    }

    private IEnumerable<long> Odometer()
    {
        if (ElementCount == 0) yield break;
        int rank = Rank;
        if (rank == 0) { yield return Offset; yield break; }
        var idx = new int[rank];
        long pos = Offset;
        for (long n = 0; n < ElementCount; n++)
        {
            yield return pos;
            for (int d = rank - 1; d >= 0; d--)
            {
                idx[d]++;
                pos += Strides[d];
                if (idx[d] < Shape[d]) break;
                pos -= Strides[d] * Shape[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>Value at a multi-index, widened to double (for tests, reports and small lookups).</summary>
    public double GetDouble(params int[] index)
    {
        RequireHost(nameof(GetDouble), "", 0);
        if (index.Length != Rank) throw new ArgumentException($"index rank {index.Length} != tensor rank {Rank}");
        long pos = Offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i]) throw new IndexOutOfRangeException($"index {index[i]} out of range for dim {i} of size {Shape[i]}");
            pos += index[i] * Strides[i];
        }
        return ReadAt(pos);
    }

    /// <summary>All elements in logical order, converted to float64 (exact for every dtype except I64 beyond 2^53).</summary>
    public double[] ToDoubleArray([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        RequireHost(caller, file, line);
        var result = new double[ElementCount];
        long i = 0;
        foreach (long pos in ElementIndices()) result[i++] = ReadAt(pos);
        return result;
    }

    /// <summary>All elements in logical order, converted to float32.</summary>
    public float[] ToFloatArray([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        RequireHost(caller, file, line);
        if (!IsContiguous && DType is DType.F32 or DType.BF16) return Contiguous().ToFloatArray();
        var result = new float[ElementCount];
        if (IsContiguous)
        {
            switch (DType)
            {
                case DType.F32: AsSpan<float>().CopyTo(result); return result;
                case DType.BF16: BFloat16.ToSingle(AsSpan<ushort>(), result); return result;
            }
        }
        long i = 0;
        foreach (long pos in ElementIndices()) result[i++] = (float)ReadAt(pos);
        return result;
    }

    /// <summary>All elements in logical order as int64 (integer and bool dtypes).</summary>
    public long[] ToInt64Array([CallerMemberName] string caller = "", [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        RequireHost(caller, file, line);
        if (DType.IsFloating()) throw new InvalidOperationException($"ToInt64Array on {DType.ShortName()} tensor");
        var result = new long[ElementCount];
        long i = 0;
        if (DType == DType.I64)
        {
            // Not through ReadAt: a double holds only 53 bits, and int64 ids/extremes must survive exactly.
            foreach (long pos in ElementIndices()) result[i++] = ((long*)Storage.Pointer)[pos];
            return result;
        }
        foreach (long pos in ElementIndices()) result[i++] = (long)ReadAt(pos);
        return result;
    }

    /// <summary>
    /// A contiguous copy (or this tensor when already contiguous): in managed memory for a host tensor, on its backend
    /// for a device tensor.
    /// </summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        if (Storage is DeviceStorage device) return device.Contiguous(this);
        var storage = new ManagedStorage(ByteCount);
        CopyStridedTo(storage.Pointer);
        return new Tensor(storage, DType, (int[])Shape.Clone());
    }

    /// <summary>
    /// Copies the elements in logical order to <paramref name="dst"/>: an odometer over the outer axes, and per innermost
    /// row a block copy (unit stride) or a tight strided loop — this is on the hot path of every permute.
    /// </summary>
    private void CopyStridedTo(byte* dst)
    {
        if (ElementCount == 0) return;
        int size = DType.SizeOf();
        byte* src = Storage.Pointer;
        if (Rank == 0) { Buffer.MemoryCopy(src + Offset * size, dst, size, size); return; }
        int inner = Shape[^1];
        long innerStride = Strides[^1];
        long rows = ElementCount / inner;
        int outerRank = Rank - 1;
        var idx = new int[Math.Max(outerRank, 1)];
        long pos = Offset;
        long rowBytes = (long)inner * size;
        for (long r = 0; r < rows; r++)
        {
            byte* s = src + pos * size;
            if (innerStride == 1) Buffer.MemoryCopy(s, dst, rowBytes, rowBytes);
            else if (size == 4)
            {
                int* si = (int*)s, di = (int*)dst;
                for (int i = 0; i < inner; i++) di[i] = si[i * innerStride];
            }
            else if (size == 2)
            {
                short* si = (short*)s, di = (short*)dst;
                for (int i = 0; i < inner; i++) di[i] = si[i * innerStride];
            }
            else
                for (int i = 0; i < inner; i++) Buffer.MemoryCopy(s + i * innerStride * size, dst + (long)i * size, size, size);
            dst += rowBytes;
            for (int d = outerRank - 1; d >= 0; d--)
            {
                idx[d]++;
                pos += Strides[d];
                if (idx[d] < Shape[d]) break;
                pos -= Strides[d] * Shape[d];
                idx[d] = 0;
            }
        }
    }

    /// <summary>Converts to another dtype (floats narrow with round-to-nearest-even), as a new contiguous tensor.</summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return Contiguous();
        if (Storage is DeviceStorage device) return device.Cast(this, dtype);
        if (!IsContiguous) return Contiguous().To(dtype);
        if (DType == DType.BF16 && dtype == DType.F32)
        {
            var widened = Zeros(DType.F32, Shape);
            BFloat16.ToSingle(AsSpan<ushort>(), widened.AsWritableSpan<float>());
            return widened;
        }
        var result = Zeros(dtype, Shape);
        byte* dst = result.Storage.Pointer;
        int dsize = dtype.SizeOf();
        long o = 0;
        foreach (long pos in ElementIndices())
        {
            double v = ReadAt(pos);
            byte* p = dst + o * dsize;
            switch (dtype)
            {
                case DType.F32: *(float*)p = (float)v; break;
                case DType.F64: *(double*)p = v; break;
                case DType.BF16: *(ushort*)p = BFloat16.FromSingle((float)v); break;
                case DType.F16: *(ushort*)p = BitConverter.HalfToUInt16Bits((Half)v); break;
                case DType.I64: *(long*)p = (long)v; break;
                case DType.I32: *(int*)p = (int)v; break;
                case DType.I16: *(short*)p = (short)v; break;
                case DType.I8: *(sbyte*)p = (sbyte)v; break;
                case DType.U8: *p = (byte)v; break;
                case DType.U32: *(uint*)p = (uint)v; break;
                case DType.Bool: *p = v != 0 ? (byte)1 : (byte)0; break;
            }
            o++;
        }
        return result;
    }

    // ---------------------------------------------------------------- place

    /// <summary>True when the elements are in host memory (managed or mapped); false for a backend's device tensor.</summary>
    public bool IsHost => Storage.IsHost;

    /// <summary>
    /// The transfer point from a device: a contiguous host copy of a device tensor (this tensor itself when it is on
    /// the host already). Sampling, the final waveform, traces and plots read values through here.
    /// </summary>
    public Tensor ToHost() => Storage is DeviceStorage device ? device.Download(this) : this;

    private void RequireHost(string caller, string file, int line)
    {
        if (Storage is DeviceStorage device)
            throw new HostAccessException(
                $"host access to a {device.BackendName} device tensor {ShapeString(Shape)} {DType.ShortName()} from {caller}" +
                (file.Length > 0 ? $" ({System.IO.Path.GetFileName(file)}:{line})" : "") +
                " outside a transfer point; call ToHost() (or IBackend.ToHost) where a host value is truly needed");
    }

    // ---------------------------------------------------------------- views

    public Tensor Permute(params int[] axes)
    {
        if (axes.Length != Rank) throw new ArgumentException($"permute needs {Rank} axes, got {axes.Length}");
        var seen = new bool[Rank];
        var shape = new int[Rank];
        var strides = new long[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int a = axes[i] < 0 ? axes[i] + Rank : axes[i];
            if ((uint)a >= (uint)Rank || seen[a]) throw new ArgumentException($"invalid permutation [{string.Join(", ", axes)}]");
            seen[a] = true;
            shape[i] = Shape[a];
            strides[i] = Strides[a];
        }
        return new Tensor(Storage, DType, shape, strides, Offset);
    }

    /// <summary>Swaps the last two axes (a transposed view, as <c>x.mT</c>).</summary>
    public Tensor Transpose()
    {
        if (Rank < 2) return this;
        var axes = Enumerable.Range(0, Rank).ToArray();
        (axes[^1], axes[^2]) = (axes[^2], axes[^1]);
        return Permute(axes);
    }

    /// <summary>Elements [start, start+length) along <paramref name="dim"/> (a view).</summary>
    public Tensor Slice(int dim, int start, int length)
    {
        dim = NormalizeDim(dim);
        if (start < 0 || length < 0 || start + length > Shape[dim])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start + length}) outside dim {dim} of size {Shape[dim]}");
        var shape = (int[])Shape.Clone();
        shape[dim] = length;
        return new Tensor(Storage, DType, shape, (long[])Strides.Clone(), Offset + start * Strides[dim]);
    }

    /// <summary>Index <paramref name="index"/> along <paramref name="dim"/>, removing that axis (a view).</summary>
    public Tensor Select(int dim, int index)
    {
        dim = NormalizeDim(dim);
        if ((uint)index >= (uint)Shape[dim]) throw new ArgumentOutOfRangeException(nameof(index), $"index {index} outside dim {dim} of size {Shape[dim]}");
        var shape = Shape.Where((_, i) => i != dim).ToArray();
        var strides = Strides.Where((_, i) => i != dim).ToArray();
        return new Tensor(Storage, DType, shape, strides, Offset + index * Strides[dim]);
    }

    /// <summary>Same elements, new shape (a view when contiguous, otherwise a copy). One dimension may be -1.</summary>
    public Tensor Reshape(params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            long known = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) known *= shape[i];
            if (known == 0 || ElementCount % known != 0) throw new ArgumentException($"cannot reshape {ShapeString(Shape)} to {ShapeString(shape)}");
            shape[infer] = (int)(ElementCount / known);
        }
        if (CountElements(shape) != ElementCount) throw new ArgumentException($"cannot reshape {ShapeString(Shape)} to {ShapeString(shape)}");
        var src = Contiguous();
        return new Tensor(src.Storage, DType, shape, null, src.Offset);
    }

    private int NormalizeDim(int dim)
    {
        int d = dim < 0 ? dim + Rank : dim;
        if ((uint)d >= (uint)Rank) throw new ArgumentOutOfRangeException(nameof(dim), $"dim {dim} for rank {Rank}");
        return d;
    }

    // ---------------------------------------------------------------- helpers

    public static long[] ContiguousStrides(int[] shape)
    {
        var strides = new long[shape.Length];
        long s = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            strides[i] = s;
            s *= Math.Max(shape[i], 1);
        }
        return strides;
    }

    public static long CountElements(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException("negative dimension");
            n = checked(n * d);
        }
        return n;
    }

    public static string ShapeString(IEnumerable<int> shape) => "[" + string.Join(", ", shape) + "]";

    public override string ToString() => $"Tensor({DType.ShortName()}, {ShapeString(Shape)}{(IsContiguous ? "" : ", strided")}{(Storage.IsMapped ? ", mapped" : "")}{(Storage is DeviceStorage d ? ", " + d.BackendName : "")})";
}
