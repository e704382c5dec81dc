using System.Globalization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>
/// Diagnoses a failing same-shape comparison. Each detector states a hypothesis "candidate ≈ T(reference)" and accepts it
/// when the residual ‖a − T(b)‖ is small relative to ‖b‖ (≤ <see cref="FitRel"/>) AND explains most of the original error
/// (≤ <see cref="Improvement"/> × the plain rel-L2), so plain noise never matches a pattern: fitting one extra parameter
/// (a scale, an offset, a per-channel vector) to noise removes only a small fraction of it.
/// Scalar hypotheses come free from the sums of the main pass; the rest run one O(n) pass per axis, and the costly ones
/// (axis permutations, shifts) first test a few thousand sampled positions before confirming over all elements.
/// </summary>
internal sealed class HintDetector
{
    /// <summary>Largest residual rel-L2 for which a pattern counts as the explanation.</summary>
    internal const double FitRel = 0.05;
    /// <summary>A pattern must shrink the error to at most this fraction of the plain rel-L2.</summary>
    internal const double Improvement = 0.2;
    /// <summary>"Values permuted" must be nearly exact: sorting equalises any two similar distributions, noise included.</summary>
    internal const double SortedImprovement = 1e-3;
    /// <summary>At most this fraction of elements out of tolerance reads as "a few outliers".</summary>
    internal const double OutlierFraction = 0.01;
    /// <summary>Positions tested before a costly hypothesis is confirmed over all elements.</summary>
    internal const int SampleCount = 4096;
    /// <summary>Longest axis whose slices are matched pairwise (O(L²) on signatures).</summary>
    internal const int MaxSlicesMatched = 4096;

    private double[] _a, _b;
    private readonly int[] _shape;
    private readonly DiffStats _s;
    private readonly Tolerance _tol;
    private readonly bool _integer;
    private readonly double _origRel;
    private long[]? _samples;
    private AxisSums?[]? _axes;

    private HintDetector(double[] a, double[] b, int[] shape, DiffStats s, Tolerance tol, bool integer)
    {
        _a = a;
        _b = b;
        _shape = shape;
        _s = s;
        _tol = tol;
        _integer = integer;
        _origRel = s.RelL2;
    }

    public static FailureHint Diagnose(double[] a, double[] b, int[] shape, DiffStats s, Tolerance tol, bool integer) =>
        new HintDetector(a, b, shape, s, tol, integer).Run();

    private long N => _a.LongLength;

    private FailureHint Run()
    {
        if (_s.NonFiniteMismatches > 0) return NonFinite();
        if (_s.Finite < _s.N) NeutraliseMatchedNonFinite();

        if (_s.SumB2 == 0)
            return new FailureHint(HintKind.None,
                $"the reference is all zeros but the candidate is not (‖a‖ = {G(Math.Sqrt(_s.SumA2))}, max |a| at {Idx(_s.MaxIndex)})");
        if (_s.SumA2 == 0)
            return new FailureHint(HintKind.AllZeros,
                $"candidate is all zeros (reference ‖b‖ = {G(Math.Sqrt(_s.SumB2))}): weight not loaded / output never written");

        return ZeroSlices()
            ?? SignFlip()
            ?? Scaled()
            ?? ConstantOffset()
            ?? ChannelOffset()
            ?? ChannelScaled()
            ?? Rounding()
            ?? Outliers()
            ?? AxisPermutation()
            ?? Shifted()
            ?? SlicesPermuted()
            ?? ValuesPermuted()
            ?? Summary();
    }

    // ------------------------------------------------------------------ criteria

    private bool Fits(double residualSq, double referenceSq)
    {
        if (referenceSq <= 0) return false;
        double rel = Math.Sqrt(Math.Max(residualSq, 0) / referenceSq);
        return rel <= FitRel && rel <= Improvement * _origRel;
    }

    private bool Fits(double residualSq) => Fits(residualSq, _s.SumB2);

    /// <summary>
    /// The residual formulas from sums (‖a‖² − (a·b)²/‖b‖² and the like) cancel catastrophically when ‖b‖ is dominated by
    /// huge values (a −1e10 attention mask): a formula fit is only believed after this direct pass agrees.
    /// Hypothesis: a ≈ g·b + c, with g and c per index along <paramref name="axis"/> (arrays) or scalars (axis −1).
    /// </summary>
    private bool ConfirmAffine(int axis, double gain, double offset, double[]? gains = null, double[]? offsets = null)
    {
        double r = 0;
        if (axis < 0)
        {
            for (long i = 0; i < N; i++)
            {
                double d = (_a[i] - gain * _b[i]) - offset;
                r += d * d;
            }
            return Fits(r);
        }
        int len = _shape[axis];
        long inner = 1;
        for (int d = axis + 1; d < _shape.Length; d++) inner *= _shape[d];
        long outer = N / ((long)len * inner);
        for (long o = 0; o < outer; o++)
        {
            for (int j = 0; j < len; j++)
            {
                double g = gains?[j] ?? gain, c = offsets?[j] ?? offset;
                long baseIndex = (o * len + j) * inner;
                for (long i = 0; i < inner; i++)
                {
                    double d = (_a[baseIndex + i] - g * _b[baseIndex + i]) - c;
                    r += d * d;
                }
            }
        }
        return Fits(r);
    }

    /// <summary>Loose pre-filter on a sample: a real fit passes it with room to spare, most non-fits fail it.</summary>
    private bool SampleMayFit(Func<long, long> map)
    {
        var samples = Samples();
        if (samples.Length == N) return true; // small tensor: the full check is as cheap as the sample
        double r = 0, nb = 0;
        foreach (long i in samples)
        {
            long j = map(i);
            if (j < 0) continue;
            double d = _a[i] - _b[j];
            r += d * d;
            nb += _b[j] * _b[j];
        }
        if (nb == 0) return r == 0;
        double rel = Math.Sqrt(r / nb);
        return rel <= 2.5 * FitRel && rel <= 0.5 * _origRel;
    }

    private long[] Samples()
    {
        if (_samples is not null) return _samples;
        long n = N;
        if (n <= 4L * SampleCount)
        {
            _samples = new long[n];
            for (long i = 0; i < n; i++) _samples[i] = i;
            return _samples;
        }
        // Stratified with a hashed jitter: one position per stratum, so no stride in the data can alias the pattern.
        _samples = new long[SampleCount];
        double stratum = (double)n / SampleCount;
        for (int k = 0; k < SampleCount; k++)
        {
            long start = (long)(k * stratum);
            long width = Math.Max(1, (long)((k + 1) * stratum) - start);
            _samples[k] = Math.Min(n - 1, start + (long)(Mix((ulong)k) % (ulong)width));
        }
        return _samples;
    }

    // ------------------------------------------------------------------ detectors

    private FailureHint NonFinite()
    {
        long inCandidate = 0, inReference = 0, different = 0;
        for (long i = 0; i < N; i++)
        {
            double x = _a[i], y = _b[i];
            bool fx = double.IsFinite(x), fy = double.IsFinite(y);
            if (fx && fy) continue;
            if (!fx && fy) inCandidate++;
            else if (fx && !fy) inReference++;
            else if (!DiffStats.SameNonFinite(x, y)) different++;
        }
        long first = _s.FirstNonFiniteMismatch;
        string at = $"first at {Idx(first)}: {G(_a[first])} vs {G(_b[first])}";
        string text = inCandidate > 0
            ? $"{inCandidate} NaN/Inf in the candidate where the reference is finite ({at}): overflow, 0/0, log/sqrt of a negative, or a fully masked softmax row"
            : inReference > 0
                ? $"the reference has {inReference} NaN/Inf where the candidate is finite ({at}): the reference overflowed, or the candidate clamps/masks differently"
                : $"non-finite values differ at {different} positions (NaN vs ∞ or +∞ vs −∞; {at})";
        return new FailureHint(HintKind.NaNAppeared, text, Count: _s.NonFiniteMismatches, Index: TensorComparer.Unravel(first, _shape));
    }

    private void NeutraliseMatchedNonFinite()
    {
        // Only matching NaN/∞ pairs remain (mismatches returned above): zero them on both sides so the sums agree with DiffStats.
        var a = (double[])_a.Clone();
        var b = (double[])_b.Clone();
        for (long i = 0; i < a.LongLength; i++)
            if (!double.IsFinite(a[i]) || !double.IsFinite(b[i])) { a[i] = 0; b[i] = 0; }
        _a = a;
        _b = b;
    }

    private FailureHint? ZeroSlices()
    {
        for (int k = 0; k < _shape.Length; k++)
        {
            // A zero slice along k needs N / shape[k] exact zeros in the candidate: skip the axis pass when there are fewer.
            if (_shape[k] < 2 || _s.ZerosA < N / _shape[k]) continue;
            var ax = Axis(k);
            if (ax is null) continue;
            double explained = 0;
            var zero = new List<int>();
            for (int j = 0; j < ax.Length; j++)
            {
                if (ax.SumA2[j] == 0 && ax.SumB2[j] > 0)
                {
                    zero.Add(j);
                    explained += ax.SumB2[j]; // there a − b = −b exactly
                }
            }
            if (zero.Count == 0 || zero.Count == ax.Length) continue;
            if (!Fits(_s.SumD2 - explained)) continue;
            var gains = new double[ax.Length];
            Array.Fill(gains, 1.0);
            foreach (int j in zero) gains[j] = 0;
            if (!ConfirmAffine(k, 1, 0, gains)) continue;
            var first = new int[_shape.Length];
            first[k] = zero[0];
            return new FailureHint(HintKind.ZeroSlices,
                $"{zero.Count} of {ax.Length} slices along axis {k} are all zeros in the candidate only ({Ranges(zero)}): part of the output never written (loop bound, length or mask)",
                Axis: k, Count: zero.Count, Index: first);
        }
        return null;
    }

    private FailureHint? SignFlip()
    {
        double residual = _s.SumA2 + 2 * _s.SumAB + _s.SumB2; // ‖a + b‖²
        if (!Fits(residual) || !ConfirmAffine(-1, -1, 0)) return null;
        return new FailureHint(HintKind.SignFlip, "candidate ≈ −reference: sign flipped (subtraction order, rotate-half sign, negated weight)", Value: -1);
    }

    private FailureHint? Scaled()
    {
        double k = _s.SumAB / _s.SumB2;                        // least-squares k in a ≈ k·b
        double residual = _s.SumA2 - _s.SumAB * k;             // ‖a − k b‖²
        if (!Fits(residual) || Math.Abs(k - 1) < 1e-9 || !ConfirmAffine(-1, k, 0)) return null;
        return new FailureHint(HintKind.Scaled,
            $"candidate ≈ {G(k)} × reference: scale {G(k)} off — check the attention scaling (1/√d), a norm weight, or a gain{ScaleNote(k)}",
            Value: k);
    }

    private FailureHint? ConstantOffset()
    {
        double c = _s.SumD / _s.Finite;
        double residual = _s.SumD2 - c * _s.SumD;            // ‖(a − b) − c‖²
        if (!Fits(residual) || !ConfirmAffine(-1, 1, c)) return null;
        string what = _integer ? "ids/values offset by a constant (vocabulary offset, special-token base)" : "bias missing or doubled, or a mean not subtracted";
        return new FailureHint(HintKind.ConstantOffset, $"candidate ≈ reference {(c >= 0 ? "+" : "−")} {G(Math.Abs(c))} everywhere: {what}", Value: c);
    }

    private FailureHint? ChannelOffset()
    {
        int bestAxis = -1;
        double bestResidual = double.PositiveInfinity;
        for (int k = 0; k < _shape.Length; k++)
        {
            var ax = Axis(k);
            if (ax is null || ax.Rest < 2) continue;
            double explained = 0;
            for (int j = 0; j < ax.Length; j++) explained += ax.SumD[j] * ax.SumD[j] / ax.Rest;
            double residual = _s.SumD2 - explained;
            if (!Fits(residual) || residual >= bestResidual) continue;
            if (!ConfirmAffine(k, 1, 0, offsets: ax.SumD.Select(sd => sd / ax.Rest).ToArray())) continue;
            bestResidual = residual;
            bestAxis = k;
        }
        if (bestAxis < 0) return null;
        var best = Axis(bestAxis)!;
        double rms = 0;
        for (int j = 0; j < best.Length; j++) { double c = best.SumD[j] / best.Rest; rms += c * c; }
        rms = Math.Sqrt(rms / best.Length);
        return new FailureHint(HintKind.ChannelOffset,
            $"candidate − reference depends only on the index along axis {bestAxis} (per-channel offsets, rms {G(rms)}, [0] = {G(best.SumD[0] / best.Rest)}): bias missing or doubled",
            Value: rms, Axis: bestAxis);
    }

    private FailureHint? ChannelScaled()
    {
        int bestAxis = -1;
        double bestResidual = double.PositiveInfinity;
        for (int k = 0; k < _shape.Length; k++)
        {
            var ax = Axis(k);
            if (ax is null || ax.Rest < 2) continue;
            double residual = 0;
            var gains = new double[ax.Length];
            for (int j = 0; j < ax.Length; j++)
            {
                gains[j] = ax.SumB2[j] > 0 ? ax.SumAB[j] / ax.SumB2[j] : 0;
                residual += ax.SumA2[j] - ax.SumAB[j] * gains[j];
            }
            if (!Fits(residual) || residual >= bestResidual || !ConfirmAffine(k, 0, 0, gains)) continue;
            bestResidual = residual;
            bestAxis = k;
        }
        if (bestAxis < 0) return null;
        var best = Axis(bestAxis)!;
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity;
        for (int j = 0; j < best.Length; j++)
        {
            if (best.SumB2[j] == 0) continue;
            double g = best.SumAB[j] / best.SumB2[j];
            lo = Math.Min(lo, g);
            hi = Math.Max(hi, g);
        }
        return new FailureHint(HintKind.ChannelScaled,
            $"candidate / reference depends only on the index along axis {bestAxis} (per-channel gains {G(lo)} … {G(hi)}): a norm weight (γ) or per-channel scale missing or applied twice",
            Axis: bestAxis);
    }

    private FailureHint? AxisPermutation() => PermutationHint(_a, _shape, _b, _shape, Fits, SampleMayFit);

    /// <summary>
    /// Tries every axis permutation p (all of them up to rank 4, single swaps beyond) with reference.permute(p) shaped like the
    /// candidate, skipping those that move only size-1 axes (a mere reshape).
    /// </summary>
    internal static FailureHint? PermutationHint(double[] a, int[] shapeA, double[] b, int[] shapeB,
        Func<double, bool> fits, Func<Func<long, long>, bool> sampleMayFit)
    {
        int rank = shapeA.Length;
        if (rank < 2 || rank != shapeB.Length) return null;
        var stridesB = Tensor.ContiguousStrides(shapeB);
        foreach (var p in Permutations(rank))
        {
            bool shapeOk = true;
            for (int i = 0; i < rank && shapeOk; i++) shapeOk = shapeB[p[i]] == shapeA[i];
            if (!shapeOk || MovesOnlyUnitAxes(p, shapeB)) continue;
            var st = new long[rank];
            for (int i = 0; i < rank; i++) st[i] = stridesB[p[i]];
            if (!sampleMayFit(i => PermutedOffset(i, shapeA, st))) continue;
            if (!fits(PermutedResidual(a, shapeA, b, st))) continue;
            bool reversal = true;
            for (int i = 0; i < rank; i++) reversal &= p[i] == rank - 1 - i;
            string axes = string.Join(", ", p);
            return reversal
                ? new FailureHint(HintKind.Transposed,
                    rank == 2
                        ? "candidate ≈ referenceᵀ: transposed (a Linear weight is stored [out, in]; check x·Wᵀ vs x·W, or a [T, C] / [C, T] layout)"
                        : $"candidate ≈ reference with all axes reversed (permute({axes})): a transposed layout",
                    Axes: p)
                : new FailureHint(HintKind.PermutedAxes,
                    $"candidate ≈ reference.permute({axes}): axes in the wrong order ([B, T, C] vs [B, C, T] layout, or a head split/merge)",
                    Axes: p);
        }
        return null;
    }

    private FailureHint? Shifted()
    {
        for (int k = 0; k < _shape.Length; k++)
        {
            int len = _shape[k];
            if (len < 3) continue;
            long inner = 1;
            for (int d = k + 1; d < _shape.Length; d++) inner *= _shape[d];
            foreach (int s in (ReadOnlySpan<int>)[1, -1])
            {
                long step = s * inner;
                if (!SampleMayFit(i =>
                    {
                        long t = i / inner % len;
                        return t - s >= 0 && t - s < len ? i - step : -1;
                    })) continue;
                var (residual, refSq) = ShiftResidual(k, s, len, inner);
                if (!Fits(residual, refSq)) continue;
                string text = s > 0
                    ? $"candidate[t] ≈ reference[t−1] along axis {k}: the candidate lags one step (off-by-one in time: an extra leading frame/token, padding or cache position)"
                    : $"candidate[t] ≈ reference[t+1] along axis {k}: the candidate runs one step ahead (a frame/token dropped at the start, or a cache position off by one)";
                return new FailureHint(HintKind.Shifted, text, Value: s, Axis: k);
            }
        }
        return null;
    }

    private (double Residual, double ReferenceSq) ShiftResidual(int k, int s, int len, long inner)
    {
        long outer = N / ((long)len * inner);
        double r = 0, nb = 0;
        int tStart = Math.Max(0, s), tEnd = Math.Min(len, len + s);
        for (long o = 0; o < outer; o++)
        {
            for (int t = tStart; t < tEnd; t++)
            {
                long ia = (o * len + t) * inner, ib = (o * len + t - s) * inner;
                for (long i = 0; i < inner; i++)
                {
                    double y = _b[ib + i];
                    double d = _a[ia + i] - y;
                    r += d * d;
                    nb += y * y;
                }
            }
        }
        return (r, nb);
    }

    private FailureHint? SlicesPermuted()
    {
        for (int k = 0; k < _shape.Length; k++)
        {
            var ax = Axis(k);
            if (ax is null || ax.Rest < 2 || ax.Length > MaxSlicesMatched) continue;
            int len = ax.Length;
            // Nearest reference slice by signature (two random ±1 projections and the norm), then a full check.
            var map = new int[len];
            for (int j = 0; j < len; j++)
            {
                double best = double.PositiveInfinity;
                double na = Math.Sqrt(ax.SumA2[j]);
                for (int q = 0; q < len; q++)
                {
                    double d1 = ax.SigA1[j] - ax.SigB1[q], d2 = ax.SigA2[j] - ax.SigB2[q], d3 = na - Math.Sqrt(ax.SumB2[q]);
                    double dist = d1 * d1 + d2 * d2 + d3 * d3;
                    if (dist < best) { best = dist; map[j] = q; }
                }
            }
            int moved = 0;
            for (int j = 0; j < len; j++) if (map[j] != j) moved++;
            if (moved == 0) continue;
            if (!Fits(SliceResidual(ax, map))) continue;
            var movedList = Enumerable.Range(0, len).Where(j => map[j] != j).Take(4).Select(j => $"{j} ← {map[j]}");
            bool bijective = map.Distinct().Count() == len;
            var first = new int[_shape.Length];
            first[k] = Enumerable.Range(0, len).First(j => map[j] != j);
            return new FailureHint(HintKind.SlicesPermuted,
                $"{moved} of {len} slices along axis {k} are reference slices {(bijective ? "in another order" : "repeated or out of place")} ({string.Join(", ", movedList)}{(moved > 4 ? ", …" : "")}): heads, tokens or channels reordered (head split, gather index, concat order)",
                Axis: k, Count: moved, Index: first);
        }
        return null;
    }

    private double SliceResidual(AxisSums ax, int[] map)
    {
        int len = ax.Length;
        long inner = ax.Inner, outer = ax.Outer;
        double r = 0;
        for (long o = 0; o < outer; o++)
        {
            for (int j = 0; j < len; j++)
            {
                long ia = (o * len + j) * inner, ib = (o * len + map[j]) * inner;
                for (long i = 0; i < inner; i++)
                {
                    double d = _a[ia + i] - _b[ib + i];
                    r += d * d;
                }
            }
        }
        return r;
    }

    private FailureHint? ValuesPermuted()
    {
        // ‖sort(a) − sort(b)‖ ≥ |‖a‖ − ‖b‖|: a free necessary condition before paying for two sorts.
        double normA = Math.Sqrt(_s.SumA2), normB = Math.Sqrt(_s.SumB2);
        double allowed = Math.Min(FitRel, SortedImprovement * _origRel) * normB;
        if (Math.Abs(normA - normB) > allowed) return null;
        var sa = (double[])_a.Clone();
        var sb = (double[])_b.Clone();
        Array.Sort(sa);
        Array.Sort(sb);
        double r = 0;
        for (long i = 0; i < sa.LongLength; i++) { double d = sa[i] - sb[i]; r += d * d; }
        if (Math.Sqrt(r) > allowed) return null;
        return new FailureHint(HintKind.ValuesPermuted,
            $"same values as the reference in different positions ({_s.OutOfTolerance} of {N} elements out of place): a wrong gather/index, reshape or concatenation order",
            Count: _s.OutOfTolerance, Index: FirstMismatch());
    }

    /// <summary>
    /// Differences at the level of float rounding: within the default port rule (every |Δ| ≤ 1e-4·rms(b), rel-L2 ≤ 1e-5),
    /// where correct float32 ports land (docs/parity.md) and planted bugs do not. A strict rule can fail them: say so
    /// instead of blaming masks or boundaries.
    /// </summary>
    private FailureHint? Rounding()
    {
        if (_integer || _s.Finite == 0 || _s.SumB2 == 0) return null;
        double rms = Math.Sqrt(_s.SumB2 / _s.Finite);
        if (!(_s.MaxAbs <= 1e-4 * rms) || !(_s.RelL2 <= 1e-5)) return null;
        return new FailureHint(HintKind.Rounding,
            $"rounding-level differences (max |Δ| {G(_s.MaxAbs)} = {G(_s.MaxAbs / rms)}·rms, rel-L2 {G(_s.RelL2)}, {_s.OutOfTolerance} of {N} elements over the bound): " +
            "within what correct float32 ports differ by (summation order), no structural error; the default port rule passes them",
            Value: _s.MaxAbs / rms, Count: _s.OutOfTolerance, Index: FirstMismatch());
    }

    /// <summary>
    /// A few bad elements. Checked after the cheap whole-tensor patterns (which would explain them better) and before the
    /// costly layout ones: a handful of wrong elements cannot be a transposition or a shift of the whole tensor.
    /// </summary>
    private FailureHint? Outliers()
    {
        long n = N, bad = _s.OutOfTolerance;
        if (bad == 0 || bad > Math.Max(1, (long)(OutlierFraction * n))) return null;
        int[]? firstIndex = FirstMismatch();
        string unit = _integer ? "values differ" : "elements off";
        return new FailureHint(HintKind.Outliers,
            $"{bad} of {n} {unit} ({Pct(bad, n)}), {FirstText(firstIndex)}; max |Δ| {G(_s.MaxAbs)} at {Idx(_s.MaxIndex)}: a few bad positions (mask, boundary/padding frames, clamping)",
            Count: bad, Index: firstIndex);
    }

    private string FirstText(int[]? firstIndex) =>
        $"first at {TensorComparer.IndexString(firstIndex)}: {G(_a[_s.FirstMismatch])} vs {G(_b[_s.FirstMismatch])}";

    private FailureHint Summary()
    {
        long n = N, bad = _s.OutOfTolerance;
        if (bad == 0)
            return new FailureHint(HintKind.None,
                $"every element is within tolerance but rel-L2 {G(_origRel)} exceeds {G(_tol.MaxRelL2 ?? 0)}: a small systematic drift (accumulation order, precision)");
        int[]? firstIndex = FirstMismatch();
        string first = FirstText(firstIndex);
        string what = _integer
            ? $"{bad} of {n} values differ ({Pct(bad, n)}), {first}"
            : $"{bad} of {n} elements out of tolerance ({Pct(bad, n)}), rel-L2 {G(_origRel)}, cosine {ParityFormat.Cosine(_s.Cosine)}, {first}; no structural pattern";
        return new FailureHint(HintKind.None, what, Count: bad, Index: firstIndex);
    }

    // ------------------------------------------------------------------ per-axis sums

    /// <summary>Sums per index j along one axis, over all other axes; built lazily, once per axis.</summary>
    private sealed class AxisSums(int length, long outer, long inner)
    {
        public int Length { get; } = length;
        public long Outer { get; } = outer;
        public long Inner { get; } = inner;
        /// <summary>Elements per slice.</summary>
        public long Rest => Outer * Inner;
        public double[] SumA2 { get; } = new double[length];
        public double[] SumB2 { get; } = new double[length];
        public double[] SumAB { get; } = new double[length];
        public double[] SumD { get; } = new double[length];
        public double[] SigA1 { get; } = new double[length];
        public double[] SigA2 { get; } = new double[length];
        public double[] SigB1 { get; } = new double[length];
        public double[] SigB2 { get; } = new double[length];
    }

    private AxisSums? Axis(int k)
    {
        _axes ??= new AxisSums?[_shape.Length];
        if (_axes[k] is { } cached) return cached;
        int len = _shape[k];
        if (len < 2) return null;
        long inner = 1;
        for (int d = k + 1; d < _shape.Length; d++) inner *= _shape[d];
        long outer = N / ((long)len * inner);
        var ax = new AxisSums(len, outer, inner);
        for (long o = 0; o < outer; o++)
        {
            for (int j = 0; j < len; j++)
            {
                long baseIndex = (o * len + j) * inner;
                double sa2 = 0, sb2 = 0, sab = 0, sd = 0, ga1 = 0, ga2 = 0, gb1 = 0, gb2 = 0;
                for (long i = 0; i < inner; i++)
                {
                    double x = _a[baseIndex + i], y = _b[baseIndex + i];
                    sa2 += x * x;
                    sb2 += y * y;
                    sab += x * y;
                    sd += x - y;
                    // Position within the slice decides the ±1 weights, so equal slices get equal signatures.
                    ulong h = (ulong)(o * inner + i) * 0x9E3779B97F4A7C15UL;
                    h ^= h >> 29;
                    double w1 = (h & 0x100) != 0 ? 1 : -1, w2 = (h & 0x200) != 0 ? 1 : -1;
                    ga1 += w1 * x;
                    ga2 += w2 * x;
                    gb1 += w1 * y;
                    gb2 += w2 * y;
                }
                ax.SumA2[j] += sa2;
                ax.SumB2[j] += sb2;
                ax.SumAB[j] += sab;
                ax.SumD[j] += sd;
                ax.SigA1[j] += ga1;
                ax.SigA2[j] += ga2;
                ax.SigB1[j] += gb1;
                ax.SigB2[j] += gb2;
            }
        }
        _axes[k] = ax;
        return ax;
    }

    // ------------------------------------------------------------------ helpers

    internal static IEnumerable<int[]> Permutations(int rank)
    {
        if (rank <= 4)
        {
            var p = Enumerable.Range(0, rank).ToArray();
            foreach (var perm in AllPermutations(p, 0)) yield return perm;
            yield break;
        }
        for (int i = 0; i < rank; i++)
        {
            for (int j = i + 1; j < rank; j++)
            {
                var p = Enumerable.Range(0, rank).ToArray();
                (p[i], p[j]) = (p[j], p[i]);
                yield return p;
            }
        }
    }

    private static IEnumerable<int[]> AllPermutations(int[] p, int start)
    {
        if (start == p.Length)
        {
            yield return (int[])p.Clone();
            yield break;
        }
        for (int i = start; i < p.Length; i++)
        {
            (p[start], p[i]) = (p[i], p[start]);
            foreach (var perm in AllPermutations(p, start + 1)) yield return perm;
            (p[start], p[i]) = (p[i], p[start]);
        }
    }

    /// <summary>True when p keeps the non-unit axes in order: then permute(p) is a reshape, not a reordering of data.</summary>
    internal static bool MovesOnlyUnitAxes(int[] p, int[] shapeB)
    {
        int last = -1;
        foreach (int axis in p)
        {
            if (shapeB[axis] == 1) continue;
            if (axis < last) return false;
            last = axis;
        }
        return true;
    }

    private static long PermutedOffset(long flat, int[] shapeA, long[] st)
    {
        long off = 0;
        for (int d = shapeA.Length - 1; d >= 0; d--)
        {
            off += flat % shapeA[d] * st[d];
            flat /= shapeA[d];
        }
        return off;
    }

    private static double PermutedResidual(double[] a, int[] shapeA, double[] b, long[] st)
    {
        int rank = shapeA.Length;
        var idx = new int[rank];
        long off = 0;
        double r = 0;
        int last = shapeA[rank - 1];
        long lastStride = st[rank - 1];
        long n = a.LongLength;
        for (long i = 0; i < n; i += last)
        {
            long o = off;
            for (int t = 0; t < last; t++, o += lastStride)
            {
                double d = a[i + t] - b[o];
                r += d * d;
            }
            for (int d = rank - 2; d >= 0; d--)
            {
                idx[d]++;
                off += st[d];
                if (idx[d] < shapeA[d]) break;
                off -= st[d] * shapeA[d];
                idx[d] = 0;
            }
        }
        return r;
    }

    private int[]? FirstMismatch() => _s.FirstMismatch >= 0 ? TensorComparer.Unravel(_s.FirstMismatch, _shape) : null;

    private string Idx(long flat) => flat < 0 ? "-" : TensorComparer.IndexString(TensorComparer.Unravel(flat, _shape));

    private static string ScaleNote(double k)
    {
        // Name the usual suspects when k is (close to) 1/√d or √d for a power-of-two head size.
        foreach (int d in (ReadOnlySpan<int>)[16, 32, 64, 80, 96, 128, 256])
        {
            double s = Math.Sqrt(d);
            if (Math.Abs(k * s - 1) < 1e-3) return $" (k ≈ 1/√{d}: scaling applied twice?)";
            if (Math.Abs(k / s - 1) < 1e-3) return $" (k ≈ √{d}: scaling missing?)";
        }
        return "";
    }

    internal static string Ranges(IReadOnlyList<int> sorted)
    {
        var parts = new List<string>();
        int i = 0;
        while (i < sorted.Count && parts.Count < 4)
        {
            int j = i;
            while (j + 1 < sorted.Count && sorted[j + 1] == sorted[j] + 1) j++;
            parts.Add(i == j ? $"{sorted[i]}" : $"{sorted[i]}..{sorted[j]}");
            i = j + 1;
        }
        if (i < sorted.Count) parts.Add("…");
        return string.Join(", ", parts);
    }

    internal static ulong Mix(ulong z)
    {
        // splitmix64 finaliser: cheap, well-mixed bits from a position.
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    internal static string G(double v) => ParityFormat.Number(v);

    internal static string Pct(long part, long whole) =>
        (100.0 * part / whole).ToString(part * 1000 < whole ? "0.###" : "0.#", CultureInfo.InvariantCulture) + "%";
}
