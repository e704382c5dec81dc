using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Vectorised float32 sine (Cephes <c>sinf</c>: Cody–Waite reduction by π/4 in three parts, degree-7/8 polynomials;
/// about 1 ulp against the exact sine for |x| ≤ 1e5, larger or non-finite lanes go through <see cref="MathF.Sin"/>),
/// and the Snake activation built on it.
/// </summary>
public static class VectorTrig
{
    private const float FourOverPi = 1.27323954473516f, ReduceLimit = 1e5f;
    private const float Dp1 = 0.78515625f, Dp2 = 2.4187564849853515625e-4f, Dp3 = 3.77489497744594108e-8f;
    private const float S1 = -1.6666654611e-1f, S2 = 8.3321608736e-3f, S3 = -1.9515295891e-4f;
    private const float C1 = 4.166664568298827e-2f, C2 = -1.388731625493765e-3f, C3 = 2.443315711809948e-5f;

    /// <summary>Lane-wise sin(x); exact-valued lanes (|x| ≤ 1e5) use the polynomial, the rest <see cref="MathF.Sin"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Sin(Vector256<float> x)
    {
        var ax = Vector256.Abs(x);
        if (!Vector256.LessThanOrEqualAll(ax, Vector256.Create(ReduceLimit))) return SinScalar(x); // also catches NaN
        var sign = x & Vector256.Create(-0f);
        var j = Vector256.ConvertToInt32(ax * Vector256.Create(FourOverPi)); // truncation: ax ≥ 0
        j = (j + Vector256<int>.One) & Vector256.Create(~1);
        var y = Vector256.ConvertToSingle(j);
        // octant 4..7: negate; octant 2..3 (mod 4): the cosine polynomial
        var flip = (j & Vector256.Create(4)) << 29;
        var useCos = Vector256.Equals(j & Vector256.Create(2), Vector256.Create(2)).AsSingle();
        var r = Vector256.FusedMultiplyAdd(y, Vector256.Create(-Dp1), ax);
        r = Vector256.FusedMultiplyAdd(y, Vector256.Create(-Dp2), r);
        r = Vector256.FusedMultiplyAdd(y, Vector256.Create(-Dp3), r);
        var z = r * r;
        var cp = Vector256.FusedMultiplyAdd(Vector256.Create(C3), z, Vector256.Create(C2));
        cp = Vector256.FusedMultiplyAdd(cp, z, Vector256.Create(C1));
        cp = cp * z * z - Vector256.Create(0.5f) * z + Vector256<float>.One;
        var sp = Vector256.FusedMultiplyAdd(Vector256.Create(S3), z, Vector256.Create(S2));
        sp = Vector256.FusedMultiplyAdd(sp, z, Vector256.Create(S1));
        sp = Vector256.FusedMultiplyAdd(sp * z, r, r);
        var res = Vector256.ConditionalSelect(useCos, cp, sp);
        return res ^ sign ^ flip.AsSingle();
    }

    private static Vector256<float> SinScalar(Vector256<float> x)
    {
        Span<float> v = stackalloc float[8];
        x.CopyTo(v);
        for (int i = 0; i < 8; i++) v[i] = MathF.Sin(v[i]);
        return Vector256.Create<float>(v);
    }

    /// <summary>
    /// Snake, y = x + sin²(αx)·(1/(α + 1e−9)), in the official module's float order (αx, sin, square, times the
    /// reciprocal, plus x; no fused multiply-add there). <paramref name="y"/> may be <paramref name="x"/>.
    /// </summary>
    public static void Snake(ReadOnlySpan<float> x, float alpha, Span<float> y)
    {
        if (y.Length < x.Length) throw new ArgumentException("snake: output shorter than input");
        float inv = 1f / (alpha + 1e-9f);
        int i = 0;
        if (Vector256.IsHardwareAccelerated && System.Runtime.Intrinsics.X86.Fma.IsSupported)
        {
            var va = Vector256.Create(alpha);
            var vi = Vector256.Create(inv);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.Create(x.Slice(i, 8));
                var s = Sin(v * va);
                (v + vi * (s * s)).CopyTo(y.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++)
        {
            float v = x[i], s = MathF.Sin(v * alpha);
            y[i] = v + inv * (s * s);
        }
    }
}
