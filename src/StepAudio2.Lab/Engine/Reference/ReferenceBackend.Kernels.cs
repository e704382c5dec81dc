using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Reference;

// The compute ops, each a plain loop over its definition. Operands are read through their strides where they are
// (weights in their stored dtype), so views and bf16 weights need no copy; results are new contiguous f32 tensors.
public sealed partial class ReferenceBackend
{
    private static string S(int[] shape) => Tensor.ShapeString(shape);

    private static void CheckFloatWeight(Tensor w, string op)
    {
        if (w.DType is not (DType.F32 or DType.BF16)) throw new ArgumentException($"{op}: weight dtype {w.DType.ShortName()} not supported (f32 or bf16)");
    }

    /// <summary>The float32 elements of an optional per-channel vector (bias, norm weight) of length <paramref name="n"/>.</summary>
    private float[]? Vector(Tensor? v, int n, string op, string what)
    {
        if (v is null) return null;
        v = On(v, op, weight: true);
        if (v.ElementCount != n) throw new ArgumentException($"{op}: {what} has {v.ElementCount} elements, expected {n}");
        return Dense(v);
    }

    // ------------------------------------------------------------------------------------------------ linear algebra

    public Tensor Matmul(Tensor a, Tensor b)
    {
        a = On(a, "matmul"); b = On(b, "matmul");
        Stats.CountOp();
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"matmul needs rank ≥ 2, got {S(a.Shape)} and {S(b.Shape)}");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k) throw new ArgumentException($"matmul: inner dims differ: {S(a.Shape)} @ {S(b.Shape)}");
        long batchA = Tensor.CountElements(a.Shape.AsSpan(0, a.Rank - 2)), batchB = Tensor.CountElements(b.Shape.AsSpan(0, b.Rank - 2));
        if (batchB != 1 && batchB != batchA) throw new ArgumentException($"matmul: batch dims differ: {S(a.Shape)} @ {S(b.Shape)}");
        var x = Dense(a); var w = Dense(b);
        var shape = (int[])a.Shape.Clone();
        shape[^1] = n;
        var result = NewF32(shape, out var y);
        for (long bi = 0; bi < batchA; bi++)
        {
            long xo = bi * m * k, wo = (batchB == 1 ? 0 : bi) * k * n, yo = bi * m * n;
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    float s = 0;
                    for (int p = 0; p < k; p++) s += x[xo + (long)i * k + p] * w[wo + (long)p * n + j];
                    y[(int)(yo + (long)i * n + j)] = s;
                }
        }
        return result;
    }

    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        CheckFloatWeight(weight, "linear");
        x = On(x, "linear"); weight = On(weight, "linear", weight: true);
        Stats.CountOp();
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {S(weight.Shape)}");
        int n = weight.Shape[0], k = weight.Shape[1];
        if (x.Rank < 1 || x.Shape[^1] != k) throw new ArgumentException($"linear: input {S(x.Shape)} does not end in {k} (weight {S(weight.Shape)})");
        var b = Vector(bias, n, "linear", "bias");
        var xs = Dense(x);
        long rows = k == 0 ? Tensor.CountElements(x.Shape.AsSpan(0, x.Rank - 1)) : xs.LongLength / k;
        var shape = (int[])x.Shape.Clone();
        shape[^1] = n;
        var result = NewF32(shape, out var y);
        var w = new Elements(weight);
        long w0 = weight.Offset, ws0 = weight.Strides[0], ws1 = weight.Strides[1];
        for (long r = 0; r < rows; r++)
            for (int j = 0; j < n; j++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += xs[r * k + p] * w[w0 + j * ws0 + p * ws1];
                y[(int)(r * n + j)] = b is null ? s : s + b[j];
            }
        return result;
    }

    public Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        CheckFloatWeight(weight, "conv1d");
        x = On(x, "conv1d"); weight = On(weight, "conv1d", weight: true);
        Stats.CountOp();
        bool batched = x.Rank == 3;
        if ((x.Rank != 3 && x.Rank != 2) || weight.Rank != 3)
            throw new ArgumentException($"conv1d: input {S(x.Shape)} must be [B, C, T], weight [Cout, Cin/groups, K]");
        if (stride < 1 || dilation < 1 || groups < 1 || padding < 0)
            throw new ArgumentException($"conv1d: stride {stride}, padding {padding}, dilation {dilation}, groups {groups} out of range");
        int bsz = batched ? x.Shape[0] : 1, cin = x.Shape[^2], t = x.Shape[^1];
        int cout = weight.Shape[0], cinG = weight.Shape[1], kw = weight.Shape[2];
        if (cin != cinG * groups || cout % groups != 0)
            throw new ArgumentException($"conv1d: input channels {cin} / weight {S(weight.Shape)} / groups {groups} disagree");
        int tout = (t + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        var b = Vector(bias, cout, "conv1d", "bias");
        var xs = Dense(x);
        var result = NewF32(batched ? [bsz, cout, tout] : [cout, tout], out var y);
        var w = new Elements(weight);
        int coutG = cout / groups;
        for (int bi = 0; bi < bsz; bi++)
            for (int co = 0; co < cout; co++)
            {
                int g = co / coutG;
                for (int to = 0; to < tout; to++)
                {
                    float s = 0;
                    for (int ci = 0; ci < cinG; ci++)
                    {
                        long xrow = ((long)bi * cin + g * cinG + ci) * t;
                        for (int k = 0; k < kw; k++)
                        {
                            int ti = to * stride + k * dilation - padding;
                            if (ti < 0 || ti >= t) continue; // zero padding
                            s += xs[xrow + ti] * w[weight.Offset + co * weight.Strides[0] + ci * weight.Strides[1] + k * weight.Strides[2]];
                        }
                    }
                    y[(int)(((long)bi * cout + co) * tout + to)] = b is null ? s : s + b[co];
                }
            }
        return result;
    }

    public Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation)
    {
        CheckFloatWeight(weight, "conv_transpose1d");
        x = On(x, "conv_transpose1d"); weight = On(weight, "conv_transpose1d", weight: true);
        Stats.CountOp();
        bool batched = x.Rank == 3;
        if (x.Rank != 3 && x.Rank != 2) throw new ArgumentException($"conv_transpose1d: input {S(x.Shape)} must be [B, Cin, T]");
        int bsz = batched ? x.Shape[0] : 1, cin = x.Shape[^2], t = x.Shape[^1];
        if (weight.Rank != 3 || weight.Shape[0] != cin) throw new ArgumentException($"conv_transpose1d: weight {S(weight.Shape)} must be [Cin={cin}, Cout, K]");
        if (stride < 1 || dilation < 1 || padding < 0 || outputPadding < 0)
            throw new ArgumentException($"conv_transpose1d: stride {stride}, padding {padding}, output padding {outputPadding}, dilation {dilation} out of range");
        int cout = weight.Shape[1], kw = weight.Shape[2];
        int tout = (t - 1) * stride - 2 * padding + dilation * (kw - 1) + outputPadding + 1;
        if (tout <= 0) throw new ArgumentException($"conv_transpose1d: output length {tout} ≤ 0 for input length {t}");
        var b = Vector(bias, cout, "conv_transpose1d", "bias");
        var xs = Dense(x);
        var result = NewF32(batched ? [bsz, cout, tout] : [cout, tout], out var y);
        var w = new Elements(weight);
        // the gather form of the definition: y[co, to] = Σ_ci Σ_{ti, k : ti·stride + k·dilation − padding = to} x[ci, ti]·W[ci, co, k]
        for (int bi = 0; bi < bsz; bi++)
            for (int co = 0; co < cout; co++)
                for (int to = 0; to < tout; to++)
                {
                    float s = 0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int k = 0; k < kw; k++)
                        {
                            int num = to + padding - k * dilation;
                            if (num < 0 || num % stride != 0) continue;
                            int ti = num / stride;
                            if (ti >= t) continue;
                            s += xs[((long)bi * cin + ci) * t + ti] * w[weight.Offset + ci * weight.Strides[0] + co * weight.Strides[1] + k * weight.Strides[2]];
                        }
                    y[(int)(((long)bi * cout + co) * tout + to)] = b is null ? s : s + b[co];
                }
        return result;
    }

    public Tensor AvgPool1d(Tensor x, int kernel, int stride)
    {
        x = On(x, "avg_pool1d");
        Stats.CountOp();
        if (x.Rank < 1 || kernel < 1 || stride < 1) throw new ArgumentException($"avg_pool1d: input {S(x.Shape)}, kernel {kernel}, stride {stride}");
        int t = x.Shape[^1];
        int tout = Math.Max(t >= kernel ? (t - kernel) / stride + 1 : 0, 0);
        long rows = Tensor.CountElements(x.Shape.AsSpan(0, x.Rank - 1));
        var xs = Dense(x);
        var shape = (int[])x.Shape.Clone();
        shape[^1] = tout;
        var result = NewF32(shape, out var y);
        for (long r = 0; r < rows; r++)
            for (int o = 0; o < tout; o++)
            {
                float s = 0;
                for (int k = 0; k < kernel; k++) s += xs[r * t + o * stride + k];
                y[(int)(r * tout + o)] = s / kernel;
            }
        return result;
    }

    // ------------------------------------------------------------------------------------------------ normalisation

    public Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        x = On(x, "layer_norm");
        Stats.CountOp();
        int d = x.Rank == 0 ? 1 : x.Shape[^1];
        var w = Vector(weight, d, "layer_norm", "weight");
        var b = Vector(bias, d, "layer_norm", "bias");
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (long o = 0; o + d <= xs.LongLength && d > 0; o += d)
        {
            double mean = 0;
            for (int i = 0; i < d; i++) mean += xs[o + i];
            mean /= d;
            double var = 0;
            for (int i = 0; i < d; i++) { double c = xs[o + i] - mean; var += c * c; }
            var /= d; // biased variance, as PyTorch's layer_norm
            float rstd = (float)(1.0 / Math.Sqrt(var + eps)), m = (float)mean;
            for (int i = 0; i < d; i++)
            {
                float v = (xs[o + i] - m) * rstd;
                if (w is not null) v *= w[i];
                if (b is not null) v += b[i];
                y[(int)(o + i)] = v;
            }
        }
        return result;
    }

    public Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        x = On(x, "rms_norm");
        Stats.CountOp();
        int d = x.Rank == 0 ? 1 : x.Shape[^1];
        var w = Vector(weight, d, "rms_norm", "weight")!;
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (long o = 0; o + d <= xs.LongLength && d > 0; o += d)
        {
            double ss = 0;
            for (int i = 0; i < d; i++) ss += (double)xs[o + i] * xs[o + i];
            float scale = 1f / MathF.Sqrt((float)(ss / d) + eps);
            for (int i = 0; i < d; i++) y[(int)(o + i)] = xs[o + i] * scale * w[i];
        }
        return result;
    }

    // ------------------------------------------------------------------------------------------------ element-wise

    public Tensor Unary(UnaryOp op, Tensor x, float alpha)
    {
        x = On(x, "unary");
        Stats.CountOp();
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (int i = 0; i < xs.Length; i++) y[i] = UnaryScalar(op, xs[i], alpha);
        return result;
    }

    /// <summary>One element of <paramref name="op"/>, from its definition (PyTorch's formulas, exact erf for GELU).</summary>
    internal static float UnaryScalar(UnaryOp op, float v, float alpha) => op switch
    {
        UnaryOp.Gelu => (float)(0.5 * v * (1.0 + MathNet.Numerics.SpecialFunctions.Erf(v / Math.Sqrt(2.0)))),
        UnaryOp.GeluTanh => 0.5f * v * (1f + MathF.Tanh(0.7978845608028654f * (v + 0.044715f * (v * v * v)))),
        UnaryOp.Silu => v / (1f + MathF.Exp(-v)),
        UnaryOp.Relu => MathF.Max(v, 0f),
        UnaryOp.LeakyRelu => v >= 0 ? v : alpha * v,
        UnaryOp.Elu => v > 0 ? v : alpha * (MathF.Exp(v) - 1f),
        UnaryOp.Mish => v * MathF.Tanh(v > 20f ? v : MathF.Log(1f + MathF.Exp(v))), // softplus with PyTorch's threshold 20
        UnaryOp.Tanh => MathF.Tanh(v),
        UnaryOp.Exp => MathF.Exp(v),
        UnaryOp.Log => MathF.Log(v),
        UnaryOp.Sin => MathF.Sin(v),
        UnaryOp.Cos => MathF.Cos(v),
        UnaryOp.Abs => MathF.Abs(v),
        UnaryOp.Neg => -v,
        UnaryOp.Sigmoid => 1f / (1f + MathF.Exp(-v)),
        UnaryOp.Sqrt => MathF.Sqrt(v),
        UnaryOp.Square => v * v,
        _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
    };

    public Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        a = On(a, "binary"); b = On(b, "binary");
        Stats.CountOp();
        var shape = ShapeRules.Broadcast(op.ToString(), a.Shape, b.Shape);
        var result = NewF32(shape, out var y);
        var ea = new Elements(a); var eb = new Elements(b);
        var c = new Cursor(shape, [a.Offset, b.Offset], BroadcastStrides(a, shape), BroadcastStrides(b, shape));
        for (int i = 0; i < y.Length; i++, c.Next())
        {
            float u = ea[c[0]], v = eb[c[1]];
            y[i] = op switch
            {
                BinaryOp.Add => u + v,
                BinaryOp.Subtract => u - v,
                BinaryOp.Multiply => u * v,
                BinaryOp.Divide => u / v,
                BinaryOp.Maximum => float.IsNaN(u) || float.IsNaN(v) ? float.NaN : MathF.Max(u, v),
                BinaryOp.Minimum => float.IsNaN(u) || float.IsNaN(v) ? float.NaN : MathF.Min(u, v),
                _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
            };
        }
        return result;
    }


    /// <summary><paramref name="t"/>'s own strides aligned to <paramref name="target"/>, 0 on broadcast axes.</summary>
    private static long[] BroadcastStrides(Tensor t, int[] target)
    {
        var strides = new long[target.Length];
        int off = target.Length - t.Rank;
        for (int i = 0; i < t.Rank; i++) strides[i + off] = t.Shape[i] == 1 ? 0 : t.Strides[i];
        return strides;
    }

    public Tensor Scale(Tensor x, float scale, float shift)
    {
        x = On(x, "scale");
        Stats.CountOp();
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (int i = 0; i < xs.Length; i++) y[i] = xs[i] * scale + shift;
        return result;
    }

    public Tensor Softmax(Tensor x)
    {
        x = On(x, "softmax");
        Stats.CountOp();
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        int d = x.Rank == 0 ? 1 : x.Shape[^1];
        for (long o = 0; o + d <= xs.LongLength && d > 0; o += d) SoftmaxRow(xs, o, d, y);
        return result;
    }

    /// <summary>Max-subtracted softmax of one row; a row that is all −∞ gives NaN, as PyTorch does.</summary>
    private static void SoftmaxRow(ReadOnlySpan<float> x, long o, int d, Span<float> y)
    {
        float max = float.NegativeInfinity;
        bool nan = false;
        for (int i = 0; i < d; i++) { float v = x[(int)(o + i)]; if (float.IsNaN(v)) nan = true; else if (v > max) max = v; }
        if (nan || float.IsNegativeInfinity(max))
        {
            for (int i = 0; i < d; i++) y[(int)(o + i)] = float.NaN;
            return;
        }
        double sum = 0;
        for (int i = 0; i < d; i++) { float e = MathF.Exp(x[(int)(o + i)] - max); y[(int)(o + i)] = e; sum += e; }
        float total = (float)sum;
        for (int i = 0; i < d; i++) y[(int)(o + i)] /= total;
    }

    // ------------------------------------------------------------------------------------------------ attention

    public Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException("scaled_dot_product_attention: q, k, v must be [B, heads, T, D]");
        q = On(q, "scaled_dot_product_attention"); k = On(k, "scaled_dot_product_attention"); v = On(v, "scaled_dot_product_attention");
        var mask = OnOptional(maskBias, "scaled_dot_product_attention");
        Stats.CountOp();
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int hkv = k.Shape[1], tk = k.Shape[2], dv = v.Shape[3];
        if (k.Shape[0] != b || v.Shape[0] != b || k.Shape[3] != d || v.Shape[1] != hkv || v.Shape[2] != tk || hkv == 0 || hq % hkv != 0)
            throw new ArgumentException($"scaled_dot_product_attention: q {S(q.Shape)}, k {S(k.Shape)}, v {S(v.Shape)} disagree");
        int[] scoreShape = [b, hq, tq, tk];
        if (scoresOut is not null && (scoresOut.DType != DType.F32 || !scoresOut.IsContiguous || !scoresOut.Shape.SequenceEqual(scoreShape)))
            throw new ArgumentException($"scaled_dot_product_attention: scoresOut must be f32 [{b}, {hq}, {tq}, {tk}]");
        if (scoresOut is not null && !scoresOut.IsHost) CheckNotForeign(scoresOut, "scaled_dot_product_attention");
        long[]? ms = mask is null ? null : BroadcastStrides(mask, ShapeRules.Broadcast("attention mask", mask.Shape, scoreShape));
        if (mask is not null && mask.Rank > 4) throw new ArgumentException($"scaled_dot_product_attention: mask {S(mask.Shape)} has more than 4 axes");
        // q, k, v gathered row-major (any strides: a KV cache is read as a view of its buffer)
        var qd = Dense(q); var kd = Dense(k); var vd = Dense(v);
        var em = mask is null ? default : new Elements(mask);
        var scores = new float[(long)b * hq * tq * tk];
        var probs = new float[tk];
        var result = NewF32([b, hq, tq, dv], out var o);
        int group = hq / hkv, causalOffset = tk - tq; // query i sees keys j ≤ i + (tk − tq): aligned to the end (KV cache)
        for (int bi = 0; bi < b; bi++)
            for (int h = 0; h < hq; h++)
            {
                int hk = h / group;
                long kBase = ((long)bi * hkv + hk) * tk;
                for (int i = 0; i < tq; i++)
                {
                    long so = (((long)bi * hq + h) * tq + i) * tk;
                    long qo = (((long)bi * hq + h) * tq + i) * d;
                    for (int j = 0; j < tk; j++)
                    {
                        long ko = (kBase + j) * d;
                        float s = 0;
                        for (int p = 0; p < d; p++) s += qd[qo + p] * kd[ko + p];
                        s *= scale;
                        if (mask is not null) s += em[mask.Offset + bi * ms![0] + h * ms[1] + i * ms[2] + j * ms[3]];
                        if (causal && j > i + causalOffset) s = float.NegativeInfinity;
                        scores[so + j] = s;
                    }
                    SoftmaxRow(scores.AsSpan((int)so, tk), 0, tk, probs);
                    for (int e = 0; e < dv; e++)
                    {
                        float acc = 0;
                        for (int j = 0; j < tk; j++) acc += probs[j] * vd[(kBase + j) * dv + e];
                        o[(int)((((long)bi * hq + h) * tq + i) * dv + e)] = acc;
                    }
                }
            }
        if (scoresOut is not null) WriteScores(scoresOut, scores);
        return result;
    }

    /// <summary>The <c>.qk</c> scores into the caller's tensor: in place on this backend, or (a download) into a host tensor.</summary>
    private void WriteScores(Tensor scoresOut, float[] scores)
    {
        if (IsMine(scoresOut))
        {
            scores.AsSpan().CopyTo(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Bytes(scoresOut)));
            return;
        }
        scores.AsSpan().CopyTo(scoresOut.AsWritableSpan<float>());
        Stats.CountDownload(scores.LongLength * sizeof(float));
    }

    // ------------------------------------------------------------------------------------------------ indexing, shape

    public Tensor Take(Tensor table, ReadOnlySpan<int> ids)
    {
        if (table.Rank != 2) throw new ArgumentException($"take: table must be a [rows, dim] tensor, got {table}");
        table = On(table, "take", weight: true);
        Stats.CountOp();
        Stats.CountUpload((long)ids.Length * sizeof(int)); // the ids are host values
        int rows = table.Shape[0], d = table.Shape[1];
        var result = NewF32([ids.Length, d], out var y);
        var e = new Elements(table);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {id} at position {i} outside table of {rows} rows");
            for (int c = 0; c < d; c++) y[i * d + c] = e[table.Offset + id * table.Strides[0] + c * table.Strides[1]];
        }
        return result;
    }

    /// <summary>The packed codes, scales and biases of a quantized matrix on this backend (uploaded once, as weights).</summary>
    private (Tensor Packed, Tensor Scales, Tensor Biases) OnQuantized(QuantizedWeight w, string op) =>
        (On(w.Weight, op, weight: true), On(w.Scales, op, weight: true), On(w.Biases, op, weight: true));

    /// <summary>
    /// Row <paramref name="row"/> of an MLX affine-quantized matrix, dequantised: code i is bits i·b … i·b+b−1 of the
    /// row's little-endian bit stream of uint32 words, w = scale·q + bias (a float32 product, then a float32 sum).
    /// </summary>
    private static void DequantizeRow(QuantizedWeight w, Tensor packed, Tensor scales, Tensor biases, int row, Span<float> dst)
    {
        var words = new Elements(packed); var es = new Elements(scales); var eb = new Elements(biases);
        int bits = w.Bits;
        uint mask = (1u << bits) - 1;
        for (int i = 0; i < w.InFeatures; i++)
        {
            long bit = (long)i * bits;
            int word = (int)(bit / 32), shift = (int)(bit % 32);
            ulong lo = (ulong)words.Double(packed.Offset + row * packed.Strides[0] + word * packed.Strides[1]);
            ulong hi = shift + bits > 32 ? (ulong)words.Double(packed.Offset + row * packed.Strides[0] + (word + 1) * packed.Strides[1]) : 0;
            uint q = (uint)(((hi << 32) | lo) >> shift) & mask;
            int g = i / w.GroupSize;
            float scale = es[scales.Offset + row * scales.Strides[0] + g * scales.Strides[1]];
            float bias = eb[biases.Offset + row * biases.Strides[0] + g * biases.Strides[1]];
            float product = scale * q;
            dst[i] = product + bias;
        }
    }

    public Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias)
    {
        x = On(x, "quantized_matmul");
        var (packed, scales, biases) = OnQuantized(weight, "quantized_matmul");
        Stats.CountOp();
        int n = weight.OutFeatures, k = weight.InFeatures;
        if (x.Rank < 1 || x.Shape[^1] != k) throw new ArgumentException($"quantized_matmul: input {S(x.Shape)} does not end in {k} ({weight})");
        var b = Vector(bias, n, "quantized_matmul", "bias");
        var xs = Dense(x);
        long rows = Tensor.CountElements(x.Shape.AsSpan(0, x.Rank - 1));
        var shape = (int[])x.Shape.Clone();
        shape[^1] = n;
        var result = NewF32(shape, out var y);
        var wrow = new float[k];
        for (int j = 0; j < n; j++)
        {
            DequantizeRow(weight, packed, scales, biases, j, wrow);
            for (long r = 0; r < rows; r++)
            {
                float s = 0;
                for (int p = 0; p < k; p++) s += xs[r * k + p] * wrow[p];
                y[(int)(r * n + j)] = b is null ? s : s + b[j];
            }
        }
        return result;
    }

    public Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids)
    {
        var (packed, scales, biases) = OnQuantized(table, "take");
        Stats.CountOp();
        Stats.CountUpload((long)ids.Length * sizeof(int));
        int rows = table.OutFeatures, d = table.InFeatures;
        var result = NewF32([ids.Length, d], out var y);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if ((uint)id >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {id} at position {i} outside table of {rows} rows");
            DequantizeRow(table, packed, scales, biases, id, y.Slice(i * d, d));
        }
        return result;
    }

    public Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value)
    {
        x = On(x, "pad");
        Stats.CountOp();
        int rank = x.Rank;
        if (pads.Length != rank) throw new ArgumentException($"pad: {pads.Length} pad pairs for rank {rank}");
        var shape = new int[rank];
        for (int i = 0; i < rank; i++)
        {
            var (before, after) = pads[i];
            if (before < 0 || after < 0) throw new ArgumentException($"pad: negative padding {pads[i]} on dim {i}");
            shape[i] = x.Shape[i] + before + after;
            if (mode == PadMode.Reflect && (before > 0 || after > 0) && (before >= x.Shape[i] || after >= x.Shape[i]))
                throw new ArgumentException($"pad: reflect padding {pads[i]} must be smaller than dim {i} of size {x.Shape[i]}");
            if (mode == PadMode.Replicate && (before > 0 || after > 0) && x.Shape[i] == 0)
                throw new ArgumentException($"pad: replicate padding of the empty dim {i}");
        }
        var result = NewF32(shape, out var y);
        var e = new Elements(x);
        var idx = new int[rank];
        for (int n = 0; n < y.Length; n++)
        {
            long pos = x.Offset;
            bool inside = true;
            for (int dim = 0; dim < rank; dim++)
            {
                int i = idx[dim] - pads[dim].Before, size = x.Shape[dim];
                if (i < 0 || i >= size)
                {
                    switch (mode)
                    {
                        case PadMode.Constant: inside = false; break;
                        case PadMode.Reflect: i = i < 0 ? -i : 2 * (size - 1) - i; break; // the edge sample is not repeated
                        case PadMode.Replicate: i = i < 0 ? 0 : size - 1; break;
                    }
                }
                pos += i * x.Strides[dim];
            }
            y[n] = inside ? e[pos] : value;
            for (int k = rank - 1; k >= 0; k--)
            {
                if (++idx[k] < shape[k]) break;
                idx[k] = 0;
            }
        }
        return result;
    }

    public Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis)
    {
        if (xs.Count == 0) throw new ArgumentException("concatenate: no inputs");
        var parts = xs.Select(p => On(p, "concatenate")).ToArray();
        Stats.CountOp();
        int rank = parts[0].Rank;
        if (axis < 0) axis += rank;
        if ((uint)axis >= (uint)rank) throw new ArgumentException($"concatenate: axis {axis} for rank {rank}");
        var shape = (int[])parts[0].Shape.Clone();
        shape[axis] = 0;
        foreach (var p in parts)
        {
            if (p.Rank != rank || Enumerable.Range(0, rank).Any(i => i != axis && p.Shape[i] != parts[0].Shape[i]))
                throw new ArgumentException($"concatenate: shapes {string.Join(", ", parts.Select(t => S(t.Shape)))} differ off axis {axis}");
            shape[axis] = checked(shape[axis] + p.Shape[axis]);
        }
        var result = NewF32(shape, out var y);
        var ys = Tensor.ContiguousStrides(shape);
        int start = 0;
        foreach (var p in parts)
        {
            // each part lands in the window [start, start + n) of the output's axis
            var e = new Elements(p);
            var c = new Cursor(p.Shape, [p.Offset, start * ys[axis]], p.Strides, ys);
            for (long i = 0; i < p.ElementCount; i++, c.Next()) y[(int)c[1]] = e[c[0]];
            start += p.Shape[axis];
        }
        return result;
    }

    public Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims)
    {
        x = On(x, "reduce");
        Stats.CountOp();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank) throw new ArgumentException($"reduce: axis {axis} for {S(x.Shape)}");
        int n = x.Shape[axis];
        var shape = keepDims ? x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray() : x.Shape.Where((_, i) => i != axis).ToArray();
        var result = NewF32(shape, out var y);
        // walk the output; for each output element, the reduced axis of the input
        var outShape = x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray();
        var e = new Elements(x);
        var c = new Cursor(outShape, [x.Offset], x.Strides);
        for (int o = 0; o < y.Length; o++, c.Next())
        {
            double acc = op switch { ReduceOp.Max => double.NegativeInfinity, ReduceOp.Min => double.PositiveInfinity, _ => 0 };
            for (int j = 0; j < n; j++)
            {
                double v = e[c.Pos + j * x.Strides[axis]];
                acc = op switch { ReduceOp.Max => Math.Max(acc, v), ReduceOp.Min => Math.Min(acc, v), _ => acc + v };
            }
            if (op == ReduceOp.Mean) acc /= n;
            y[o] = (float)acc;
        }
        return result;
    }

    public int[] Argmax(Tensor x)
    {
        x = On(x, "argmax");
        Stats.CountOp();
        if (x.Rank == 0) throw new ArgumentException("argmax: needs rank ≥ 1");
        int d = x.Shape[^1];
        long rows = Tensor.CountElements(x.Shape.AsSpan(0, x.Rank - 1));
        var xs = Dense(x);
        var ids = new int[rows];
        for (long r = 0; r < rows; r++)
        {
            int best = d == 0 ? -1 : 0;
            for (int i = 1; i < d; i++)
            {
                float v = xs[r * d + i], m = xs[r * d + best];
                if (float.IsNaN(m)) break; // NaN counts as the maximum (torch.argmax); the first one wins
                if (v > m || float.IsNaN(v)) best = i;
            }
            ids[r] = best;
        }
        Stats.CountDownload(ids.LongLength * sizeof(int)); // the ids come back to the host
        return ids;
    }

    public (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k)
    {
        Stats.CountOp();
        k = Math.Clamp(k, 0, x.Length);
        // every index ordered by value, largest first (values compare as float.CompareTo), the lower index first on ties
        var v = x.ToArray();
        var order = Enumerable.Range(0, v.Length).ToArray();
        Array.Sort(order, (a, b) => v[a].CompareTo(v[b]) is var c && c != 0 ? -c : a.CompareTo(b));
        var indices = order[..k];
        var values = indices.Select(i => v[i]).ToArray();
        return (values, indices);
    }

    // ------------------------------------------------------------------------------------------------ small ops

    public Tensor Rope(Tensor x, int offset, float theta)
    {
        x = On(x, "rope");
        Stats.CountOp();
        if (x.Rank < 2 || x.Shape[^1] % 2 != 0) throw new ArgumentException($"rope: x {S(x.Shape)} needs [..., T, D] with even D");
        int n = x.Shape[^2], hd = x.Shape[^1], half = hd / 2;
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (long o = 0; o < xs.LongLength; o += hd)
        {
            int p = (int)(o / hd % n);
            for (int i = 0; i < half; i++)
            {
                float invFreq = 1f / MathF.Pow(theta, 2 * i / (float)hd);
                float angle = (offset + p) * invFreq;
                float c = MathF.Cos(angle), s = MathF.Sin(angle);
                float lo = xs[o + i], hi = xs[o + half + i];
                // x·cos + rotate_half(x)·sin, rotate_half(x) = [−x_hi, x_lo]
                y[(int)(o + i)] = lo * c - hi * s;
                y[(int)(o + half + i)] = hi * c + lo * s;
            }
        }
        return result;
    }

    public Tensor Cumsum(Tensor x, int axis)
    {
        x = On(x, "cumsum");
        Stats.CountOp();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank) throw new ArgumentException($"cumsum: axis {axis} for {S(x.Shape)}");
        int n = x.Shape[axis];
        var result = NewF32(x.Shape, out var y);
        var ys = Tensor.ContiguousStrides(x.Shape);
        var lines = x.Shape.Select((d, i) => i == axis ? 1 : d).ToArray();
        var e = new Elements(x);
        var c = new Cursor(lines, [x.Offset, 0], x.Strides, ys);
        long count = Tensor.CountElements(lines);
        for (long l = 0; l < count; l++, c.Next())
        {
            double acc = 0; // float32 values summed in double, each output rounded once (PyTorch's CPU cumsum)
            for (int j = 0; j < n; j++)
            {
                acc += e[c[0] + j * x.Strides[axis]];
                y[(int)(c[1] + j * ys[axis])] = (float)acc;
            }
        }
        return result;
    }

    public Tensor Repeat(Tensor x, int axis, int repeats)
    {
        x = On(x, "repeat");
        Stats.CountOp();
        if (axis < 0) axis += x.Rank;
        if ((uint)axis >= (uint)x.Rank || repeats < 1) throw new ArgumentException($"repeat: axis {axis}, repeats {repeats} for {S(x.Shape)}");
        var shape = (int[])x.Shape.Clone();
        shape[axis] = checked(x.Shape[axis] * repeats);
        var result = NewF32(shape, out var y);
        var e = new Elements(x);
        // output element [.., j, ..] is input element [.., j / repeats, ..]
        var idx = new int[shape.Length];
        for (int n = 0; n < y.Length; n++)
        {
            long pos = x.Offset;
            for (int d = 0; d < shape.Length; d++) pos += (d == axis ? idx[d] / repeats : idx[d]) * x.Strides[d];
            y[n] = e[pos];
            for (int d = shape.Length - 1; d >= 0; d--)
            {
                if (++idx[d] < shape[d]) break;
                idx[d] = 0;
            }
        }
        return result;
    }

    public Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        cond = On(cond, "where"); a = On(a, "where"); b = On(b, "where");
        Stats.CountOp();
        var shape = ShapeRules.Broadcast("where", cond.Shape, a.Shape, b.Shape);
        var result = NewF32(shape, out var y);
        var ec = new Elements(cond); var ea = new Elements(a); var eb = new Elements(b);
        var c = new Cursor(shape, [cond.Offset, a.Offset, b.Offset], BroadcastStrides(cond, shape), BroadcastStrides(a, shape), BroadcastStrides(b, shape));
        for (int i = 0; i < y.Length; i++, c.Next()) y[i] = ec.Double(c[0]) != 0 ? ea[c[1]] : eb[c[2]];
        return result;
    }

    public Tensor Clamp(Tensor x, float min, float max)
    {
        x = On(x, "clamp");
        Stats.CountOp();
        if (min > max) throw new ArgumentException($"clamp: min {min} > max {max}");
        var xs = Dense(x);
        var result = NewF32(x.Shape, out var y);
        for (int i = 0; i < xs.Length; i++) y[i] = xs[i] < min ? min : xs[i] > max ? max : xs[i];
        return result;
    }

    public Tensor Snake(Tensor x, Tensor alpha)
    {
        x = On(x, "snake"); alpha = On(alpha, "snake", weight: true);
        Stats.CountOp();
        int c = x.Rank == 3 ? x.Shape[1] : x.Rank == 2 ? x.Shape[0] : -1;
        if (c != alpha.ElementCount) throw new ArgumentException($"snake: x {S(x.Shape)} needs [B, C, T] or [C, T] with C = {alpha.ElementCount} (alpha)");
        var a = Dense(alpha);
        var xs = Dense(x);
        int t = x.Shape[^1];
        var result = NewF32(x.Shape, out var y);
        for (int i = 0; i < xs.Length; i++)
        {
            float al = a[i / t % c], v = xs[i];
            float s = MathF.Sin(v * al);
            y[i] = v + 1f / (al + 1e-9f) * (s * s); // x + sin²(αx)/(α + 1e−9), the official module's order
        }
        return result;
    }
}
