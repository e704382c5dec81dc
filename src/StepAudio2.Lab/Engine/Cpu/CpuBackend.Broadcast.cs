using System.Numerics.Tensors;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Cpu;

// Broadcasting element-wise ops a row at a time. Why: the models broadcast along middle axes ([B, T, D] ⊙ [B, 1, D] in the
// DiT's modulate and gates) and along the last axis ([B, n, H] ⊙ [B, n, 1] in HiFT's source), where the one-element
// odometer of the general path costs several times the arithmetic. Each output row is one TensorPrimitives pass, each
// operand read at its broadcast row offset as a row (unit stride) or as one value (a size-1 last axis). Same float
// operation per element as the general path.
public sealed unsafe partial class CpuBackend
{
    private static void BroadcastRows(BinaryOp op, Tensor a, Tensor b, int[] shape, Span<float> d)
    {
        int rank = shape.Length, inner = shape[^1];
        var sa = ShapeRules.BroadcastStrides(a.Shape, shape);
        var sb = ShapeRules.BroadcastStrides(b.Shape, shape);
        bool rowA = sa[^1] == 1, rowB = sb[^1] == 1; // else the last axis has size 1 and is broadcast (stride 0)
        var pa = a.AsSpan<float>(); var pb = b.AsSpan<float>();
        long rows = d.Length / inner;
        var idx = new int[Math.Max(rank - 1, 1)];
        long ia = 0, ib = 0;
        for (long r = 0; r < rows; r++)
        {
            var dst = d.Slice((int)(r * inner), inner);
            if (rowA && rowB) Apply(op, pa.Slice((int)ia, inner), pb.Slice((int)ib, inner), dst);
            else if (rowA) ApplyRowValue(op, pa.Slice((int)ia, inner), pb[(int)ib], dst);
            else if (rowB) ApplyValueRow(op, pa[(int)ia], pb.Slice((int)ib, inner), dst);
            else dst.Fill(Apply(op, pa[(int)ia], pb[(int)ib]));
            for (int k = rank - 2; k >= 0; k--)
            {
                idx[k]++; ia += sa[k]; ib += sb[k];
                if (idx[k] < shape[k]) break;
                ia -= sa[k] * shape[k]; ib -= sb[k] * shape[k]; idx[k] = 0;
            }
        }
    }

    /// <summary>d = a ∘ b for a row a and one value b.</summary>
    private static void ApplyRowValue(BinaryOp op, ReadOnlySpan<float> a, float b, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(a, b, d); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, d); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(a, b, d); break;
            case BinaryOp.Divide: TensorPrimitives.Divide(a, b, d); break;
            default: for (int i = 0; i < a.Length; i++) d[i] = Apply(op, a[i], b); break;
        }
    }

    /// <summary>d = a ∘ b for one value a and a row b (operand order kept: a − b, a / b).</summary>
    private static void ApplyValueRow(BinaryOp op, float a, ReadOnlySpan<float> b, Span<float> d)
    {
        switch (op)
        {
            case BinaryOp.Add: TensorPrimitives.Add(b, a, d); break;
            case BinaryOp.Subtract: TensorPrimitives.Subtract(a, b, d); break;
            case BinaryOp.Multiply: TensorPrimitives.Multiply(b, a, d); break;
            case BinaryOp.Divide: TensorPrimitives.Divide(a, b, d); break;
            default: for (int i = 0; i < b.Length; i++) d[i] = Apply(op, a, b[i]); break;
        }
    }
}
