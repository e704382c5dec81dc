using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cuda;

// Normalisation, element-wise, shape and reduction ops of the CUDA backend: one kernel each (CudaKernels.Source).
public sealed unsafe partial class CudaBackend
{
    public Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        Begin();
        var xd = Dev(x);
        int d = x.Shape[^1];
        if ((weight is not null && weight.ElementCount != d) || (bias is not null && bias.ElementCount != d))
            throw new ArgumentException($"layer_norm: affine parameters do not match the last dim {d}");
        var w = weight is null ? null : Weight(weight, WeightUse.F32);
        var b = bias is null ? null : Weight(bias, WeightUse.F32);
        var y = NewF32((int[])x.Shape.Clone());
        Device.LaunchGrid(CudaKernels.Names.LayerNorm, (uint)Rows(xd, d), RowBlock(d), [Addr(xd), AddrOrZero(w), AddrOrZero(b), Addr(y), d, eps]);
        Keep(xd, w, b);
        return y;
    }

    public Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        Begin();
        var xd = Dev(x);
        int d = x.Shape[^1];
        if (weight.ElementCount != d) throw new ArgumentException($"rms_norm: weight has {weight.ElementCount} elements, last dim is {d}");
        var w = Weight(weight, WeightUse.F32);
        var y = NewF32((int[])x.Shape.Clone());
        Device.LaunchGrid(CudaKernels.Names.RmsNorm, (uint)Rows(xd, d), RowBlock(d), [Addr(xd), Addr(w), Addr(y), d, eps]);
        Keep(xd, w);
        return y;
    }

    public Tensor Softmax(Tensor x)
    {
        Begin();
        var xd = Dev(x);
        int d = x.Shape[^1];
        var y = NewF32((int[])x.Shape.Clone());
        Device.LaunchGrid(CudaKernels.Names.Softmax, (uint)Rows(xd, d), RowBlock(d), [Addr(xd), Addr(y), d]);
        Keep(xd);
        return y;
    }

    public Tensor Unary(UnaryOp op, Tensor x, float alpha) => UnaryCode((int)op, x, alpha, 0f);

    private Tensor UnaryCode(int op, Tensor x, float alpha, float beta)
    {
        Begin();
        var xd = Dev(x);
        var y = NewF32((int[])x.Shape.Clone());
        Device.Launch(CudaKernels.Names.Unary, y.ElementCount, [Addr(xd), Addr(y), y.ElementCount, op, alpha, beta]);
        Keep(xd);
        return y;
    }

    public Tensor Clamp(Tensor x, float min, float max) => UnaryCode(100, x, min, max);

    public Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        Begin();
        var shape = ShapeRules.Broadcast(op.ToString(), a.Shape, b.Shape);
        var da = Dev(a); var db = Dev(b);
        var y = NewF32(shape);
        if (a.Shape.SequenceEqual(shape) && b.Shape.SequenceEqual(shape))
            Device.Launch(CudaKernels.Names.BinarySame, y.ElementCount, [Addr(da), Addr(db), Addr(y), y.ElementCount, (int)op]);
        else
        {
            var meta = StridedMeta.Create(shape, ShapeRules.BroadcastStrides(a.Shape, shape), ShapeRules.BroadcastStrides(b.Shape, shape));
            Device.Launch(CudaKernels.Names.Binary, y.ElementCount, [Addr(da), Addr(db), Addr(y), y.ElementCount, (int)op], &meta);
        }
        Keep(da, db);
        return y;
    }

    public Tensor Scale(Tensor x, float scale, float shift)
    {
        Begin();
        var xd = Dev(x);
        var y = NewF32((int[])x.Shape.Clone());
        Device.Launch(CudaKernels.Names.Scale, y.ElementCount, [Addr(xd), Addr(y), y.ElementCount, scale, shift]);
        Keep(xd);
        return y;
    }

    public Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        Begin();
        var shape = ShapeRules.Broadcast("where", cond.Shape, a.Shape, b.Shape);
        var dc = Dev(cond); var da = Dev(a); var db = Dev(b);
        var y = NewF32(shape);
        var meta = StridedMeta.Create(shape, ShapeRules.BroadcastStrides(cond.Shape, shape), ShapeRules.BroadcastStrides(a.Shape, shape), ShapeRules.BroadcastStrides(b.Shape, shape));
        Device.Launch(CudaKernels.Names.Where, y.ElementCount, [Addr(dc), Addr(da), Addr(db), Addr(y), y.ElementCount], &meta);
        Keep(dc, da, db);
        return y;
    }

    public Tensor Snake(Tensor x, Tensor alpha)
    {
        Begin();
        int c = x.Rank == 3 ? x.Shape[1] : x.Rank == 2 ? x.Shape[0] : -1;
        if (c != alpha.ElementCount) throw new ArgumentException($"snake: x {Tensor.ShapeString(x.Shape)} needs [B, C, T] or [C, T] with C = {alpha.ElementCount} (alpha)");
        var xd = Dev(x);
        var a = Weight(alpha, WeightUse.F32);
        var y = NewF32((int[])x.Shape.Clone());
        Device.Launch(CudaKernels.Names.Snake, y.ElementCount, [Addr(xd), Addr(a), Addr(y), y.ElementCount, c, x.Shape[^1]]);
        Keep(xd, a);
        return y;
    }

    public Tensor Rope(Tensor x, int offset, float theta)
    {
        Begin();
        if (x.Rank < 2 || x.Shape[^1] % 2 != 0) throw new ArgumentException($"rope: x {Tensor.ShapeString(x.Shape)} needs [..., T, D] with even D");
        if (offset < 0) throw new ArgumentException($"rope: negative offset {offset}");
        int n = x.Shape[^2], hd = x.Shape[^1];
        var xd = Dev(x);
        var (cos, sin) = RopeTables(hd, theta, offset + n);
        var y = NewF32((int[])x.Shape.Clone());
        Device.Launch(CudaKernels.Names.Rope, y.ElementCount, [Addr(xd), Addr(y), Addr(cos), Addr(sin), y.ElementCount, n, hd, offset]);
        Keep(xd, cos, sin);
        return y;
    }

    /// <summary>cos/sin tables [P, D/2] for positions 0..P−1, computed on the host exactly as the CPU backend's
    /// (<see cref="RotaryTables.Compute"/>) and uploaded once; regrown (doubling) when a later position is asked for.</summary>
    private (Tensor Cos, Tensor Sin) RopeTables(int hd, float theta, int positions)
    {
        lock (_rope)
        {
            if (_rope.TryGetValue((hd, theta), out var t) && t.Positions >= positions) return (t.Cos, t.Sin);
            int p = Math.Max(4096, (int)Math.Min(int.MaxValue / 2, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)positions)));
            var (cos, sin) = RotaryTables.Compute(0, p, hd, theta);
            var dc = New(DType.F32, [p, hd / 2]);
            var ds = New(DType.F32, [p, hd / 2]);
            Device.Upload(Addr(dc), System.Runtime.InteropServices.MemoryMarshal.AsBytes(cos.AsSpan()));
            Device.Upload(Addr(ds), System.Runtime.InteropServices.MemoryMarshal.AsBytes(sin.AsSpan()));
            Stats.CountWeightUpload(2L * cos.Length * 4);
            _rope[(hd, theta)] = (dc, ds, p);
            return (dc, ds);
        }
    }

    private static (long Outer, int N, long Inner) AxisSplit(int[] shape, int axis)
    {
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= shape[i];
        for (int i = axis + 1; i < shape.Length; i++) inner *= shape[i];
        return (outer, shape[axis], inner);
    }

    public Tensor Cumsum(Tensor x, int axis)
    {
        Begin();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank) throw new ArgumentException($"cumsum: axis {axis} for {Tensor.ShapeString(x.Shape)}");
        var xd = Dev(x);
        var (outer, n, inner) = AxisSplit(x.Shape, axis);
        var y = NewF32((int[])x.Shape.Clone());
        Device.Launch(CudaKernels.Names.Cumsum, outer * inner, [Addr(xd), Addr(y), outer, n, inner]);
        Keep(xd);
        return y;
    }

    public Tensor Repeat(Tensor x, int axis, int repeats)
    {
        Begin();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank || repeats < 1) throw new ArgumentException($"repeat: axis {axis}, repeats {repeats} for {Tensor.ShapeString(x.Shape)}");
        var xd = Dev(x);
        var (outer, n, inner) = AxisSplit(x.Shape, axis);
        var shape = (int[])x.Shape.Clone();
        shape[axis] = checked(n * repeats);
        var y = NewF32(shape);
        Device.Launch(CudaKernels.Names.Repeat, y.ElementCount, [Addr(xd), Addr(y), outer, n, inner, repeats]);
        Keep(xd);
        return y;
    }

    public Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value)
    {
        Begin();
        int rank = x.Rank;
        if (pads.Length != rank) throw new ArgumentException($"pad: {pads.Length} pad pairs for rank {rank}");
        var shape = new int[rank];
        var before = new long[rank];
        var sizes = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            if (pads[i].Before < 0 || pads[i].After < 0) throw new ArgumentException($"pad: negative padding {pads[i]} on dim {i}");
            shape[i] = x.Shape[i] + pads[i].Before + pads[i].After;
            before[i] = pads[i].Before;
            sizes[i] = x.Shape[i];
            if (mode == PadMode.Reflect && (pads[i].Before >= x.Shape[i] || pads[i].After >= x.Shape[i]) && (pads[i].Before > 0 || pads[i].After > 0))
                throw new ArgumentException($"pad: reflect padding {pads[i]} must be smaller than dim {i} of size {x.Shape[i]}");
            if (mode == PadMode.Replicate && x.Shape[i] == 0 && (pads[i].Before > 0 || pads[i].After > 0))
                throw new ArgumentException($"pad: replicate padding of the empty dim {i}");
        }
        var xd = Dev(x);
        var y = NewF32(shape);
        var meta = StridedMeta.Create(shape, Tensor.ContiguousStrides(x.Shape), before, sizes);
        Device.Launch(CudaKernels.Names.Pad, y.ElementCount, [Addr(xd), Addr(y), y.ElementCount, (int)mode, value], &meta);
        Keep(xd);
        return y;
    }

    public Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis)
    {
        Begin();
        if (xs.Count == 0) throw new ArgumentException("concatenate: no inputs");
        int rank = xs[0].Rank;
        if (axis < 0) axis += rank;
        if ((uint)axis >= (uint)rank) throw new ArgumentException($"concatenate: axis {axis} for rank {rank}");
        var shape = xs[0].Shape.ToArray();
        shape[axis] = 0;
        foreach (var p in xs)
        {
            if (p.Rank != rank || Enumerable.Range(0, rank).Any(i => i != axis && p.Shape[i] != xs[0].Shape[i]))
                throw new ArgumentException($"concatenate: shapes {string.Join(", ", xs.Select(q => Tensor.ShapeString(q.Shape)))} differ off axis {axis}");
            shape[axis] += p.Shape[axis];
        }
        var y = NewF32(shape);
        long at = 0;
        foreach (var p in xs)
        {
            // a device f32 part is read through its own strides (no contiguous copy first)
            var part = Mine(p) && p.DType == DType.F32 ? p : Dev(p);
            if (part.ElementCount > 0) CopyStrided(part, Addr(y) + (ulong)(at * y.Strides[axis] * 4), y.Strides);
            at += p.Shape[axis];
            Keep(part);
        }
        return y;
    }

    public Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims)
    {
        Begin();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank) throw new ArgumentException($"reduce: axis {axis} for {Tensor.ShapeString(x.Shape)}");
        var xd = Dev(x);
        var (outer, n, inner) = AxisSplit(x.Shape, axis);
        var shape = keepDims ? x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray() : x.Shape.Where((_, i) => i != axis).ToArray();
        var y = NewF32(shape);
        Device.Launch(CudaKernels.Names.Reduce, outer * inner, [Addr(xd), Addr(y), outer, n, inner, (int)op]);
        Keep(xd);
        return y;
    }

    public int[] Argmax(Tensor x)
    {
        Begin();
        var xd = Dev(x);
        int d = x.Shape[^1];
        int rows = Rows(xd, d);
        if (rows == 0) return [];
        if (d == 0) throw new ArgumentException("argmax: empty last axis");
        var ids = New(DType.I32, [rows]);
        Device.LaunchGrid(CudaKernels.Names.Argmax, (uint)rows, 1024, [Addr(xd), Addr(ids), d]);
        var result = new int[rows];
        Device.Download(System.Runtime.InteropServices.MemoryMarshal.AsBytes(result.AsSpan()), Addr(ids));
        Stats.CountDownload((long)rows * 4);
        Keep(xd, ids);
        return result;
    }

    public (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k) => s_cpu.TopK(x, k); // already host values
}
