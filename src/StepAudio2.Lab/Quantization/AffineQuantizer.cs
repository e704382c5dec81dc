using System.Runtime.CompilerServices;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Quantization;

/// <summary>
/// MLX's affine quantizer (<c>mx.quantize</c>, mode "affine"; the CPU kernel of <c>mlx/backend/cpu/quantized.cpp</c>),
/// reproduced bit for bit, and its inverse. Per group of <c>group_size</c> consecutive elements of a row, in float32:
/// lo/hi = min/max; step = max((hi − lo)/(2^b − 1), 1e-7); the larger-magnitude end is the edge (lo when |lo| &gt; |hi|,
/// else hi with the step negated); q0 = rint(edge/step); if q0 ≠ 0 then step = edge/q0 and bias = edge (the edge becomes
/// exactly representable), else bias = 0; q = clamp(rint((w − bias)/step), 0, 2^b − 1). Scale and bias are rounded to
/// the source dtype only when stored.
/// </summary>
public static class AffineQuantizer
{
    /// <summary>Quantizes a 2-D f32/bf16/f16 matrix [out, in] (in a multiple of <paramref name="groupSize"/>).</summary>
    public static QuantizedWeight Quantize(Tensor w, int bits, int groupSize)
    {
        if (w.Rank != 2) throw new ArgumentException($"quantize: weight must be [out, in], got {Tensor.ShapeString(w.Shape)}");
        if (w.DType is not (DType.F32 or DType.BF16 or DType.F16))
            throw new ArgumentException($"quantize: dtype {w.DType.ShortName()} not supported (f32, bf16, f16)");
        if (Array.IndexOf(QuantizedWeight.SupportedBits, bits) < 0) throw new ArgumentException($"quantize: bits {bits} not supported (2, 3, 4, 5, 6 or 8)");
        if (Array.IndexOf(QuantizedWeight.SupportedGroupSizes, groupSize) < 0) throw new ArgumentException($"quantize: group size {groupSize} not supported (32, 64 or 128)");
        int rows = w.Shape[0], cols = w.Shape[1];
        if (cols % groupSize != 0) throw new ArgumentException($"quantize: last dimension {cols} of {Tensor.ShapeString(w.Shape)} is not a multiple of the group size {groupSize}");
        int groups = cols / groupSize, words = cols * bits / 32;
        var packed = new uint[(long)rows * words];
        var scales = new float[(long)rows * groups];
        var biases = new float[(long)rows * groups];
        var src = w.IsContiguous ? w : w.Contiguous();
        Parallel.For(0, rows, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, r =>
        {
            var row = new float[cols];
            ReadRow(src, r, row);
            var codes = new uint[groupSize];
            var outRow = packed.AsSpan((int)((long)r * words), words);
            var bitWriter = new BitWriter();
            for (int g = 0; g < groups; g++)
            {
                QuantizeGroup(row.AsSpan(g * groupSize, groupSize), bits, codes, out float s, out float b);
                scales[(long)r * groups + g] = s;
                biases[(long)r * groups + g] = b;
                for (int i = 0; i < groupSize; i++) bitWriter.Put(codes[i], bits, outRow);
            }
        });
        return QuantizedWeight.Create(Tensor.FromArray(packed, rows, words), Narrow(scales, w.DType, rows, groups), Narrow(biases, w.DType, rows, groups), bits, groupSize);
    }

    /// <summary>One group: codes in <paramref name="codes"/>, float32 scale and bias (before rounding to the weight dtype).</summary>
    public static void QuantizeGroup(ReadOnlySpan<float> w, int bits, Span<uint> codes, out float scale, out float bias)
    {
        float nBins = (1 << bits) - 1;
        const float eps = 1e-7f;
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (float v in w)
        {
            // std::max/std::min semantics ((a < b) ? b : a), so signed zeros land as in MLX
            hi = hi < v ? v : hi;
            lo = v < lo ? v : lo;
        }
        bool lowIsEdge = MathF.Abs(lo) > MathF.Abs(hi);
        float step = (hi - lo) / nBins;
        step = step < eps ? eps : step;
        step = lowIsEdge ? step : -step;
        float edge = lowIsEdge ? lo : hi;
        float q0 = MathF.Round(edge / step, MidpointRounding.ToEven);
        bias = 0f;
        if (q0 != 0f)
        {
            step = edge / q0;
            bias = edge;
        }
        scale = step;
        for (int i = 0; i < w.Length; i++)
        {
            float q = MathF.Round((w[i] - bias) / step, MidpointRounding.ToEven);
            q = q < 0f ? 0f : q;
            q = nBins < q ? nBins : q;
            codes[i] = (uint)q;
        }
    }

    /// <summary>Codes <paramref name="start"/> … start + codes.Length − 1 of one packed row.</summary>
    public static void UnpackRow(ReadOnlySpan<uint> packedRow, int bits, int start, Span<uint> codes)
    {
        uint mask = (1u << bits) - 1;
        for (int i = 0; i < codes.Length; i++) codes[i] = Code(packedRow, bits, mask, start + i);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static uint Code(ReadOnlySpan<uint> packedRow, int bits, uint mask, int index)
    {
        long bit = (long)index * bits;
        int word = (int)(bit >> 5), shift = (int)(bit & 31);
        ulong v = packedRow[word];
        if (shift + bits > 32) v |= (ulong)packedRow[word + 1] << 32;
        return (uint)(v >> shift) & mask;
    }

    /// <summary>The float32 matrix scale·q + bias (a float32 product, then a float32 sum — no FMA) [out, in].</summary>
    public static Tensor Dequantize(QuantizedWeight q)
    {
        var y = Tensor.Zeros(DType.F32, q.OutFeatures, q.InFeatures);
        var dst = y.AsWritableSpan<float>();
        for (int r = 0; r < q.OutFeatures; r++) DequantizeRow(q, r, dst.Slice(r * q.InFeatures, q.InFeatures));
        return y;
    }

    /// <summary>Row <paramref name="row"/> dequantised into <paramref name="dst"/> (length in), scalar reference order.</summary>
    public static void DequantizeRow(QuantizedWeight q, int row, Span<float> dst)
    {
        var packed = q.Weight.AsSpan<uint>().Slice(row * q.WordsPerRow, q.WordsPerRow);
        var s = ReadFloats(q.Scales, row);
        var b = ReadFloats(q.Biases, row);
        uint mask = (1u << q.Bits) - 1;
        for (int i = 0; i < q.InFeatures; i++)
        {
            int g = i / q.GroupSize;
            float scaled = s[g] * Code(packed, q.Bits, mask, i);
            dst[i] = scaled + b[g];
        }
    }

    /// <summary>One row of a 2-D float tensor widened to float32.</summary>
    internal static float[] ReadFloats(Tensor t, int row)
    {
        int cols = t.Shape[1];
        var result = new float[cols];
        ReadRow(t, row, result);
        return result;
    }

    private static void ReadRow(Tensor t, int row, Span<float> dst)
    {
        int cols = t.Shape[1];
        switch (t.DType)
        {
            case DType.F32: t.AsSpan<float>().Slice(row * cols, cols).CopyTo(dst); break;
            case DType.BF16: BFloat16.ToSingle(t.AsSpan<ushort>().Slice(row * cols, cols), dst); break;
            case DType.F16:
                var h = t.AsSpan<ushort>().Slice(row * cols, cols);
                for (int i = 0; i < cols; i++) dst[i] = Float16.ToSingle(h[i]);
                break;
            default: throw new ArgumentException($"dtype {t.DType.ShortName()} is not a float weight");
        }
    }

    private static Tensor Narrow(float[] values, DType dtype, int rows, int cols)
    {
        switch (dtype)
        {
            case DType.F32: return Tensor.FromArray(values, rows, cols);
            case DType.BF16:
            {
                var bits = new ushort[values.Length];
                BFloat16.FromSingle(values, bits);
                return Tensor.FromBFloat16Bits(bits, rows, cols);
            }
            default:
            {
                var bits = new ushort[values.Length];
                for (int i = 0; i < values.Length; i++) bits[i] = Float16.FromSingle(values[i]);
                return Tensor.FromSpan<ushort>(bits, DType.F16, rows, cols);
            }
        }
    }

    /// <summary>Appends codes to a row as one little-endian bit stream (32-bit words, least significant bits first).</summary>
    private struct BitWriter
    {
        private ulong _acc;
        private int _filled, _word;

        public void Put(uint code, int bits, Span<uint> row)
        {
            _acc |= (ulong)code << _filled;
            _filled += bits;
            if (_filled >= 32)
            {
                row[_word++] = (uint)_acc;
                _acc >>= 32;
                _filled -= 32;
            }
        }
    }
}
