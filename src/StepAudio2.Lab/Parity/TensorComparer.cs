using System.Runtime.InteropServices;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>
/// Compares a candidate tensor (ours) with a reference tensor (PyTorch's) element by element, in float64, and diagnoses
/// failing differences (<see cref="FailureHint"/>). Integer and bool pairs are compared exactly, as int64.
/// </summary>
public static class TensorComparer
{
    /// <summary>Compares <paramref name="candidate"/> against <paramref name="reference"/> under <paramref name="tolerance"/>.</summary>
    public static TensorComparison Compare(string name, Tensor candidate, Tensor reference, Tolerance tolerance)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(reference);
        ArgumentNullException.ThrowIfNull(tolerance);
        tolerance.Validate();

        bool integer = !candidate.DType.IsFloating() && !reference.DType.IsFloating();
        var tol = integer ? Tolerance.Exact : tolerance.IsAuto ? Tolerance.ForDTypes(candidate.DType, reference.DType) : tolerance;
        if (!integer && tol.Scale > 0 && candidate.ElementCount == reference.ElementCount) tol = tol.Resolve(TensorData.Rms(reference));
        var result = new TensorComparison
        {
            Name = name,
            CandidateShape = (int[])candidate.Shape.Clone(),
            ReferenceShape = (int[])reference.Shape.Clone(),
            CandidateDType = candidate.DType,
            ReferenceDType = reference.DType,
            Tolerance = tol,
            IsInteger = integer,
        };

        if (candidate.ElementCount != reference.ElementCount)
        {
            var hint = ShapeHints.CountMismatch(candidate, reference, tol);
            return result with
            {
                ElementCount = 0,
                MaxAbsDiff = double.NaN,
                MeanAbsDiff = double.NaN,
                RelL2 = double.NaN,
                Cosine = double.NaN,
                Passed = false,
                Hint = hint,
            };
        }

        double[]? a = null, b = null;
        DiffStats stats;
        if (integer)
        {
            // Token ids can exceed 2^53 in principle; the pass/fail decision is made on the exact int64 values.
            long[] ia = TensorData.ToInt64s(candidate), ib = TensorData.ToInt64s(reference);
            long mismatches = 0, first = -1;
            for (int i = 0; i < ia.Length; i++)
            {
                if (ia[i] == ib[i]) continue;
                mismatches++;
                if (first < 0) first = i;
            }
            a = TensorData.ToDoubles(ia);
            b = TensorData.ToDoubles(ib);
            stats = DiffStats.Compute(a, b, tol);
            stats.OutOfTolerance = mismatches;
            stats.FirstMismatch = first;
            if (first >= 0) (stats.FirstMismatchA, stats.FirstMismatchB) = (ia[first], ib[first]);
        }
        else
        {
            // Passing rows are the common case: stream them through small buffers, widen whole tensors only to diagnose.
            stats = TensorData.StreamStats(candidate, reference, tol);
        }

        var shape = reference.Shape;
        // A leading batch dim of 1 on one side only (an official batch-first [1, T, C] against a [T, C]) is a note, not a
        // failure: the values are compared element for element and the row says so.
        bool batchOnly = !result.ShapeMatch && OnlyLeadingOnesDiffer(candidate.Shape, reference.Shape);
        bool shapeMatch = result.ShapeMatch || batchOnly;
        bool valuesPass = stats.OutOfTolerance == 0 && (tol.MaxRelL2 is not double bound || stats.RelL2 <= bound);
        bool passed = shapeMatch && valuesPass;

        result = result with
        {
            ElementCount = stats.N,
            MaxAbsDiff = stats.MaxAbs,
            MaxAbsIndex = stats.MaxIndex >= 0 ? Unravel(stats.MaxIndex, shape) : null,
            MeanAbsDiff = stats.MeanAbs,
            RelL2 = stats.RelL2,
            Cosine = stats.Cosine,
            ReferenceNorm = Math.Sqrt(stats.SumB2),
            CandidateNaN = stats.NaNA,
            CandidateInf = stats.InfA,
            ReferenceNaN = stats.NaNB,
            ReferenceInf = stats.InfB,
            NonFiniteMismatches = stats.NonFiniteMismatches,
            OutOfTolerance = stats.OutOfTolerance,
            FirstMismatchIndex = stats.FirstMismatch >= 0 ? Unravel(stats.FirstMismatch, shape) : null,
            FirstMismatchCandidate = stats.FirstMismatch >= 0 ? stats.FirstMismatchA : null,
            FirstMismatchReference = stats.FirstMismatch >= 0 ? stats.FirstMismatchB : null,
            Passed = passed,
            BatchDimOnly = batchOnly,
        };

        if (passed) return result;
        a ??= TensorData.ToDoubles(candidate);
        b ??= TensorData.ToDoubles(reference);
        var diagnosis = shapeMatch
            ? HintDetector.Diagnose(a, b, shape, stats, tol, integer)
            : ShapeHints.SameCountMismatch(a, candidate.Shape, b, reference.Shape, stats, tol, valuesPass);
        return result with { Hint = diagnosis };
    }

    /// <summary>Shapes equal once leading dims of size 1 are dropped from both (e.g. [1, 58, 32] vs [58, 32]).</summary>
    public static bool OnlyLeadingOnesDiffer(ReadOnlySpan<int> a, ReadOnlySpan<int> b)
    {
        while (a.Length > 0 && a[0] == 1 && a.Length > b.Length) a = a[1..];
        while (b.Length > 0 && b[0] == 1 && b.Length > a.Length) b = b[1..];
        return a.SequenceEqual(b);
    }

    /// <summary>Row-major flat index → multi-index in <paramref name="shape"/>.</summary>
    public static int[] Unravel(long flat, ReadOnlySpan<int> shape)
    {
        var index = new int[shape.Length];
        for (int d = shape.Length - 1; d >= 0; d--)
        {
            int n = shape[d];
            if (n == 0) return index;
            index[d] = (int)(flat % n);
            flat /= n;
        }
        return index;
    }

    /// <summary>"[0, 3, 7]".</summary>
    public static string IndexString(int[]? index) => index is null ? "-" : "[" + string.Join(", ", index) + "]";
}

/// <summary>One pass over both sides: difference statistics over finite pairs, non-finite bookkeeping, tolerance failures.</summary>
internal struct DiffStats
{
    public long N;              // all positions
    public long Finite;         // positions where both sides are finite
    public double MaxAbs;
    public long MaxIndex;
    public double SumAbs, SumD, SumD2, SumA2, SumB2, SumAB;
    public long ZerosA;         // exact zeros in the candidate among finite pairs
    public long NaNA, InfA, NaNB, InfB, NonFiniteMismatches, FirstNonFiniteMismatch;
    public long OutOfTolerance, FirstMismatch;
    public double FirstMismatchA, FirstMismatchB;

    public readonly double MeanAbs => Finite == 0 ? 0 : SumAbs / Finite;

    public readonly double RelL2 => SumB2 > 0 ? Math.Sqrt(SumD2 / SumB2) : SumD2 > 0 ? double.PositiveInfinity : 0;

    public readonly double Cosine
    {
        get
        {
            if (SumA2 == 0 && SumB2 == 0) return 1;
            if (SumA2 == 0 || SumB2 == 0) return 0;
            // Clamp: rounding can put |cos| a hair above 1 for identical inputs.
            return Math.Clamp(SumAB / (Math.Sqrt(SumA2) * Math.Sqrt(SumB2)), -1, 1);
        }
    }

    public static DiffStats Compute(ReadOnlySpan<double> a, ReadOnlySpan<double> b, Tolerance tol)
    {
        var s = Start();
        s.Accumulate(a, b, 0, tol);
        return s;
    }

    public static DiffStats Start() => new() { MaxIndex = -1, FirstMismatch = -1, FirstNonFiniteMismatch = -1 };

    /// <summary>Adds positions [offset, offset + a.Length) so that large tensors can be streamed through small buffers.</summary>
    public void Accumulate(ReadOnlySpan<double> a, ReadOnlySpan<double> b, long offset, Tolerance tol)
    {
        double atol = tol.ElementAtol, rtol = tol.Rtol;
        // Locals, not fields, in the hot loop: the JIT keeps them in registers.
        double maxAbs = MaxAbs, sumAbs = SumAbs, sumD = SumD, sumD2 = SumD2, sumA2 = SumA2, sumB2 = SumB2, sumAB = SumAB;
        long maxIndex = MaxIndex, finite = Finite, outOfTol = OutOfTolerance, firstMismatch = FirstMismatch, zerosA = ZerosA;
        for (int i = 0; i < a.Length; i++)
        {
            double x = a[i], y = b[i];
            if (double.IsFinite(x) && double.IsFinite(y))
            {
                if (x == y && Math.Abs(y) >= Tolerance.SentinelMagnitude)
                {
                    // the same mask fill (−1e10) on both sides: a match, but not a magnitude that would drown rel-L2 and cosine
                    if (maxIndex < 0) { maxAbs = 0; maxIndex = offset + i; }
                    finite++;
                    continue;
                }
                double d = x - y;
                double ad = Math.Abs(d);
                if (ad > maxAbs || maxIndex < 0) { maxAbs = ad; maxIndex = offset + i; }
                sumAbs += ad;
                sumD += d;
                sumD2 += d * d;
                sumA2 += x * x;
                sumB2 += y * y;
                sumAB += x * y;
                finite++;
                if (x == 0) zerosA++;
                if (ad > atol + rtol * Math.Abs(y))
                {
                    outOfTol++;
                    if (firstMismatch < 0) { firstMismatch = offset + i; FirstMismatchA = x; FirstMismatchB = y; }
                }
            }
            else
            {
                Count(x, y, offset + i);
                if (!SameNonFinite(x, y))
                {
                    outOfTol++;
                    if (firstMismatch < 0) { firstMismatch = offset + i; FirstMismatchA = x; FirstMismatchB = y; }
                }
            }
        }
        N += a.Length;
        MaxAbs = maxAbs;
        MaxIndex = maxIndex;
        SumAbs = sumAbs;
        SumD = sumD;
        SumD2 = sumD2;
        SumA2 = sumA2;
        SumB2 = sumB2;
        SumAB = sumAB;
        Finite = finite;
        ZerosA = zerosA;
        OutOfTolerance = outOfTol;
        FirstMismatch = firstMismatch;
    }

    private void Count(double x, double y, long i)
    {
        if (double.IsNaN(x)) NaNA++; else if (double.IsInfinity(x)) InfA++;
        if (double.IsNaN(y)) NaNB++; else if (double.IsInfinity(y)) InfB++;
        if (!SameNonFinite(x, y))
        {
            NonFiniteMismatches++;
            if (FirstNonFiniteMismatch < 0) FirstNonFiniteMismatch = i;
        }
    }

    /// <summary>NaN matches NaN (numpy's equal_nan), ∞ matches the same-signed ∞; anything else against a non-finite fails.</summary>
    public static bool SameNonFinite(double x, double y) => (double.IsNaN(x) && double.IsNaN(y)) || x == y;
}

/// <summary>Widening of any dtype to float64/int64 arrays, with fast paths for contiguous float data.</summary>
internal static class TensorData
{
    public static double[] ToDoubles(Tensor t)
    {
        CheckSize(t);
        if (!t.IsContiguous) return t.ToDoubleArray();
        var result = new double[t.ElementCount];
        switch (t.DType)
        {
            case DType.F32:
            {
                var src = t.AsSpan<float>();
                for (int i = 0; i < src.Length; i++) result[i] = src[i];
                return result;
            }
            case DType.F64:
                t.AsSpan<double>().CopyTo(result);
                return result;
            case DType.BF16:
            {
                var src = t.AsSpan<ushort>();
                for (int i = 0; i < src.Length; i++) result[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
                return result;
            }
            case DType.F16:
            {
                var src = t.AsSpan<Half>();
                for (int i = 0; i < src.Length; i++) result[i] = (double)src[i];
                return result;
            }
            default:
                return t.ToDoubleArray();
        }
    }

    private const int ChunkElements = 16 * 1024;

    /// <summary>Difference statistics of two equally sized tensors, read in chunks (no whole-tensor float64 copies).</summary>
    public static DiffStats StreamStats(Tensor candidate, Tensor reference, Tolerance tol)
    {
        CheckSize(candidate);
        CheckSize(reference);
        if (!CanStream(candidate) || !CanStream(reference))
            return DiffStats.Compute(ToDoubles(candidate), ToDoubles(reference), tol);
        var stats = DiffStats.Start();
        long n = candidate.ElementCount;
        var bufA = new double[(int)Math.Min(n, ChunkElements)];
        var bufB = new double[bufA.Length];
        for (long start = 0; start < n; start += ChunkElements)
        {
            int len = (int)Math.Min(ChunkElements, n - start);
            Widen(candidate, start, bufA.AsSpan(0, len));
            Widen(reference, start, bufB.AsSpan(0, len));
            stats.Accumulate(bufA.AsSpan(0, len), bufB.AsSpan(0, len), start, tol);
        }
        return stats;
    }

    private static bool CanStream(Tensor t) =>
        t.IsContiguous && t.DType is DType.F32 or DType.F64 or DType.BF16 or DType.F16;

    /// <summary>
    /// rms of the reference's finite elements below <see cref="Tolerance.SentinelMagnitude"/> in magnitude (mask fills
    /// such as −1e10 are not magnitudes); 0 for an empty or all-sentinel tensor. Streamed, no whole-tensor copy.
    /// </summary>
    public static double Rms(Tensor reference)
    {
        CheckSize(reference);
        double sum = 0;
        long count = 0;
        void Add(ReadOnlySpan<double> xs)
        {
            foreach (double x in xs)
                if (double.IsFinite(x) && Math.Abs(x) < Tolerance.SentinelMagnitude) { sum += x * x; count++; }
        }
        if (!CanStream(reference)) Add(ToDoubles(reference));
        else
        {
            long n = reference.ElementCount;
            var buf = new double[(int)Math.Min(n, ChunkElements)];
            for (long start = 0; start < n; start += ChunkElements)
            {
                int len = (int)Math.Min(ChunkElements, n - start);
                Widen(reference, start, buf.AsSpan(0, len));
                Add(buf.AsSpan(0, len));
            }
        }
        return count == 0 ? 0 : Math.Sqrt(sum / count);
    }

    /// <summary>Elements [start, start + dst.Length) of a contiguous float tensor, widened to float64.</summary>
    private static void Widen(Tensor t, long start, Span<double> dst)
    {
        int size = t.DType.SizeOf();
        var bytes = t.Storage.Span((t.Offset + start) * size, dst.Length * size);
        switch (t.DType)
        {
            case DType.F32:
            {
                var src = MemoryMarshal.Cast<byte, float>(bytes);
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            }
            case DType.F64:
                MemoryMarshal.Cast<byte, double>(bytes).CopyTo(dst);
                break;
            case DType.BF16:
            {
                var src = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
                break;
            }
            case DType.F16:
            {
                var src = MemoryMarshal.Cast<byte, Half>(bytes);
                for (int i = 0; i < dst.Length; i++) dst[i] = (double)src[i];
                break;
            }
            default:
                throw new NotSupportedException(t.DType.ToString());
        }
    }

    public static long[] ToInt64s(Tensor t)
    {
        CheckSize(t);
        if (t.IsContiguous)
        {
            switch (t.DType)
            {
                case DType.I64: return t.AsSpan<long>().ToArray();
                case DType.I32:
                {
                    var src = t.AsSpan<int>();
                    var result = new long[src.Length];
                    for (int i = 0; i < src.Length; i++) result[i] = src[i];
                    return result;
                }
            }
        }
        return t.ToInt64Array();
    }

    public static double[] ToDoubles(long[] values)
    {
        var result = new double[values.Length];
        for (int i = 0; i < values.Length; i++) result[i] = values[i];
        return result;
    }

    private static void CheckSize(Tensor t)
    {
        // A comparison holds both sides in float64; beyond this the arrays cannot exist at all.
        if (t.ElementCount > Array.MaxLength)
            throw new NotSupportedException($"tensor {Tensor.ShapeString(t.Shape)} has {t.ElementCount} elements; comparison supports at most {Array.MaxLength}");
    }
}
