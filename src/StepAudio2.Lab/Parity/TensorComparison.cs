using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>What a failing difference looks like; the likely bug it points to is in <see cref="FailureHint.Text"/>.</summary>
public enum HintKind
{
    /// <summary>Passing, or no recognisable pattern (the text then summarises how widespread the error is).</summary>
    None,
    /// <summary>Counts of elements differ: the shapes cannot be lined up at all.</summary>
    ShapeMismatch,
    /// <summary>Same values in the same order, different shape (missing squeeze/unsqueeze, view of the wrong shape).</summary>
    Reshaped,
    /// <summary>NaN or ±∞ on one side where the other is finite.</summary>
    NaNAppeared,
    /// <summary>The candidate is all zeros while the reference is not: weight not loaded, output never written.</summary>
    AllZeros,
    /// <summary>Whole slices along one axis are zero in the candidate only: part of the output never written.</summary>
    ZeroSlices,
    /// <summary>candidate ≈ −reference.</summary>
    SignFlip,
    /// <summary>candidate ≈ k·reference with k ≠ 1 (<see cref="FailureHint.Value"/> = k).</summary>
    Scaled,
    /// <summary>candidate ≈ reference + c everywhere (<see cref="FailureHint.Value"/> = c).</summary>
    ConstantOffset,
    /// <summary>candidate − reference depends only on the index along one axis: a per-channel bias missing or doubled.</summary>
    ChannelOffset,
    /// <summary>candidate / reference depends only on the index along one axis: a norm weight (γ) or per-channel gain.</summary>
    ChannelScaled,
    /// <summary>Rounding-level differences beyond the rule's bound (summation order, precision), no structural error.</summary>
    Rounding,
    /// <summary>candidate ≈ referenceᵀ (2-D, or all axes reversed).</summary>
    Transposed,
    /// <summary>candidate ≈ reference with its axes permuted (<see cref="FailureHint.Axes"/>, as for <c>permute</c>).</summary>
    PermutedAxes,
    /// <summary>candidate[t] ≈ reference[t − s] along one axis for s = ±1: off by one in time / padding.</summary>
    Shifted,
    /// <summary>Slices along one axis are the reference's slices in another order (heads, tokens or channels reordered).</summary>
    SlicesPermuted,
    /// <summary>Same multiset of values, different positions.</summary>
    ValuesPermuted,
    /// <summary>Nearly all elements within tolerance, a few are not.</summary>
    Outliers,
}

/// <summary>A diagnosis of a failing comparison: the pattern, a one-line explanation, and the numbers behind it.</summary>
/// <param name="Kind">The detected pattern.</param>
/// <param name="Text">One line for a human: what was found, where, and the likely cause.</param>
/// <param name="Value">Scale k, offset c, or shift s, depending on <paramref name="Kind"/>.</param>
/// <param name="Axis">The axis involved (channel offset, shift, zero slices, permuted slices).</param>
/// <param name="Axes">Axis permutation such that candidate ≈ reference.permute(Axes) (Transposed/PermutedAxes).</param>
/// <param name="Count">Number of elements/slices involved (outliers, NaNs, zero slices).</param>
/// <param name="Index">First element involved, as a multi-index into the reference's shape.</param>
public sealed record FailureHint(
    HintKind Kind,
    string Text,
    double? Value = null,
    int? Axis = null,
    int[]? Axes = null,
    long? Count = null,
    int[]? Index = null)
{
    /// <summary>No hint (passing comparison).</summary>
    public static FailureHint NoneHint { get; } = new(HintKind.None, "");
}

/// <summary>
/// The result of comparing one candidate tensor with its reference. Difference statistics are taken over positions where both
/// values are finite; non-finite values that do not match the other side are counted in <see cref="NonFiniteMismatches"/> (and
/// fail the comparison). When the shapes differ but the element counts agree, statistics are over the flattened (row-major)
/// elements and indices are in the reference's shape; when counts differ, the statistics are NaN and indices null.
/// </summary>
public sealed record TensorComparison
{
    public required string Name { get; init; }
    public required int[] CandidateShape { get; init; }
    public required int[] ReferenceShape { get; init; }
    public required DType CandidateDType { get; init; }
    public required DType ReferenceDType { get; init; }
    /// <summary>The tolerance applied (<see cref="Tolerance.Exact"/> for integer/bool pairs, whatever was asked).</summary>
    public required Tolerance Tolerance { get; init; }

    public bool ShapeMatch => CandidateShape.AsSpan().SequenceEqual(ReferenceShape);
    /// <summary>A dtype mismatch is reported but is not a failure by itself: values are compared in float64.</summary>
    public bool DTypeMatch => CandidateDType == ReferenceDType;
    /// <summary>True when both sides are integer or bool and were compared exactly, as integers.</summary>
    public bool IsInteger { get; init; }

    /// <summary>Elements compared (0 when the element counts differ).</summary>
    public long ElementCount { get; init; }
    /// <summary>max |a − b| over finite pairs (0 for no finite pair; NaN when not comparable).</summary>
    public double MaxAbsDiff { get; init; }
    /// <summary>Where <see cref="MaxAbsDiff"/> occurs (first occurrence), in the reference's shape; null when there is none.</summary>
    public int[]? MaxAbsIndex { get; init; }
    public double MeanAbsDiff { get; init; }
    /// <summary>‖a − b‖₂ / ‖b‖₂; 0 when both are zero, +∞ when only the reference is zero.</summary>
    public double RelL2 { get; init; }
    /// <summary>a·b / (‖a‖‖b‖); 1 when both are zero, 0 when exactly one is.</summary>
    public double Cosine { get; init; }
    /// <summary>‖b‖₂ over finite pairs (what relative quantities are relative to).</summary>
    public double ReferenceNorm { get; init; }

    public long CandidateNaN { get; init; }
    public long CandidateInf { get; init; }
    public long ReferenceNaN { get; init; }
    public long ReferenceInf { get; init; }
    /// <summary>Positions where either side is NaN/±∞ and the other side is not the same.</summary>
    public long NonFiniteMismatches { get; init; }

    /// <summary>Elements failing the tolerance (including non-finite mismatches).</summary>
    public long OutOfTolerance { get; init; }
    /// <summary>First failing element in row-major order, in the reference's shape; null when none.</summary>
    public int[]? FirstMismatchIndex { get; init; }
    public double? FirstMismatchCandidate { get; init; }
    public double? FirstMismatchReference { get; init; }

    public bool Passed { get; init; }

    /// <summary>
    /// The shapes differ only by a leading dim of 1 on one side (e.g. an official batch-first [1, T, C] vs [T, C]); the
    /// values were compared as equal shapes and the report notes it.
    /// </summary>
    public bool BatchDimOnly { get; init; }
    public FailureHint Hint { get; init; } = FailureHint.NoneHint;

    /// <summary>Shape of the candidate, "[2, 3]".</summary>
    public string CandidateShapeText => Tensor.ShapeString(CandidateShape);
    public string ReferenceShapeText => Tensor.ShapeString(ReferenceShape);
}
