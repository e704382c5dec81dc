using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Vectorised float32 element functions that <see cref="TensorPrimitives"/> lacks: erf (for exact GELU), GELU in both
/// PyTorch flavours, SiLU, Mish. Accuracy is checked against float64 references in the tests.
/// </summary>
public static class VectorMath
{
    // Rational minimax approximation of erf on [-4, 4] (|x| ≥ 4 gives ±1 to float precision): erf(x) = x·P(x²)/Q(x²).
    // Coefficients as used by Eigen/XLA for float erf; max abs error ≈ 1e-7.
    private const float A1 = -1.60960333262415e-02f, A3 = -2.95459980854025e-03f, A5 = -7.34990630326855e-04f,
        A7 = -5.69250639462346e-05f, A9 = -2.10102402082508e-06f, A11 = 2.77068142495902e-08f, A13 = -2.72614225801306e-10f;
    private const float B0 = -1.42647390514189e-02f, B2 = -7.37332916720468e-03f, B4 = -1.68282697438203e-03f,
        B6 = -2.13374055278905e-04f, B8 = -1.45660718464996e-05f;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Erf(float x)
    {
        x = Math.Clamp(x, -4f, 4f);
        float x2 = x * x;
        float p = A13;
        p = p * x2 + A11; p = p * x2 + A9; p = p * x2 + A7; p = p * x2 + A5; p = p * x2 + A3; p = p * x2 + A1;
        float q = B8;
        q = q * x2 + B6; q = q * x2 + B4; q = q * x2 + B2; q = q * x2 + B0;
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Erf(Vector256<float> x)
    {
        x = Vector256.Min(Vector256.Max(x, Vector256.Create(-4f)), Vector256.Create(4f));
        var x2 = x * x;
        var p = Vector256.Create(A13);
        p = Fma(p, x2, A11); p = Fma(p, x2, A9); p = Fma(p, x2, A7); p = Fma(p, x2, A5); p = Fma(p, x2, A3); p = Fma(p, x2, A1);
        var q = Vector256.Create(B8);
        q = Fma(q, x2, B6); q = Fma(q, x2, B4); q = Fma(q, x2, B2); q = Fma(q, x2, B0);
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Fma(Vector256<float> a, Vector256<float> b, float c) =>
        Vector256.FusedMultiplyAdd(a, b, Vector256.Create(c));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Erf(Vector512<float> x)
    {
        x = Vector512.Min(Vector512.Max(x, Vector512.Create(-4f)), Vector512.Create(4f));
        var x2 = x * x;
        var p = Vector512.Create(A13);
        p = Fma(p, x2, A11); p = Fma(p, x2, A9); p = Fma(p, x2, A7); p = Fma(p, x2, A5); p = Fma(p, x2, A3); p = Fma(p, x2, A1);
        var q = Vector512.Create(B8);
        q = Fma(q, x2, B6); q = Fma(q, x2, B4); q = Fma(q, x2, B2); q = Fma(q, x2, B0);
        return x * p / q;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, float c) =>
        Vector512.FusedMultiplyAdd(a, b, Vector512.Create(c));

    /// <summary>GELU, exact erf form (PyTorch <c>nn.GELU()</c>): 0.5·x·(1 + erf(x/√2)). 16 lanes where AVX-512 is on: the
    /// same operations per lane as the 8-lane loop, so the same values.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // the encoder calls it 32 times: tier-0 code would run most of them
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        const float invSqrt2 = 0.70710678118654752f;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var half = Vector512.Create(0.5f);
            var one = Vector512.Create(1f);
            var s = Vector512.Create(invSqrt2);
            for (; i <= x.Length - 16; i += 16)
            {
                var v = Vector512.Create(x.Slice(i, 16));
                (half * v * (one + Erf(v * s))).CopyTo(y.Slice(i, 16));
            }
        }
        if (Vector256.IsHardwareAccelerated)
        {
            var half = Vector256.Create(0.5f);
            var one = Vector256.Create(1f);
            var s = Vector256.Create(invSqrt2);
            for (; i <= x.Length - 8; i += 8)
            {
                var v = Vector256.Create(x.Slice(i, 8));
                (half * v * (one + Erf(v * s))).CopyTo(y.Slice(i, 8));
            }
        }
        for (; i < x.Length; i++) y[i] = 0.5f * x[i] * (1f + Erf(x[i] * invSqrt2));
    }

    /// <summary>GELU, tanh approximation (PyTorch <c>nn.GELU(approximate="tanh")</c>).</summary>
    public static void GeluTanh(ReadOnlySpan<float> x, Span<float> y)
    {
        // PyTorch's vectorised operation order, inner = β·(x + κ·(x·x·x)), then 0.5·x·(1 + tanh(inner)), as whole-span
        // SIMD passes (y is the scratch, so x must not overlap y)
        const float beta = 0.7978845608028654f, kappa = 0.044715f; // β = sqrt(2/π)
        if (x.Overlaps(y)) throw new ArgumentException("gelu_tanh: input and output must not overlap");
        TensorPrimitives.Multiply(x, x, y);
        TensorPrimitives.Multiply(y, x, y);
        TensorPrimitives.Multiply(y, kappa, y);
        TensorPrimitives.Add(y, x, y);
        TensorPrimitives.Multiply(y, beta, y);
        TensorPrimitives.Tanh(y, y);
        TensorPrimitives.Add(y, 1f, y);
        TensorPrimitives.Multiply(y, x, y);
        TensorPrimitives.Multiply(y, 0.5f, y); // 0.5 is a power of two: (0.5·x)·s and 0.5·(x·s) round alike
    }

    /// <summary>SiLU / swish: x·σ(x).</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        TensorPrimitives.Sigmoid(x, y);
        TensorPrimitives.Multiply(x, y, y);
    }

    /// <summary>Mish: x·tanh(softplus(x)), softplus with PyTorch's threshold 20 (linear above).</summary>
    public static void Mish(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            float sp = v > 20f ? v : MathF.Log(1f + MathF.Exp(v));
            y[i] = v * MathF.Tanh(sp);
        }
    }

    /// <summary>Numerically stable softmax of one row, in place allowed.</summary>
    public static void Softmax(ReadOnlySpan<float> x, Span<float> y)
    {
        float max = TensorPrimitives.Max(x);
        if (float.IsNegativeInfinity(max)) { y.Fill(float.NaN); return; } // PyTorch: a fully masked row gives NaN
        TensorPrimitives.Subtract(x, max, y);
        TensorPrimitives.Exp(y, y);
        float sum = TensorPrimitives.Sum(y);
        TensorPrimitives.Divide(y, sum, y);
    }
}
