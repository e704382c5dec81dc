using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>A theory that runs only where the quantized kernels take their AVX-512 path.</summary>
public sealed class Avx512QuantTheoryAttribute : TheoryAttribute
{
    public Avx512QuantTheoryAttribute()
    {
        if (QuantGemm.BestPath != QuantPath.Avx512) Skip = "this machine (or DOTNET_EnableAVX512=0) has no AVX-512 quantized path";
    }
}

/// <summary>
/// The AVX-512 decode GEMV kernels of <see cref="QuantGemm"/> (int4 table lookup, int8 mask/shuffle widening; one x row,
/// the two-stream walk, the batched four-row kernels, k chunks) against a scalar model of their exact operation order:
/// 16 lanes, the same chains of f32 FMAs per lane, the per-group table scale·q + bias (int4) or scale·Σ (int8), the
/// pairwise lane sum of Vector512.Sum and the bias terms as the kernel adds them. Equal bits, not a tolerance: a change
/// that only removes instructions (a shuffle for a shift and a mask, a wider scale conversion) must leave every output
/// as it was, so this pins the kernels' arithmetic while they are tuned (the tolerance tests in
/// <see cref="QuantGemmTests"/> compare all paths against a float64 oracle).
/// </summary>
public sealed class QuantGemmAvx512OrderTests
{
    public static TheoryData<int, int, bool> Cases()
    {
        var data = new TheoryData<int, int, bool>();
        foreach (int bits in new[] { 4, 8 })
            foreach (int gs in QuantizedWeight.SupportedGroupSizes)
                foreach (bool bf16 in new[] { true, false })
                    data.Add(bits, gs, bf16);
        return data;
    }

    [Avx512QuantTheory]
    [MemberData(nameof(Cases))]
    public void KernelsGiveTheBitsOfTheirScalarModel(int bits, int gs, bool bf16Scales)
    {
        var rng = new Random(bits * 100 + gs + (bf16Scales ? 1 : 0));
        // odd row counts (the two-stream walk's odd last row), k short, k just past the 8192-element chunk of one x row
        // (k-chunked row tiles; 8832 is a multiple of every group size), and k past the batched chunks only
        foreach (var (n, k) in new[] { (37, 384), (9, 8832), (23, 2560) })
        {
            var w = QuantGemmTests.RandomMatrix(rng, n, k, bf16: true);
            var q = AffineQuantizer.Quantize(bf16Scales ? w : w.To(DType.F32), bits, gs);
            Assert.Equal(bf16Scales ? DType.BF16 : DType.F32, q.Scales.DType);
            var bias = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
            foreach (int m in new[] { 1, 2, 3, 4 })
            {
                var x = QuantGemmTests.RandomMatrix(rng, m, k, bf16: false);
                QuantGemm.ForcePath = QuantPath.Avx512;
                float[] y;
                try { y = Ops.QuantizedLinear(x, q, Tensor.FromArray(bias, n)).ToFloatArray(); }
                finally { QuantGemm.ForcePath = null; }
                var expected = Model(q, x.ToFloatArray(), m, bias);
                for (int i = 0; i < y.Length; i++)
                    Assert.True(BitConverter.SingleToInt32Bits(y[i]) == BitConverter.SingleToInt32Bits(expected[i]),
                        $"bits {bits} group {gs} [{n}x{k}] m {m} at [{i / n}, {i % n}]: kernel {y[i]:R} vs model {expected[i]:R}");
            }
        }
    }

    /// <summary>y[r, j] as the AVX-512 kernels compute it.</summary>
    private static float[] Model(QuantizedWeight q, float[] x, int m, float[] bias)
    {
        int n = q.OutFeatures, k = q.InFeatures, gs = q.GroupSize, groups = k / gs, bits = q.Bits;
        var packed = q.Weight.AsSpan<uint>().ToArray();
        var scales = q.Scales.ToFloatArray();
        var biases = q.Biases.ToFloatArray();
        int words = packed.Length / n;
        // one x row with group size 64 walks whole rows (two streams); otherwise rows longer than a chunk walk k in chunks
        int chunkGroups = m == 1 && gs == 64 || k <= QuantGemm.ChunkElementsFor(m, gs) ? groups : QuantGemm.ChunkElementsFor(m, gs) / gs;
        var y = new float[m * n];
        for (int j = 0; j < n; j++)
        {
            var row = new ReadOnlySpan<uint>(packed, j * words, words);
            var codes = new float[k];
            for (int i = 0; i < k; i++) codes[i] = AffineQuantizer.Code(row, bits, (1u << bits) - 1, i);
            var s = new ReadOnlySpan<float>(scales, j * groups, groups);
            var b = new ReadOnlySpan<float>(biases, j * groups, groups);
            for (int r = 0; r < m; r++)
            {
                var xr = new ReadOnlySpan<float>(x, r * k, k);
                float v = 0f;
                for (int g0 = 0; g0 < groups; g0 += chunkGroups)
                {
                    int g1 = Math.Min(groups, g0 + chunkGroups);
                    v += bits == 4 ? Int4Chunk(m > 1, gs, codes, xr, s, b, g0, g1) : Int8Chunk(m > 1, gs, codes, xr, s, g0, g1);
                }
                if (bits == 8)
                {
                    // Σ_g bias_g · Σ_{i∈g} x_i, as the kernel's caller adds it
                    var sums = new float[groups];
                    for (int g = 0; g < groups; g++) sums[g] = TensorPrimitives.Sum(xr.Slice(g * gs, gs));
                    v += TensorPrimitives.Dot(b, sums);
                }
                y[r * n + j] = v + bias[j];
            }
        }
        return y;
    }

    /// <summary>int4: 16 lanes × 4 chains of FMAs with the group's table fma(scale, q, bias). Group sizes 64/128: per
    /// 64 elements, chain t of lane l takes element 4l + t; group size 32: per 32, lane l takes 2l (chain 0) and 2l + 1
    /// (chain 1).</summary>
    private static float Int4Chunk(bool batched, int gs, float[] codes, ReadOnlySpan<float> x, ReadOnlySpan<float> s, ReadOnlySpan<float> b, int g0, int g1)
    {
        var a = new float[4, 16];
        var lut = new float[16];
        for (int g = g0; g < g1; g++)
        {
            for (int c = 0; c < 16; c++) lut[c] = MathF.FusedMultiplyAdd(s[g], c, b[g]);
            if (gs % 64 == 0)
                for (int e0 = g * gs; e0 < (g + 1) * gs; e0 += 64)
                    for (int t = 0; t < 4; t++)
                        for (int l = 0; l < 16; l++)
                            a[t, l] = MathF.FusedMultiplyAdd(x[e0 + 4 * l + t], lut[(int)codes[e0 + 4 * l + t]], a[t, l]);
            else
                for (int l = 0; l < 16; l++)
                {
                    int e = g * 32 + 2 * l;
                    a[0, l] = MathF.FusedMultiplyAdd(x[e], lut[(int)codes[e]], a[0, l]);
                    a[1, l] = MathF.FusedMultiplyAdd(x[e + 1], lut[(int)codes[e + 1]], a[1, l]);
                }
        }
        var lanes = new float[16];
        for (int l = 0; l < 16; l++)
            lanes[l] = batched && gs == 32 ? a[0, l] + a[1, l] : (a[0, l] + a[1, l]) + (a[2, l] + a[3, l]);
        return Sum16(lanes);
    }

    /// <summary>int8: per group, lanes of FMA chains over the codes (group sizes 64/128: chain t of lane l takes element
    /// 4l + t of every 64; 32: elements l and 16 + l), summed per lane and scaled into the accumulator. One x row: four
    /// chains, ((c0 + c1) + (c2 + c3)); batched rows: two chains (t = 0, 2 and t = 1, 3), c0 + c1.</summary>
    private static float Int8Chunk(bool batched, int gs, float[] codes, ReadOnlySpan<float> x, ReadOnlySpan<float> s, int g0, int g1)
    {
        var acc = new float[16];
        for (int g = g0; g < g1; g++)
            for (int l = 0; l < 16; l++)
            {
                float c0 = 0f, c1 = 0f, c2 = 0f, c3 = 0f;
                if (gs % 64 == 0)
                    for (int e0 = g * gs; e0 < (g + 1) * gs; e0 += 64)
                    {
                        int e = e0 + 4 * l;
                        if (batched)
                        {
                            c0 = MathF.FusedMultiplyAdd(x[e], codes[e], c0);
                            c1 = MathF.FusedMultiplyAdd(x[e + 1], codes[e + 1], c1);
                            c0 = MathF.FusedMultiplyAdd(x[e + 2], codes[e + 2], c0);
                            c1 = MathF.FusedMultiplyAdd(x[e + 3], codes[e + 3], c1);
                        }
                        else
                        {
                            c0 = MathF.FusedMultiplyAdd(x[e], codes[e], c0);
                            c1 = MathF.FusedMultiplyAdd(x[e + 1], codes[e + 1], c1);
                            c2 = MathF.FusedMultiplyAdd(x[e + 2], codes[e + 2], c2);
                            c3 = MathF.FusedMultiplyAdd(x[e + 3], codes[e + 3], c3);
                        }
                    }
                else
                {
                    int e = g * 32 + l;
                    c0 = MathF.FusedMultiplyAdd(x[e], codes[e], c0);
                    c1 = MathF.FusedMultiplyAdd(x[e + 16], codes[e + 16], c1);
                }
                float sum = batched ? c0 + c1 : (c0 + c1) + (c2 + c3);
                acc[l] = MathF.FusedMultiplyAdd(s[g], sum, acc[l]);
            }
        return Sum16(acc);
    }

    /// <summary>Vector512.Sum's order on x64: each 128-bit quarter pairwise, then (q0 + q1) + (q2 + q3).</summary>
    private static float Sum16(float[] v)
    {
        float Quarter(int o) => (v[o] + v[o + 1]) + (v[o + 2] + v[o + 3]);
        return (Quarter(0) + Quarter(4)) + (Quarter(8) + Quarter(12));
    }
}
