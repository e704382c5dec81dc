using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>Hints for comparisons whose shapes differ: reshape, transpose/permutation, or a length off along one axis.</summary>
internal static class ShapeHints
{
    /// <summary>Element counts differ. When exactly one axis differs, says whether the common part lines up at the start or the end.</summary>
    public static FailureHint CountMismatch(Tensor candidate, Tensor reference, Tolerance tol)
    {
        string shapes = $"shape {Tensor.ShapeString(candidate.Shape)} vs reference {Tensor.ShapeString(reference.Shape)} ({candidate.ElementCount} vs {reference.ElementCount} elements)";
        if (candidate.Rank != reference.Rank)
            return new FailureHint(HintKind.ShapeMismatch, shapes);

        int axis = -1;
        for (int d = 0; d < candidate.Rank; d++)
        {
            if (candidate.Shape[d] == reference.Shape[d]) continue;
            if (axis >= 0) return new FailureHint(HintKind.ShapeMismatch, shapes);
            axis = d;
        }
        int lenA = candidate.Shape[axis], lenB = reference.Shape[axis];
        int common = Math.Min(lenA, lenB);
        int delta = lenA - lenB;
        string longer = delta > 0 ? "the candidate has" : "the reference has";
        string text = $"{shapes}: differs only along axis {axis} ({lenA} vs {lenB})";
        if (common > 0 && CommonPartMatches(candidate.Slice(axis, 0, common), reference.Slice(axis, 0, common), tol))
            text += $"; the first {common} match, {longer} {Math.Abs(delta)} extra at the end (length, padding or frame count)";
        else if (common > 0 && CommonPartMatches(candidate.Slice(axis, lenA - common, common), reference.Slice(axis, lenB - common, common), tol))
            text += $"; the last {common} match, {longer} {Math.Abs(delta)} extra at the start (a leading frame/token, left padding)";
        else if (common > 0)
            text += "; the common part does not match either way";
        return new FailureHint(HintKind.ShapeMismatch, text, Value: delta, Axis: axis);
    }

    /// <summary>Same element count, different shapes: a reshape if the flat values agree, else a transpose/permutation if one fits.</summary>
    public static FailureHint SameCountMismatch(double[] a, int[] shapeA, double[] b, int[] shapeB, DiffStats s, Tolerance tol, bool flatValuesPass)
    {
        string shapes = $"shape {Tensor.ShapeString(shapeA)} vs reference {Tensor.ShapeString(shapeB)} (same {a.LongLength} elements)";
        if (flatValuesPass)
            return new FailureHint(HintKind.Reshaped, $"{shapes}: same values in row-major order — a missing squeeze/unsqueeze or a view/reshape to the wrong shape");

        double origRel = s.RelL2;
        if (s.NonFiniteMismatches == 0 && s.SumB2 > 0)
        {
            bool Fits(double residualSq)
            {
                double rel = Math.Sqrt(Math.Max(residualSq, 0) / s.SumB2);
                return rel <= HintDetector.FitRel && rel <= HintDetector.Improvement * origRel;
            }
            // Shapes differ, so these are different-shaped views of the data: check every permutation fully (they are few).
            var hint = HintDetector.PermutationHint(a, shapeA, b, shapeB, Fits, _ => true);
            if (hint is not null) return hint with { Text = $"{shapes}: {hint.Text}" };
        }
        return new FailureHint(HintKind.ShapeMismatch, $"{shapes}; the values do not line up after a reshape or an axis permutation");
    }

    private static bool CommonPartMatches(Tensor a, Tensor b, Tolerance tol)
    {
        bool integer = !a.DType.IsFloating() && !b.DType.IsFloating();
        if (integer) return TensorData.ToInt64s(a).AsSpan().SequenceEqual(TensorData.ToInt64s(b));
        var s = DiffStats.Compute(TensorData.ToDoubles(a), TensorData.ToDoubles(b), tol);
        return s.OutOfTolerance == 0 && (tol.MaxRelL2 is not double bound || s.RelL2 <= bound);
    }
}
