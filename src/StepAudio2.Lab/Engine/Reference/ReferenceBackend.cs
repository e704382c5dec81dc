using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Reference;

/// <summary>
/// The reference backend ("reference"): the oracle the fast kernels are tested against, and the proof that the engine
/// boundary holds. Its tensors live in <see cref="ReferenceStorage"/> (device-style: no host pointer, so a host read
/// outside <see cref="ToHost"/> throws naming the caller), and every op is a plain scalar loop written from the op's
/// definition — no SIMD, no threads, no code shared with <c>Engine.Cpu</c>.
/// <para>
/// Numerics: products (matmul, linear, convolutions, attention) accumulate in float32 in index order, starting from
/// zero, with the bias added last; row statistics (layer/RMS-norm moments, softmax denominators, reductions, cumsum)
/// accumulate in double and are rounded once. Element functions use the exact definitions (GELU through a double
/// erf). The results therefore differ from the CPU backend's only by float32 rounding.
/// </para>
/// <para>
/// Place: host inputs are uploaded — weights (parameters of linear/conv/norm/take/Snake/quantized ops, and any tensor
/// mapped from a checkpoint) once per weight tensor, cached by the tensor and counted in
/// <see cref="BackendStats.WeightUploads"/>; every other host input on each use, counted in
/// <see cref="BackendStats.Uploads"/>. Downloads happen in <see cref="ToHost"/> and <see cref="Argmax"/> only.
/// A device tensor of another backend is refused with both backends named.
/// </para>
/// Mirrors no upstream class: it stands for the "device" side of MLX's <c>array</c>/<c>Stream</c> split.
/// </summary>
public sealed partial class ReferenceBackend : IBackend
{
    private readonly ConditionalWeakTable<Tensor, Tensor> _weights = new();
    private readonly object _weightLock = new();

    public string Name => "reference";

    public BackendStats Stats { get; } = new();

    public string Describe() => "reference backend, scalar float32 kernels in index order, 1 thread, device-style storage";

    // ------------------------------------------------------------------------------------------------ place

    public Tensor FromHost(Tensor host)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (IsMine(host)) return Contiguous(host);
        CheckNotForeign(host, "from_host");
        Stats.CountUpload(host.ByteCount);
        return Upload(host);
    }

    public Tensor ToHost(Tensor x)
    {
        ArgumentNullException.ThrowIfNull(x);
        if (x.IsHost) return x;
        CheckNotForeign(x, "to_host");
        var bytes = new byte[x.ByteCount];
        CopyElements(x, bytes);
        Stats.CountDownload(bytes.LongLength);
        return Tensor.FromBytes(bytes, x.DType, (int[])x.Shape.Clone());
    }

    public Tensor Zeros(DType dtype, int[] shape)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var s = new ReferenceStorage(this, checked(Tensor.CountElements(shape) * dtype.SizeOf()));
        return new Tensor(s, dtype, (int[])shape.Clone());
    }

    public Tensor Contiguous(Tensor x)
    {
        x = On(x, "contiguous");
        if (x.IsContiguous) return x;
        Stats.CountOp();
        var y = Zeros(x.DType, x.Shape);
        CopyElements(x, Bytes(y));
        return y;
    }

    public Tensor Cast(Tensor x, DType dtype)
    {
        x = On(x, "cast");
        if (x.DType == dtype) return Contiguous(x);
        Stats.CountOp();
        var y = Zeros(dtype, x.Shape);
        var src = new Elements(x);
        var dst = Bytes(y);
        var c = new Cursor(x);
        for (long i = 0; i < x.ElementCount; i++, c.Next()) WriteElement(dst, dtype, i, src.Double(c.Pos));
        return y;
    }

    public void SliceUpdate(Tensor dst, Tensor src, int axis, int start)
    {
        if (!IsMine(dst))
            throw new ArgumentException(dst.Storage is DeviceStorage d
                ? $"slice_update: the destination lives on backend '{d.BackendName}', not on backend '{Name}'"
                : $"slice_update: the destination is a host tensor; backend '{Name}' updates only its own tensors (make it with Zeros)");
        src = On(src, "slice_update");
        Stats.CountOp();
        axis = ShapeRules.SliceUpdate(dst, src, axis, start);
        var target = dst.Slice(axis, start, src.Shape[axis]);
        // the source may be a view of the destination's own storage: read it whole before writing
        var staged = new byte[src.ByteCount];
        CopyElements(src, staged);
        int size = dst.DType.SizeOf();
        var bytes = Bytes(dst.Storage);
        var c = new Cursor(target);
        for (long i = 0; i < target.ElementCount; i++, c.Next())
            staged.AsSpan((int)(i * size), size).CopyTo(bytes.Slice((int)(c.Pos * size), size));
    }

    // ------------------------------------------------------------------------------------------------ inputs

    private bool IsMine(Tensor t) => t.Storage is ReferenceStorage rs && ReferenceEquals(rs.Owner, this);

    private void CheckNotForeign(Tensor t, string op)
    {
        if (t.Storage is DeviceStorage d && !IsMine(t))
            throw new ArgumentException(d is ReferenceStorage
                ? $"{op}: the input {t} belongs to another instance of backend '{Name}'; move it through ToHost() first"
                : $"{op}: the input {t} is a device tensor of backend '{d.BackendName}' and cannot be used by backend '{Name}'; move it through ToHost() first");
    }

    /// <summary>
    /// The operand as a tensor of this backend: its own tensors as they are (any strides), host weights through the
    /// per-weight cache, other host tensors uploaded (counted).
    /// </summary>
    private Tensor On(Tensor t, string op, bool weight = false)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (IsMine(t)) return t;
        CheckNotForeign(t, op);
        if (weight || t.Storage.IsMapped) return CachedWeight(t);
        Stats.CountUpload(t.ByteCount);
        return Upload(t);
    }

    private Tensor? OnOptional(Tensor? t, string op, bool weight = false) => t is null ? null : On(t, op, weight);

    /// <summary>A host weight uploaded once per weight tensor (as stored: a bf16 weight stays bf16 on the device).</summary>
    private Tensor CachedWeight(Tensor host)
    {
        lock (_weightLock)
        {
            if (_weights.TryGetValue(host, out var cached)) return cached;
            var up = Upload(host);
            _weights.Add(host, up);
            Stats.CountWeightUpload(host.ByteCount);
            return up;
        }
    }

    private Tensor Upload(Tensor host)
    {
        var c = host.Contiguous();
        var y = Zeros(c.DType, c.Shape);
        c.ContiguousBytes().CopyTo(Bytes(y));
        return y;
    }

    // ------------------------------------------------------------------------------------------------ device memory

    private static Span<byte> Bytes(TensorStorage s) => ((ReferenceStorage)s).Bytes;

    /// <summary>The bytes of a contiguous tensor made by this backend (its storage from element 0).</summary>
    private static Span<byte> Bytes(Tensor t) => ((ReferenceStorage)t.Storage).Bytes.Slice((int)(t.Offset * t.DType.SizeOf()), (int)t.ByteCount);

    /// <summary>A new float32 tensor of this backend and its elements (row-major).</summary>
    private Tensor NewF32(int[] shape, out Span<float> y)
    {
        var t = Zeros(DType.F32, shape);
        y = MemoryMarshal.Cast<byte, float>(Bytes(t.Storage));
        return t;
    }

    /// <summary>Copies the elements of a view of this backend, in logical order, to <paramref name="dst"/> (raw bytes).</summary>
    private static void CopyElements(Tensor x, Span<byte> dst)
    {
        int size = x.DType.SizeOf();
        var src = Bytes(x.Storage);
        var c = new Cursor(x);
        for (long i = 0; i < x.ElementCount; i++, c.Next())
            src.Slice((int)(c.Pos * size), size).CopyTo(dst.Slice((int)(i * size), size));
    }

    /// <summary>All elements of a view of this backend in logical order, widened to float32.</summary>
    private static float[] Dense(Tensor x)
    {
        var e = new Elements(x);
        var r = new float[x.ElementCount];
        var c = new Cursor(x);
        for (long i = 0; i < r.LongLength; i++, c.Next()) r[i] = e[c.Pos];
        return r;
    }

    private static void WriteElement(Span<byte> dst, DType dtype, long i, double v)
    {
        var p = dst.Slice((int)(i * dtype.SizeOf()));
        switch (dtype)
        {
            case DType.F32: MemoryMarshal.Write(p, (float)v); break;
            case DType.F64: MemoryMarshal.Write(p, v); break;
            case DType.BF16: MemoryMarshal.Write(p, BFloat16.FromSingle((float)v)); break;
            case DType.F16: MemoryMarshal.Write(p, BitConverter.HalfToUInt16Bits((Half)v)); break;
            case DType.I64: MemoryMarshal.Write(p, (long)v); break;
            case DType.I32: MemoryMarshal.Write(p, (int)v); break;
            case DType.I16: MemoryMarshal.Write(p, (short)v); break;
            case DType.I8: MemoryMarshal.Write(p, (sbyte)v); break;
            case DType.U8: p[0] = (byte)v; break;
            case DType.U32: MemoryMarshal.Write(p, (uint)v); break;
            case DType.Bool: p[0] = v != 0 ? (byte)1 : (byte)0; break;
            default: throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null);
        }
    }

    /// <summary>Reads the elements of one tensor of this backend by storage index, widened to float32 (or double).</summary>
    private readonly ref struct Elements
    {
        private readonly ReadOnlySpan<byte> _raw;
        private readonly ReadOnlySpan<float> _f32;
        private readonly ReadOnlySpan<ushort> _u16;
        private readonly DType _dtype;

        public Elements(Tensor t)
        {
            _raw = Bytes(t.Storage);
            _dtype = t.DType;
            _f32 = _dtype == DType.F32 ? MemoryMarshal.Cast<byte, float>(_raw) : default;
            _u16 = _dtype is DType.BF16 or DType.F16 ? MemoryMarshal.Cast<byte, ushort>(_raw) : default;
        }

        public float this[long i] => _dtype switch
        {
            DType.F32 => _f32[(int)i],
            DType.BF16 => BFloat16.ToSingle(_u16[(int)i]),
            _ => (float)Double(i),
        };

        public double Double(long i)
        {
            var p = _raw.Slice((int)(i * _dtype.SizeOf()));
            return _dtype switch
            {
                DType.F32 => MemoryMarshal.Read<float>(p),
                DType.F64 => MemoryMarshal.Read<double>(p),
                DType.BF16 => BFloat16.ToSingle(MemoryMarshal.Read<ushort>(p)),
                DType.F16 => (float)BitConverter.UInt16BitsToHalf(MemoryMarshal.Read<ushort>(p)),
                DType.I64 => MemoryMarshal.Read<long>(p),
                DType.I32 => MemoryMarshal.Read<int>(p),
                DType.I16 => MemoryMarshal.Read<short>(p),
                DType.I8 => (sbyte)p[0],
                DType.U8 => p[0],
                DType.U32 => MemoryMarshal.Read<uint>(p),
                DType.Bool => p[0] != 0 ? 1 : 0,
                _ => throw new NotSupportedException(_dtype.ToString()),
            };
        }
    }

    /// <summary>
    /// An odometer over a shape in row-major order that keeps the storage position of one or more operands, each with
    /// its own strides (0 on broadcast axes).
    /// </summary>
    private sealed class Cursor
    {
        private readonly int[] _shape;
        private readonly long[][] _strides;
        private readonly int[] _idx;
        private readonly long[] _pos;

        public Cursor(Tensor t) : this(t.Shape, [t.Offset], t.Strides) { }

        public Cursor(int[] shape, long[] offsets, params long[][] strides)
        {
            _shape = shape;
            _strides = strides;
            _idx = new int[shape.Length];
            _pos = (long[])offsets.Clone();
        }

        /// <summary>Storage position of the first operand.</summary>
        public long Pos => _pos[0];
        public long this[int operand] => _pos[operand];

        public void Next()
        {
            for (int d = _shape.Length - 1; d >= 0; d--)
            {
                _idx[d]++;
                for (int s = 0; s < _pos.Length; s++) _pos[s] += _strides[s][d];
                if (_idx[d] < _shape[d]) return;
                for (int s = 0; s < _pos.Length; s++) _pos[s] -= _strides[s][d] * _shape[d];
                _idx[d] = 0;
            }
        }
    }
}
