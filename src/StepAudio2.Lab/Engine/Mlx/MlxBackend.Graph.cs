using System.Runtime.CompilerServices;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using static StepAudio2.Lab.Engine.Mlx.MlxNative;
using MlxArray = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_array;
using MlxDType = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_dtype;
using Stream = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_stream;
using DType = StepAudio2.Lab.Tensors.DType;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Mlx;

/// <summary>The mlx backend's graph plumbing: handles owned per op, tensors ↔ MLX arrays, weight caches.</summary>
public sealed unsafe partial class MlxBackend
{
    // ------------------------------------------------------------------------------------------------ plumbing

    /// <summary>An array handle owned by a cache entry, freed when the weight it was made from is collected.</summary>
    private sealed class Held(MlxArray array)
    {
        public readonly MlxArray Array = array;
        ~Held() => MlxLibrary.Free(Array, fromFinalizer: true);
    }

    private sealed class HeldQuant(MlxArray w, MlxArray scales, MlxArray biases)
    {
        public readonly MlxArray W = w, Scales = scales, Biases = biases;
        ~HeldQuant()
        {
            MlxLibrary.Free(W, true); MlxLibrary.Free(Scales, true); MlxLibrary.Free(Biases, true);
        }
    }

    /// <summary>
    /// The arrays one op creates. Every handle made through it is freed at the end of the op except the one returned
    /// (wrapped into a tensor); arrays held by storages or caches are borrowed, never freed here.
    /// </summary>
    private sealed class Scope(MlxBackend backend) : IDisposable
    {
        private readonly List<MlxArray> _temps = [];
        public readonly Stream S = backend._stream;

        public MlxArray Own(MlxArray a) { _temps.Add(a); return a; }

        public MlxArray Call(delegate*<MlxArray*, MlxArray, Stream, int> f, MlxArray a, string op)
        {
            var r = mlx_array_new();
            int rc = f(&r, a, S);
            Own(r);
            MlxLibrary.Check(rc, op);
            return r;
        }

        public MlxArray Call(delegate*<MlxArray*, MlxArray, MlxArray, Stream, int> f, MlxArray a, MlxArray b, string op)
        {
            var r = mlx_array_new();
            int rc = f(&r, a, b, S);
            Own(r);
            MlxLibrary.Check(rc, op);
            return r;
        }

        /// <summary>Runs an mlx-c op that writes one array.</summary>
        public MlxArray Do(string op, Func<nint, int> call)
        {
            var r = mlx_array_new();
            int rc = call((nint)(&r));
            Own(r);
            MlxLibrary.Check(rc, op);
            return r;
        }

        public MlxArray Scalar(float v) => Own(mlx_array_new_float32(v));

        public MlxArray Detach(MlxArray a)
        {
            int i = _temps.FindLastIndex(t => t.Ctx == a.Ctx);
            if (i >= 0) { _temps.RemoveAt(i); return a; }
            // a borrowed handle (a storage's array returned unchanged): give the new tensor its own reference
            var copy = mlx_array_new();
            MlxLibrary.Check(mlx_array_set(&copy, a), "array_set");
            return copy;
        }

        public void Dispose()
        {
            foreach (var t in _temps) mlx_array_free(t);
            _temps.Clear();
        }
    }

    /// <summary>Runs one boundary op (<paramref name="name"/>, for messages) under the lock; its result becomes a tensor.</summary>
    private Tensor Op(string name, Func<Scope, MlxArray> body)
    {
        lock (MlxLibrary.Lock)
        {
            MlxLibrary.DrainDeferred();
            using var s = new Scope(this);
            MlxArray r;
            try { r = s.Detach(body(s)); }
            catch (MlxException e) when (!e.Message.StartsWith(name + ": ", StringComparison.Ordinal))
            {
                throw new MlxException($"{name}: {e.Message}"); // which boundary op the MLX call served
            }
            Stats.CountOp();
            return Wrap(r);
        }
    }

    private Tensor Wrap(MlxArray a)
    {
        int rank = (int)mlx_array_ndim(a);
        int* p = mlx_array_shape(a);
        var shape = new int[rank];
        for (int i = 0; i < rank; i++) shape[i] = p[i];
        var dtype = FromMlx(mlx_array_dtype(a));
        return new Tensor(new MlxStorage(this, a, dtype, shape), dtype, shape);
    }

    internal static MlxDType ToMlx(DType d) => d switch
    {
        DType.F32 => MlxDType.Float32,
        DType.F16 => MlxDType.Float16,
        DType.BF16 => MlxDType.BFloat16,
        DType.F64 => MlxDType.Float64,
        DType.I64 => MlxDType.Int64,
        DType.I32 => MlxDType.Int32,
        DType.I16 => MlxDType.Int16,
        DType.I8 => MlxDType.Int8,
        DType.U8 => MlxDType.UInt8,
        DType.Bool => MlxDType.Bool,
        DType.U32 => MlxDType.UInt32,
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "no MLX dtype"),
    };

    internal static DType FromMlx(MlxDType d) => d switch
    {
        MlxDType.Float32 => DType.F32,
        MlxDType.Float16 => DType.F16,
        MlxDType.BFloat16 => DType.BF16,
        MlxDType.Float64 => DType.F64,
        MlxDType.Int64 => DType.I64,
        MlxDType.Int32 => DType.I32,
        MlxDType.Int16 => DType.I16,
        MlxDType.Int8 => DType.I8,
        MlxDType.UInt8 => DType.U8,
        MlxDType.Bool => DType.Bool,
        MlxDType.UInt32 => DType.U32,
        _ => throw new NotSupportedException($"MLX dtype {d} has no StepAudio2.Lab counterpart"),
    };

    /// <summary>A host tensor as a new MLX array (copied; counted as an upload unless it is a weight).</summary>
    private MlxArray Upload(Tensor host, bool weight)
    {
        var bytes = host.ContiguousBytes();
        var shape = host.Shape;
        MlxArray a;
        fixed (byte* pb = bytes)
        fixed (int* ps = shape)
        {
            byte one = 0;
            // a zero-element tensor still needs a valid data pointer for mlx_array_new_data
            a = mlx_array_new_data(pb == null ? &one : pb, ps, shape.Length, ToMlx(host.DType));
        }
        if (a.IsNull) throw new MlxException($"mlx upload of {host} failed");
        if (weight) Stats.CountWeightUpload(bytes.Length);
        else Stats.CountUpload(bytes.Length);
        return a;
    }

    /// <summary>The array a tensor reads as: its storage's array, a reshape/as_strided view of it, or an upload.</summary>
    private MlxArray In(Scope s, Tensor t)
    {
        if (t.Storage is MlxStorage ms)
        {
            if (t.DType != ms.DType) throw new ArgumentException($"mlx: tensor dtype {t.DType.ShortName()} differs from its storage's {ms.DType.ShortName()}");
            if (t.Offset == 0 && t.IsContiguous && t.ElementCount == ms.ElementCount)
                return t.Shape.AsSpan().SequenceEqual(ms.Shape) ? ms.Array : Reshape(s, ms.Array, t.Shape);
            var flat = Reshape(s, ms.Array, [checked((int)ms.ElementCount)]);
            var shape = t.Shape; var strides = t.Strides;
            return s.Do("as_strided", r =>
            {
                fixed (int* ps = shape) fixed (long* pst = strides)
                    return mlx_as_strided((MlxArray*)r, flat, ps, (nuint)shape.Length, pst, (nuint)strides.Length, (nuint)t.Offset, s.S);
            });
        }
        if (t.Storage is DeviceStorage other)
            throw new ArgumentException($"mlx: the tensor {t} lives on the {other.BackendName} backend; bring it to the host (ToHost) first");
        return s.Own(Upload(t, weight: false));
    }

    /// <summary>A weight: host tensors are uploaded once per tensor and kept while the tensor lives.</summary>
    private MlxArray Weight(Scope s, Tensor w)
    {
        if (w.Storage is MlxStorage) return In(s, w);
        if (_weights.TryGetValue(w, out var held)) return held.Array;
        var a = Upload(w, weight: true);
        _weights.AddOrUpdate(w, new Held(a));
        return a;
    }

    /// <summary>A weight in a layout MLX wants (conv kernels NLC-ordered), prepared once per weight tensor.</summary>
    private MlxArray Prepared(Scope s, ConditionalWeakTable<Tensor, Held> table, Tensor w, int[] axes)
    {
        if (table.TryGetValue(w, out var held)) return held.Array;
        var t = Transpose(s, Weight(s, w), axes);
        var c = s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, t, false, s.S));
        var kept = s.Detach(c);
        table.AddOrUpdate(w, new Held(kept));
        return kept;
    }

    private static MlxArray Reshape(Scope s, MlxArray a, int[] shape) => s.Do("reshape", r =>
    {
        fixed (int* p = shape) return mlx_reshape((MlxArray*)r, a, p, (nuint)shape.Length, s.S);
    });

    private static MlxArray Transpose(Scope s, MlxArray a, int[] axes) => s.Do("transpose", r =>
    {
        fixed (int* p = axes) return mlx_transpose_axes((MlxArray*)r, a, p, (nuint)axes.Length, s.S);
    });

    private static MlxArray Swap(Scope s, MlxArray a, int rank, int i, int j)
    {
        var axes = Enumerable.Range(0, rank).ToArray();
        (axes[i], axes[j]) = (axes[j], axes[i]);
        return Transpose(s, a, axes);
    }

    private static MlxArray AsType(Scope s, MlxArray a, MlxDType d) =>
        mlx_array_dtype(a) == d ? a : s.Do("astype", r => mlx_astype((MlxArray*)r, a, d, s.S));

    private MlxArray F32(Scope s, Tensor t) => AsType(s, In(s, t), MlxDType.Float32);
    private MlxArray F32Weight(Scope s, Tensor t) => AsType(s, Weight(s, t), MlxDType.Float32);

    private static int[] ShapeOf(MlxArray a)
    {
        int rank = (int)mlx_array_ndim(a);
        int* p = mlx_array_shape(a);
        var shape = new int[rank];
        for (int i = 0; i < rank; i++) shape[i] = p[i];
        return shape;
    }

    private static MlxArray Bin(Scope s, delegate*<MlxArray*, MlxArray, MlxArray, Stream, int> f, MlxArray a, MlxArray b, string op) =>
        s.Call(f, a, b, op);

    private static MlxArray Un(Scope s, delegate*<MlxArray*, MlxArray, Stream, int> f, MlxArray a, string op) => s.Call(f, a, op);
}
