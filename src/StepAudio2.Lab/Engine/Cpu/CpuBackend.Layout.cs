using System.Numerics.Tensors;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Cpu;

// Place, layout and the small element-wise ops (RoPE, cumsum, repeat, where, clamp, Snake). The CPU backend's tensors
// are host tensors, so its transfer points are identities; a device tensor of another backend is downloaded through its
// own storage (and counted there).
public sealed unsafe partial class CpuBackend
{
    public Tensor FromHost(Tensor host) => host.IsHost ? host : host.ToHost();

    public Tensor ToHost(Tensor x) => x.IsHost ? x : x.ToHost();

    public Tensor Zeros(DType dtype, int[] shape) => Tensor.Zeros(dtype, shape);

    public Tensor Contiguous(Tensor x) => x.Contiguous();

    public Tensor Cast(Tensor x, DType dtype) => x.To(dtype);

    public void SliceUpdate(Tensor dst, Tensor src, int axis, int start)
    {
        if (dst.Storage.IsMapped) throw new ArgumentException($"slice_update: destination maps {dst.Storage.Origin} read-only");
        axis = ShapeRules.SliceUpdate(dst, src, axis, start);
        var target = dst.Slice(axis, start, src.Shape[axis]);
        CopyInto(src.Contiguous(), target);
    }

    /// <summary>Copies a contiguous <paramref name="src"/> into the (strided) view <paramref name="dst"/> of the same shape, row by row.</summary>
    private static void CopyInto(Tensor src, Tensor dst)
    {
        if (src.ElementCount == 0) return;
        int size = src.DType.SizeOf();
        byte* s = src.Storage.Pointer + src.Offset * size, d = dst.Storage.Pointer;
        int rank = dst.Rank;
        int inner = rank == 0 ? 1 : dst.Shape[^1];
        long innerStride = rank == 0 ? 1 : dst.Strides[^1];
        long rows = dst.ElementCount / inner;
        var idx = new int[Math.Max(rank - 1, 1)];
        long pos = dst.Offset;
        long rowBytes = (long)inner * size;
        for (long r = 0; r < rows; r++)
        {
            if (innerStride == 1) Buffer.MemoryCopy(s, d + pos * size, rowBytes, rowBytes);
            else
                for (int i = 0; i < inner; i++) Buffer.MemoryCopy(s + (long)i * size, d + (pos + i * innerStride) * size, size, size);
            s += rowBytes;
            for (int k = rank - 2; k >= 0; k--)
            {
                idx[k]++;
                pos += dst.Strides[k];
                if (idx[k] < dst.Shape[k]) break;
                pos -= dst.Strides[k] * dst.Shape[k];
                idx[k] = 0;
            }
        }
        GC.KeepAlive(src); GC.KeepAlive(dst);
    }

    public Tensor Rope(Tensor x, int offset, float theta)
    {
        x = F32(x);
        if (x.Rank < 2 || x.Shape[^1] % 2 != 0) throw new ArgumentException($"rope: x {Tensor.ShapeString(x.Shape)} needs [..., T, D] with even D");
        int n = x.Shape[^2], hd = x.Shape[^1], half = hd / 2;
        long blocks = x.ElementCount / ((long)n * hd);
        var (cos, sin) = RotaryTables.Compute(offset, n, hd, theta);
        var src = x.AsSpan<float>();
        var y = New(x.Shape);
        var dst = Out(y);
        for (long b = 0; b < blocks; b++)
            for (int p = 0; p < n; p++)
            {
                int o = (int)((b * n + p) * hd);
                var c = cos.AsSpan(p * half, half);
                var s = sin.AsSpan(p * half, half);
                var lo = src.Slice(o, half); var hi = src.Slice(o + half, half);
                for (int i = 0; i < half; i++)
                {
                    dst[o + i] = lo[i] * c[i] - hi[i] * s[i];
                    dst[o + half + i] = hi[i] * c[i] + lo[i] * s[i];
                }
            }
        return y;
    }

    public Tensor Cumsum(Tensor x, int axis)
    {
        x = F32(x);
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank) throw new ArgumentException($"cumsum: axis {axis} for {Tensor.ShapeString(x.Shape)}");
        int n = x.Shape[axis];
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= x.Shape[i];
        for (int i = axis + 1; i < x.Rank; i++) inner *= x.Shape[i];
        var src = x.AsSpan<float>();
        var y = New(x.Shape);
        var dst = Out(y);
        for (long o = 0; o < outer; o++)
            for (long i = 0; i < inner; i++)
            {
                double acc = 0; // PyTorch's CPU cumsum accumulates float32 in double (acc_type) and rounds each output
                for (int j = 0; j < n; j++)
                {
                    int at = (int)((o * n + j) * inner + i);
                    acc += src[at];
                    dst[at] = (float)acc;
                }
            }
        return y;
    }

    public Tensor Repeat(Tensor x, int axis, int repeats)
    {
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank || repeats < 1) throw new ArgumentException($"repeat: axis {axis}, repeats {repeats} for {Tensor.ShapeString(x.Shape)}");
        x = F32(x);
        int n = x.Shape[axis];
        long outer = 1, inner = 1;
        for (int i = 0; i < axis; i++) outer *= x.Shape[i];
        for (int i = axis + 1; i < x.Rank; i++) inner *= x.Shape[i];
        var shape = (int[])x.Shape.Clone();
        shape[axis] = checked(n * repeats);
        var y = New(shape);
        var src = x.AsSpan<float>();
        var dst = Out(y);
        long at = 0;
        for (long o = 0; o < outer; o++)
            for (int j = 0; j < n; j++)
            {
                var row = src.Slice((int)((o * n + j) * inner), (int)inner);
                for (int r = 0; r < repeats; r++, at += inner) row.CopyTo(dst.Slice((int)at, (int)inner));
            }
        return y;
    }

    public Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        var c = F32(cond.DType is DType.F32 ? cond : cond.To(DType.F32));
        a = F32(a); b = F32(b);
        var shape = ShapeRules.Broadcast("where", c.Shape, a.Shape, b.Shape);
        var y = New(shape);
        var d = Out(y);
        var sc = ShapeRules.BroadcastStrides(c.Shape, shape); var sa = ShapeRules.BroadcastStrides(a.Shape, shape); var sb = ShapeRules.BroadcastStrides(b.Shape, shape);
        var pc = c.AsSpan<float>(); var pa = a.AsSpan<float>(); var pb = b.AsSpan<float>();
        int rank = shape.Length;
        var idx = new int[rank];
        long ic = 0, ia = 0, ib = 0;
        for (int n = 0; n < d.Length; n++)
        {
            d[n] = pc[(int)ic] != 0 ? pa[(int)ia] : pb[(int)ib];
            for (int k = rank - 1; k >= 0; k--)
            {
                idx[k]++; ic += sc[k]; ia += sa[k]; ib += sb[k];
                if (idx[k] < shape[k]) break;
                ic -= sc[k] * shape[k]; ia -= sa[k] * shape[k]; ib -= sb[k] * shape[k]; idx[k] = 0;
            }
        }
        return y;
    }

    public Tensor Clamp(Tensor x, float min, float max)
    {
        x = F32(x);
        var y = New(x.Shape);
        TensorPrimitives.Clamp(x.AsSpan<float>(), min, max, Out(y));
        return y;
    }

    public Tensor Snake(Tensor x, Tensor alpha)
    {
        x = F32(x);
        var a = alpha.ToFloatArray();
        int c = x.Rank == 3 ? x.Shape[1] : x.Rank == 2 ? x.Shape[0] : -1;
        if (c != a.Length) throw new ArgumentException($"snake: x {Tensor.ShapeString(x.Shape)} needs [B, C, T] or [C, T] with C = {a.Length} (alpha)");
        int t = x.Shape[^1];
        int rows = (int)(x.ElementCount / Math.Max(t, 1));
        var y = New(x.Shape);
        SnakeRows(Ptr(x), a, Ptr(y), rows, c, t); // the official float order, no FMA
        GC.KeepAlive(x); GC.KeepAlive(y);
        return y;
    }
}
