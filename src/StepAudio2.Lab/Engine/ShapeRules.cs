using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine;

/// <summary>
/// The shape contract of the boundary's ops, checked once for every backend so all of them accept and refuse the same
/// calls with the same messages: NumPy broadcasting and <see cref="IBackend.SliceUpdate"/>'s geometry.
/// </summary>
public static class ShapeRules
{
    /// <summary>NumPy broadcasting: axes aligned at the end, a size-1 axis stretches; anything else fails naming <paramref name="op"/>.</summary>
    public static int[] Broadcast(string op, params int[][] shapes)
    {
        int rank = shapes.Max(s => s.Length);
        var shape = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            int size = 1;
            foreach (var s in shapes)
            {
                int d = i < rank - s.Length ? 1 : s[i - (rank - s.Length)];
                if (d == 1) continue;
                if (size != 1 && d != size)
                    throw new ArgumentException($"{op}: shapes {string.Join(" and ", shapes.Select(Tensor.ShapeString))} do not broadcast");
                size = d;
            }
            shape[i] = size;
        }
        return shape;
    }

    /// <summary>
    /// Element strides that read a contiguous tensor of <paramref name="shape"/> as if it had the broadcast
    /// <paramref name="target"/> shape: 0 on stretched (size-1 or missing leading) axes.
    /// </summary>
    public static long[] BroadcastStrides(int[] shape, int[] target)
    {
        var strides = new long[target.Length];
        var own = Tensor.ContiguousStrides(shape);
        int off = target.Length - shape.Length;
        for (int i = 0; i < shape.Length; i++) strides[i + off] = shape[i] == 1 ? 0 : own[i];
        return strides;
    }

    /// <summary>
    /// Checks <c>dst[…, start:start+n, …] = src</c> along <paramref name="axis"/> (negative counts from the end): same rank
    /// and dtype, equal sizes off the axis, the rows inside dst. Returns the axis, normalised.
    /// </summary>
    public static int SliceUpdate(Tensor dst, Tensor src, int axis, int start)
    {
        if (dst.DType != src.DType) throw new ArgumentException($"slice_update: dtypes differ (dst {dst.DType.ShortName()}, src {src.DType.ShortName()})");
        if (axis < 0) axis += dst.Rank;
        if (src.Rank != dst.Rank || (uint)axis >= (uint)dst.Rank)
            throw new ArgumentException($"slice_update: src {Tensor.ShapeString(src.Shape)} into dst {Tensor.ShapeString(dst.Shape)} along axis {axis}");
        for (int i = 0; i < dst.Rank; i++)
            if (i != axis && src.Shape[i] != dst.Shape[i])
                throw new ArgumentException($"slice_update: src {Tensor.ShapeString(src.Shape)} and dst {Tensor.ShapeString(dst.Shape)} differ on axis {i}");
        if (start < 0 || start + src.Shape[axis] > dst.Shape[axis])
            throw new ArgumentOutOfRangeException(nameof(start), $"slice_update: rows [{start}, {start + src.Shape[axis]}) outside dim {axis} of size {dst.Shape[axis]}");
        return axis;
    }
}
