using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// SIMD row kernels for fused inference paths that own their buffers (no tensor per op): LayerNorm with optional affine
/// and adaLN modulation in one pass, the gated residual add, Mish, and a range-partitioned parallel loop. Each
/// element-wise step rounds to float32 separately in the order the unfused ops use (no fused multiply-add), so a
/// fused pass equals the op-by-op composition up to the moments' summation order.
/// </summary>
public static class RowKernels
{
    /// <summary>Runs <paramref name="body"/>(start, end) over <paramref name="threads"/> contiguous ranges of [0, count) in parallel (inline for one).</summary>
    public static void For(int count, int threads, Action<int, int> body)
    {
        if (count <= 0) return;
        threads = Math.Clamp(threads, 1, count);
        if (threads == 1) { body(0, count); return; }
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            var (s, e) = Gemm.Part(count, threads, t, 1);
            if (s < e) body(s, e);
        });
    }

    /// <summary>Mean and 1/√(var + eps) of a row, accumulated in float64 (biased variance, two passes) as <c>CpuBackend.LayerNorm</c> does.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: tier-0 Vector256 code is many times slower
    public static (float Mean, float Rstd) Moments(ReadOnlySpan<float> x, float eps)
    {
        int d = x.Length, i = 0;
        ref float r = ref MemoryMarshal.GetReference(x);
        var acc = Vector256<double>.Zero;
        for (; i <= d - 8; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
            acc += lo + hi;
        }
        double sum = Vector256.Sum(acc);
        for (; i < d; i++) sum += x[i];
        double mean = sum / d;
        var m = Vector256.Create(mean);
        acc = Vector256<double>.Zero;
        for (i = 0; i <= d - 8; i += 8)
        {
            var (lo, hi) = Vector256.Widen(Vector256.LoadUnsafe(ref r, (nuint)i));
            lo -= m; hi -= m;
            acc += lo * lo + hi * hi;
        }
        double var = Vector256.Sum(acc);
        for (; i < d; i++) { double c = x[i] - mean; var += c * c; }
        var /= d;
        return ((float)mean, (float)(1.0 / Math.Sqrt(var + eps)));
    }

    /// <summary>
    /// One LayerNorm row: y = ((x − mean)·rstd)[·weight][+bias][·onePlusScale][+shift]; an empty span skips its step.
    /// The last two are the DiT's <c>modulate</c> (x·(1 + scale) + shift). x and y may be the same span.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: tier-0 Vector256 code is many times slower
    public static void LayerNorm(ReadOnlySpan<float> x, Span<float> y, float eps, ReadOnlySpan<float> weight, ReadOnlySpan<float> bias,
        ReadOnlySpan<float> onePlusScale, ReadOnlySpan<float> shift)
    {
        int d = x.Length;
        if (y.Length < d || (!weight.IsEmpty && weight.Length < d) || (!bias.IsEmpty && bias.Length < d)
            || (!onePlusScale.IsEmpty && onePlusScale.Length < d) || (!shift.IsEmpty && shift.Length < d))
            throw new ArgumentException("layer_norm row: spans shorter than the row");
        var (mean, rstd) = Moments(x, eps);
        bool hw = !weight.IsEmpty, hb = !bias.IsEmpty, hs = !onePlusScale.IsEmpty, hh = !shift.IsEmpty;
        ref float xr = ref MemoryMarshal.GetReference(x);
        ref float yr = ref MemoryMarshal.GetReference(y);
        ref float wr = ref MemoryMarshal.GetReference(weight);
        ref float br = ref MemoryMarshal.GetReference(bias);
        ref float sr = ref MemoryMarshal.GetReference(onePlusScale);
        ref float hr = ref MemoryMarshal.GetReference(shift);
        var vm = Vector256.Create(mean);
        var vr = Vector256.Create(rstd);
        int i = 0;
        for (; i <= d - 8; i += 8)
        {
            nuint o = (nuint)i;
            var v = (Vector256.LoadUnsafe(ref xr, o) - vm) * vr;
            if (hw) v *= Vector256.LoadUnsafe(ref wr, o);
            if (hb) v += Vector256.LoadUnsafe(ref br, o);
            if (hs) v *= Vector256.LoadUnsafe(ref sr, o);
            if (hh) v += Vector256.LoadUnsafe(ref hr, o);
            v.StoreUnsafe(ref yr, o);
        }
        for (; i < d; i++)
        {
            float v = (x[i] - mean) * rstd;
            if (hw) v *= weight[i];
            if (hb) v += bias[i];
            if (hs) v *= onePlusScale[i];
            if (hh) v += shift[i];
            y[i] = v;
        }
    }

    /// <summary>The gated residual h ← h + (y·gate), the product rounded before the sum (two separate ops upstream).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot from the first call: tier-0 Vector256 code is many times slower
    public static void GatedAdd(Span<float> h, ReadOnlySpan<float> y, ReadOnlySpan<float> gate)
    {
        int d = h.Length;
        if (y.Length < d || gate.Length < d) throw new ArgumentException("gated add: spans shorter than the row");
        ref float hr = ref MemoryMarshal.GetReference(h);
        ref float yr = ref MemoryMarshal.GetReference(y);
        ref float gr = ref MemoryMarshal.GetReference(gate);
        int i = 0;
        for (; i <= d - 8; i += 8)
        {
            nuint o = (nuint)i;
            var p = Vector256.LoadUnsafe(ref yr, o) * Vector256.LoadUnsafe(ref gr, o);
            (Vector256.LoadUnsafe(ref hr, o) + p).StoreUnsafe(ref hr, o);
        }
        for (; i < d; i++) { float p = y[i] * gate[i]; h[i] += p; }
    }

    private const int MishChunk = 512;

    /// <summary>
    /// Mish x·tanh(softplus(x)) vectorised through the identity tanh(log(1+u)) = n/(n+2), n = u·(u+2), u = eˣ: only
    /// eˣ is transcendental, so there is no tanh/log cancellation for small softplus (TensorPrimitives.Tanh is off by
    /// ~6e−8 absolute near 0); above 20 the ratio is 1 in float32 (and n would overflow). x and y may be the same span.
    /// </summary>
    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Mish(ReadOnlySpan<float> x, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("mish: output shorter than input");
        Span<float> u = stackalloc float[MishChunk];
        var one = Vector256.Create(1f);
        var two = Vector256.Create(2f);
        var threshold = Vector256.Create(20f);
        for (int start = 0; start < x.Length; start += MishChunk)
        {
            int len = Math.Min(MishChunk, x.Length - start);
            var xc = x.Slice(start, len);
            var yc = y.Slice(start, len);
            var uc = u[..len];
            TensorPrimitives.Exp(xc, uc);
            int i = 0;
            for (; i <= len - 8; i += 8)
            {
                var uv = Vector256.Create(uc.Slice(i, 8));
                var xv = Vector256.Create(xc.Slice(i, 8));
                var n = uv * (uv + two);
                var ratio = Vector256.ConditionalSelect(Vector256.GreaterThan(xv, threshold), one, n / (n + two));
                (xv * ratio).CopyTo(yc.Slice(i, 8));
            }
            for (; i < len; i++)
            {
                float n = uc[i] * (uc[i] + 2f);
                yc[i] = xc[i] * (xc[i] > 20f ? 1f : n / (n + 2f));
            }
        }
    }
}
