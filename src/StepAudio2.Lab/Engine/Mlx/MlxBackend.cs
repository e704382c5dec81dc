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

/// <summary>
/// Apple's MLX (ml-explore/mlx) as a backend, through its C API mlx-c: every op adds a node to MLX's lazy graph and
/// returns a tensor over an <see cref="MlxStorage"/>; the graph is evaluated only at the transfer points
/// (<see cref="ToHost"/>, <see cref="MlxStorage.Download"/>, <see cref="Argmax"/>). Where MLX has a fused op it is used
/// (<c>mx.fast.rms_norm</c>, <c>layer_norm</c>, <c>rope</c>, <c>scaled_dot_product_attention</c>,
/// <c>quantized_matmul</c>, <c>conv1d</c>), so traces show MLX's own numerics. Weights passed as host tensors are
/// uploaded once (bf16 stays bf16) and, for convolutions, laid out once in MLX's NLC order, cached per weight tensor.
/// The stream is the GPU (Metal) where MLX has one, else the CPU.
/// </summary>
public sealed unsafe partial class MlxBackend : IBackend
{
    private readonly Stream _stream;
    private readonly string _device;
    private readonly ConditionalWeakTable<Tensor, Held> _weights = new();
    private readonly ConditionalWeakTable<Tensor, Held> _convWeights = new();
    private readonly ConditionalWeakTable<Tensor, Held> _convTWeights = new();
    private readonly ConditionalWeakTable<QuantizedWeight, HeldQuant> _quant = new();

    public MlxBackend()
    {
        MlxLibrary.EnsureAvailable();
        lock (MlxLibrary.Lock)
        {
            byte metal = 0;
            bool gpu = mlx_metal_is_available(&metal) == 0 && metal != 0;
            _stream = gpu ? mlx_default_gpu_stream_new() : mlx_default_cpu_stream_new();
            _device = gpu ? "gpu (Metal)" : "cpu";
        }
    }

    public string Name => "mlx";

    public string Describe() => $"mlx backend, MLX {MlxLibrary.Version} via mlx-c {MlxLibrary.MlxCCommit}, {_device} stream";

    public BackendStats Stats { get; } = new();

    // ------------------------------------------------------------------------------------------------ transfers

    public Tensor FromHost(Tensor host)
    {
        if (host.Storage is MlxStorage) return host;
        return Op("from_host", s => In(s, host));
    }

    public Tensor ToHost(Tensor x)
    {
        if (x.Storage is not DeviceStorage) return x;
        lock (MlxLibrary.Lock)
        {
            MlxLibrary.DrainDeferred();
            using var s = new Scope(this);
            var a = In(s, x);
            var c = s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, a, false, s.S));
            MlxLibrary.Check(mlx_array_eval(c), "eval");
            long n = x.ByteCount;
            var host = new ManagedStorage(n);
            if (n > 0)
            {
                byte* p = mlx_array_data_uint8(c);
                if (p == null) throw new MlxException($"mlx: no data for {x} after eval");
                new ReadOnlySpan<byte>(p, checked((int)n)).CopyTo(host.WritableSpan);
            }
            Stats.CountDownload(n);
            return new Tensor(host, x.DType, x.Shape.ToArray());
        }
    }

    /// <summary>Evaluates the graph behind the given tensors without copying them to the host (MLX <c>mx.eval</c>).</summary>
    public void Eval(params Tensor[] xs)
    {
        lock (MlxLibrary.Lock)
        {
            using var s = new Scope(this);
            var v = mlx_vector_array_new();
            try
            {
                foreach (var x in xs) mlx_vector_array_append_value(v, In(s, x));
                MlxLibrary.Check(mlx_eval(v), "eval");
            }
            finally { mlx_vector_array_free(v); }
        }
    }

    public Tensor Zeros(DType dtype, int[] shape) => Op("zeros", s => s.Do("zeros", r =>
    {
        fixed (int* p = shape) return mlx_zeros((MlxArray*)r, p, (nuint)shape.Length, ToMlx(dtype), s.S);
    }));

    public Tensor Contiguous(Tensor x) => Op("contiguous", s =>
    {
        var a = In(s, x);
        return s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, a, false, s.S));
    });

    public Tensor Cast(Tensor x, DType dtype) => Op("astype", s => s.Do("astype", r => mlx_astype((MlxArray*)r, In(s, x), ToMlx(dtype), s.S)));

    // ------------------------------------------------------------------------------------------------ shape ops

    public Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value)
    {
        int rank = x.Rank;
        if (pads.Length != rank) throw new ArgumentException($"pad: {pads.Length} pad pairs for rank {rank}");
        for (int i = 0; i < rank; i++)
            if (mode == PadMode.Reflect && (pads[i].Before >= x.Shape[i] || pads[i].After >= x.Shape[i]) && (pads[i].Before > 0 || pads[i].After > 0))
                throw new ArgumentException($"pad: reflect padding {pads[i]} must be smaller than dim {i} of size {x.Shape[i]}");
        var p = pads.ToArray();
        return Op("pad", s =>
        {
            var a = F32(s, x);
            if (mode != PadMode.Reflect)
            {
                var axes = Enumerable.Range(0, rank).ToArray();
                var low = p.Select(t => t.Before).ToArray();
                var high = p.Select(t => t.After).ToArray();
                var val = s.Scalar(value);
                string m = mode == PadMode.Constant ? "constant" : "edge";
                return s.Do("pad", r =>
                {
                    fixed (int* pa = axes) fixed (int* pl = low) fixed (int* ph = high)
                        return mlx_pad((MlxArray*)r, a, pa, (nuint)rank, pl, (nuint)rank, ph, (nuint)rank, val, m, s.S);
                });
            }
            // MLX has no reflect mode: gather each padded axis through reflected indices (edge sample excluded, as PyTorch)
            for (int dim = 0; dim < rank; dim++)
            {
                if (p[dim].Before == 0 && p[dim].After == 0) continue;
                int size = x.Shape[dim];
                var idx = new int[size + p[dim].Before + p[dim].After];
                for (int o = 0; o < idx.Length; o++)
                {
                    int i = o - p[dim].Before;
                    idx[o] = i < 0 ? -i : i >= size ? 2 * (size - 1) - i : i;
                }
                var ia = Ids(s, idx);
                var cur = a;
                int axis = dim;
                a = s.Do("take", r => mlx_take_axis((MlxArray*)r, cur, ia, axis, s.S));
            }
            return a;
        });
    }

    public Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("concatenate: no inputs");
        int rank = xs[0].Rank;
        int ax = axis < 0 ? axis + rank : axis;
        foreach (var t in xs)
            if (t.Rank != rank || Enumerable.Range(0, rank).Any(i => i != ax && t.Shape[i] != xs[0].Shape[i]))
                throw new ArgumentException($"concatenate: shapes {string.Join(", ", xs.Select(q => Tensor.ShapeString(q.Shape)))} differ off axis {ax}");
        return Op("concatenate", s =>
        {
            var v = mlx_vector_array_new();
            try
            {
                foreach (var t in xs) mlx_vector_array_append_value(v, F32(s, t));
                return s.Do("concatenate", r => mlx_concatenate_axis((MlxArray*)r, v, ax, s.S));
            }
            finally { mlx_vector_array_free(v); }
        });
    }

    public Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims) => Op(op.ToString(), s =>
    {
        var a = F32(s, x);
        return op switch
        {
            ReduceOp.Sum => s.Do("sum", r => mlx_sum_axis((MlxArray*)r, a, axis, keepDims, s.S)),
            ReduceOp.Mean => s.Do("mean", r => mlx_mean_axis((MlxArray*)r, a, axis, keepDims, s.S)),
            ReduceOp.Max => s.Do("max", r => mlx_max_axis((MlxArray*)r, a, axis, keepDims, s.S)),
            ReduceOp.Min => s.Do("min", r => mlx_min_axis((MlxArray*)r, a, axis, keepDims, s.S)),
            _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
        };
    });

    public int[] Argmax(Tensor x)
    {
        int d = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(d, 1));
        var ids = Op("argmax", s =>
        {
            var a = Reshape(s, F32(s, x), [rows, d]);
            return s.Do("argmax", r => mlx_argmax_axis((MlxArray*)r, a, 1, false, s.S));
        });
        var host = ToHost(Cast(ids, DType.I32));
        return host.AsSpan<int>().ToArray(); // first maximum, as torch.argmax and mx.argmax
    }

    public (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k)
    {
        // a host-span op by its signature (sampling runs on the host after the logits' transfer)
        k = Math.Clamp(k, 0, x.Length);
        var idx = new int[x.Length];
        for (int i = 0; i < idx.Length; i++) idx[i] = i;
        var vals = x.ToArray();
        System.Array.Sort(idx, (a, b) => vals[b].CompareTo(vals[a]) is var c && c != 0 ? c : a.CompareTo(b));
        var top = idx[..k];
        return (top.Select(i => vals[i]).ToArray(), top);
    }

    // ------------------------------------------------------------------------------------------------ in-place writes

    public void SliceUpdate(Tensor dst, Tensor src, int axis, int start)
    {
        if (dst.Storage is not MlxStorage ms)
            throw new ArgumentException($"slice_update: the destination {dst} is not an mlx tensor (make it with the backend's Zeros or FromHost)");
        axis = ShapeRules.SliceUpdate(dst, src, axis, start);
        int n = src.Shape[axis];
        lock (MlxLibrary.Lock)
        {
            MlxLibrary.DrainDeferred();
            using var s = new Scope(this);
            var upd = AsType(s, In(s, src), ToMlx(ms.DType));
            MlxArray next;
            if (dst.Offset == 0 && dst.IsContiguous && dst.ElementCount == ms.ElementCount)
            {
                // the usual case (KV cache, embeddings): the destination is the whole array, maybe reshaped
                var whole = dst.Shape.AsSpan().SequenceEqual(ms.Shape) ? ms.Array : Reshape(s, ms.Array, dst.Shape);
                var lo = new int[dst.Rank]; var hi = dst.Shape.ToArray(); var st = Enumerable.Repeat(1, dst.Rank).ToArray();
                lo[axis] = start; hi[axis] = start + n;
                next = s.Do("slice_update", r =>
                {
                    fixed (int* pl = lo) fixed (int* ph = hi) fixed (int* pst = st)
                        return mlx_slice_update((MlxArray*)r, whole, upd, pl, (nuint)lo.Length, ph, (nuint)hi.Length, pst, (nuint)st.Length, s.S);
                });
                if (!dst.Shape.AsSpan().SequenceEqual(ms.Shape)) next = Reshape(s, next, ms.Shape);
            }
            else
            {
                // a strided view: write the region through Assign's scatter
                Assign(s, dst.Slice(axis, start, n), upd);
                Stats.CountOp();
                return;
            }
            ms.Swap(s.Detach(next));
            Stats.CountOp();
        }
    }
}
