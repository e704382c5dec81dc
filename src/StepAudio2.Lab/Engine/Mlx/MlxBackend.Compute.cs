using System.Runtime.CompilerServices;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using static StepAudio2.Lab.Engine.Mlx.MlxNative;
using MlxArray = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_array;
using MlxDType = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_dtype;
using Stream = StepAudio2.Lab.Engine.Mlx.MlxNative.mlx_stream;
using DType = StepAudio2.Lab.Tensors.DType;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Mlx;

/// <summary>The mlx backend's compute ops: MLX's fused ops where it has them, mlx.nn's formulas elsewhere.</summary>
public sealed unsafe partial class MlxBackend
{
    // ------------------------------------------------------------------------------------------------ linear algebra

    public Tensor Matmul(Tensor a, Tensor b)
    {
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"matmul needs rank ≥ 2, got {Tensor.ShapeString(a.Shape)} and {Tensor.ShapeString(b.Shape)}");
        if (a.Shape[^1] != b.Shape[^2]) throw new ArgumentException($"matmul: inner dims differ: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}");
        return Op("matmul", s => Bin(s, &mlx_matmul, F32(s, a), F32(s, b), "matmul"));
    }

    private static void CheckWeight(Tensor w, string op)
    {
        if (w.DType is not (DType.F32 or DType.BF16)) throw new ArgumentException($"{op}: weight dtype {w.DType.ShortName()} not supported (f32 or bf16)");
    }

    private MlxArray AddBias(Scope s, MlxArray y, Tensor? bias, int n, string op, bool channelsFirst = false)
    {
        if (bias is null) return y;
        if (bias.ElementCount != n) throw new ArgumentException($"{op}: bias has {bias.ElementCount} elements, expected {n}");
        var b = Reshape(s, F32Weight(s, bias), channelsFirst ? [n, 1] : [n]);
        return Bin(s, &mlx_add, y, b, op);
    }

    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        CheckWeight(weight, "linear");
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {Tensor.ShapeString(weight.Shape)}");
        int n = weight.Shape[0], k = weight.Shape[1];
        if (x.Shape[^1] != k) throw new ArgumentException($"linear: input {Tensor.ShapeString(x.Shape)} does not end in {k} (weight {Tensor.ShapeString(weight.Shape)})");
        return Op("linear", s =>
        {
            // x·Wᵀ: a bf16 W is promoted to f32 inside MLX's graph (exact widening), the stored copy stays bf16
            var wt = Transpose(s, Weight(s, weight), [1, 0]);
            var y = Bin(s, &mlx_matmul, F32(s, x), AsType(s, wt, MlxDType.Float32), "linear");
            return AddBias(s, y, bias, n, "linear");
        });
    }

    public Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        CheckWeight(weight, "conv1d");
        bool batched = x.Rank == 3;
        if ((x.Rank is not (2 or 3)) || weight.Rank != 3) throw new ArgumentException($"conv1d: input {Tensor.ShapeString(x.Shape)} must be [B, C, T], weight [Cout, Cin/groups, K]");
        int cin = x.Shape[^2], t = x.Shape[^1], cout = weight.Shape[0], cinG = weight.Shape[1], kw = weight.Shape[2];
        if (cin != cinG * groups || cout % groups != 0)
            throw new ArgumentException($"conv1d: input channels {cin} / weight {Tensor.ShapeString(weight.Shape)} / groups {groups} disagree");
        int tout = (t + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        return Op("conv1d", s =>
        {
            var xa = F32(s, x);
            if (!batched) xa = Reshape(s, xa, [1, cin, t]);
            // PyTorch NCL → MLX NLC at the op's boundary; the kernel [Cout, Cin/g, K] → [Cout, K, Cin/g] once per weight
            var nlc = Swap(s, xa, 3, 1, 2);
            var w = AsType(s, Prepared(s, _convWeights, weight, [0, 2, 1]), MlxDType.Float32);
            var y = s.Do("conv1d", r => mlx_conv1d((MlxArray*)r, nlc, w, stride, padding, dilation, groups, s.S));
            y = Swap(s, y, 3, 1, 2);
            y = AddBias(s, y, bias, cout, "conv1d", channelsFirst: true);
            return batched ? y : Reshape(s, y, [cout, tout]);
        });
    }

    public Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation)
    {
        bool batched = x.Rank == 3;
        int cin = x.Shape[^2], t = x.Shape[^1];
        if (weight.Rank != 3 || weight.Shape[0] != cin) throw new ArgumentException($"conv_transpose1d: weight {Tensor.ShapeString(weight.Shape)} must be [Cin={cin}, Cout, K]");
        int cout = weight.Shape[1];
        return Op("conv_transpose1d", s =>
        {
            var xa = F32(s, x);
            if (!batched) xa = Reshape(s, xa, [1, cin, t]);
            var nlc = Swap(s, xa, 3, 1, 2);
            // PyTorch [Cin, Cout, K] → MLX [Cout, K, Cin]
            var w = AsType(s, Prepared(s, _convTWeights, weight, [1, 2, 0]), MlxDType.Float32);
            var y = s.Do("conv_transpose1d", r => mlx_conv_transpose1d((MlxArray*)r, nlc, w, stride, padding, dilation, outputPadding, 1, s.S));
            y = Swap(s, y, 3, 1, 2);
            y = AddBias(s, y, bias, cout, "conv_transpose1d", channelsFirst: true);
            return batched ? y : Reshape(s, y, [cout, ShapeOf(y)[2]]);
        });
    }

    public Tensor AvgPool1d(Tensor x, int kernel, int stride)
    {
        int t = x.Shape[^1];
        int tout = Math.Max((t - kernel) / stride + 1, 0);
        int rows = (int)(x.ElementCount / Math.Max(t, 1));
        var outShape = x.Shape.ToArray();
        outShape[^1] = tout;
        return Op("avg_pool1d", s =>
        {
            // windows as a strided view [rows, tout, kernel] of the row-major input, then their mean
            var flat = Reshape(s, s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, F32(s, x), false, s.S)), [checked((int)x.ElementCount)]);
            int[] shape = [rows, tout, kernel];
            long[] strides = [t, stride, 1];
            var win = s.Do("as_strided", r =>
            {
                fixed (int* ps = shape) fixed (long* pst = strides)
                    return mlx_as_strided((MlxArray*)r, flat, ps, 3, pst, 3, 0, s.S);
            });
            var m = s.Do("mean", r => mlx_mean_axis((MlxArray*)r, win, 2, false, s.S));
            return Reshape(s, m, outShape);
        });
    }

    public Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps)
    {
        int d = x.Shape[^1];
        if ((weight is not null && weight.ElementCount != d) || (bias is not null && bias.ElementCount != d))
            throw new ArgumentException($"layer_norm: affine parameters do not match the last dim {d}");
        return Op("layer_norm", s =>
        {
            var w = weight is null ? default : Reshape(s, F32Weight(s, weight), [d]);
            var b = bias is null ? default : Reshape(s, F32Weight(s, bias), [d]);
            var xa = F32(s, x);
            return s.Do("fast.layer_norm", r => mlx_fast_layer_norm((MlxArray*)r, xa, w, b, eps, s.S));
        });
    }

    public Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        int d = x.Shape[^1];
        if (weight.ElementCount != d) throw new ArgumentException($"rms_norm: weight has {weight.ElementCount} elements, last dim is {d}");
        return Op("rms_norm", s =>
        {
            var w = Reshape(s, F32Weight(s, weight), [d]);
            var xa = F32(s, x);
            return s.Do("fast.rms_norm", r => mlx_fast_rms_norm((MlxArray*)r, xa, w, eps, s.S));
        });
    }

    // ------------------------------------------------------------------------------------------------ element-wise

    public Tensor Unary(UnaryOp op, Tensor x, float alpha) => Op(op.ToString(), s =>
    {
        var a = F32(s, x);
        switch (op)
        {
            case UnaryOp.Gelu:
            {
                // 0.5·x·(1 + erf(x/√2)) as mlx.nn.gelu
                var e = Un(s, &mlx_erf, Bin(s, &mlx_multiply, a, s.Scalar(0.70710678118654752f), "gelu"), "gelu");
                return Bin(s, &mlx_multiply, Bin(s, &mlx_multiply, a, s.Scalar(0.5f), "gelu"), Bin(s, &mlx_add, e, s.Scalar(1f), "gelu"), "gelu");
            }
            case UnaryOp.GeluTanh:
            {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as mlx.nn.gelu_approx
                var x3 = Bin(s, &mlx_multiply, Un(s, &mlx_square, a, "gelu_approx"), a, "gelu_approx");
                var inner = Bin(s, &mlx_add, a, Bin(s, &mlx_multiply, x3, s.Scalar(0.044715f), "gelu_approx"), "gelu_approx");
                var th = Un(s, &mlx_tanh, Bin(s, &mlx_multiply, inner, s.Scalar(0.7978845608028654f), "gelu_approx"), "gelu_approx");
                return Bin(s, &mlx_multiply, Bin(s, &mlx_multiply, a, s.Scalar(0.5f), "gelu_approx"), Bin(s, &mlx_add, th, s.Scalar(1f), "gelu_approx"), "gelu_approx");
            }
            case UnaryOp.Silu: return Bin(s, &mlx_multiply, a, Un(s, &mlx_sigmoid, a, "silu"), "silu");
            case UnaryOp.Relu: return Bin(s, &mlx_maximum, a, s.Scalar(0f), "relu");
            case UnaryOp.LeakyRelu:
            {
                var pos = Bin(s, &mlx_greater_equal, a, s.Scalar(0f), "leaky_relu");
                var neg = Bin(s, &mlx_multiply, a, s.Scalar(alpha), "leaky_relu");
                return s.Do("where", r => mlx_where((MlxArray*)r, pos, a, neg, s.S));
            }
            case UnaryOp.Elu:
            {
                var pos = Bin(s, &mlx_greater, a, s.Scalar(0f), "elu");
                var neg = Bin(s, &mlx_multiply, Un(s, &mlx_expm1, a, "elu"), s.Scalar(alpha), "elu");
                return s.Do("where", r => mlx_where((MlxArray*)r, pos, a, neg, s.S));
            }
            case UnaryOp.Mish:
            {
                // x·tanh(softplus(x)), softplus = logaddexp(x, 0) as mlx.nn.softplus
                var sp = Bin(s, &mlx_logaddexp, a, s.Scalar(0f), "mish");
                return Bin(s, &mlx_multiply, a, Un(s, &mlx_tanh, sp, "mish"), "mish");
            }
            case UnaryOp.Tanh: return Un(s, &mlx_tanh, a, "tanh");
            case UnaryOp.Exp: return Un(s, &mlx_exp, a, "exp");
            case UnaryOp.Log: return Un(s, &mlx_log, a, "log");
            case UnaryOp.Sin: return Un(s, &mlx_sin, a, "sin");
            case UnaryOp.Cos: return Un(s, &mlx_cos, a, "cos");
            case UnaryOp.Abs: return Un(s, &mlx_abs, a, "abs");
            case UnaryOp.Neg: return Un(s, &mlx_negative, a, "negative");
            case UnaryOp.Sigmoid: return Un(s, &mlx_sigmoid, a, "sigmoid");
            case UnaryOp.Sqrt: return Un(s, &mlx_sqrt, a, "sqrt");
            case UnaryOp.Square: return Un(s, &mlx_square, a, "square");
            default: throw new ArgumentOutOfRangeException(nameof(op), op, null);
        }
    });


    public Tensor Binary(BinaryOp op, Tensor a, Tensor b)
    {
        ShapeRules.Broadcast(op.ToString(), a.Shape, b.Shape);
        return Op(op.ToString(), s =>
        {
            var x = F32(s, a); var y = F32(s, b);
            return op switch
            {
                BinaryOp.Add => Bin(s, &mlx_add, x, y, "add"),
                BinaryOp.Subtract => Bin(s, &mlx_subtract, x, y, "subtract"),
                BinaryOp.Multiply => Bin(s, &mlx_multiply, x, y, "multiply"),
                BinaryOp.Divide => Bin(s, &mlx_divide, x, y, "divide"),
                BinaryOp.Maximum => Bin(s, &mlx_maximum, x, y, "maximum"),
                BinaryOp.Minimum => Bin(s, &mlx_minimum, x, y, "minimum"),
                _ => throw new ArgumentOutOfRangeException(nameof(op), op, null),
            };
        });
    }

    public Tensor Scale(Tensor x, float scale, float shift) => Op("scale", s =>
    {
        var y = Bin(s, &mlx_multiply, F32(s, x), s.Scalar(scale), "scale");
        return shift != 0f ? Bin(s, &mlx_add, y, s.Scalar(shift), "scale") : y;
    });

    public Tensor Softmax(Tensor x) => Op("softmax", s =>
    {
        var a = F32(s, x);
        return s.Do("softmax", r => mlx_softmax_axis((MlxArray*)r, a, -1, true, s.S));
    });

    public Tensor Where(Tensor cond, Tensor a, Tensor b)
    {
        ShapeRules.Broadcast("where", cond.Shape, a.Shape, b.Shape);
        return Op("where", s =>
        {
            var c = In(s, cond);
            if (mlx_array_dtype(c) != MlxDType.Bool) c = Bin(s, &mlx_not_equal, c, s.Scalar(0f), "where");
            var x = F32(s, a); var y = F32(s, b);
            return s.Do("where", r => mlx_where((MlxArray*)r, c, x, y, s.S));
        });
    }

    public Tensor Clamp(Tensor x, float min, float max) => Op("clip", s =>
    {
        var a = F32(s, x);
        var lo = s.Scalar(min); var hi = s.Scalar(max);
        return s.Do("clip", r => mlx_clip((MlxArray*)r, a, lo, hi, s.S));
    });

    public Tensor Snake(Tensor x, Tensor alpha)
    {
        if (x.Rank is not (2 or 3) || alpha.ElementCount != x.Shape[^2])
            throw new ArgumentException($"snake: x {Tensor.ShapeString(x.Shape)} must be [B, C, T] or [C, T] and alpha [C], got alpha {Tensor.ShapeString(alpha.Shape)}");
        int c = x.Shape[^2];
        return Op("snake", s =>
        {
            // x + 1/(α + 1e-9)·sin²(α·x), α per channel, as HiFT's Snake
            var xa = F32(s, x);
            var al = Reshape(s, F32Weight(s, alpha), [c, 1]);
            var sin = Un(s, &mlx_sin, Bin(s, &mlx_multiply, xa, al, "snake"), "snake");
            var inv = Bin(s, &mlx_divide, s.Scalar(1f), Bin(s, &mlx_add, al, s.Scalar(1e-9f), "snake"), "snake");
            return Bin(s, &mlx_add, xa, Bin(s, &mlx_multiply, inv, Un(s, &mlx_square, sin, "snake"), "snake"), "snake");
        });
    }

    public Tensor Cumsum(Tensor x, int axis) => Op("cumsum", s =>
    {
        var a = F32(s, x);
        return s.Do("cumsum", r => mlx_cumsum((MlxArray*)r, a, axis, false, true, s.S));
    });

    public Tensor Repeat(Tensor x, int axis, int repeats) => Op("repeat", s =>
    {
        var a = In(s, x);
        return s.Do("repeat", r => mlx_repeat_axis((MlxArray*)r, a, repeats, axis, s.S));
    });

    // ------------------------------------------------------------------------------------------------ attention, RoPE

    public Tensor Rope(Tensor x, int offset, float theta)
    {
        if (x.Rank < 2 || x.Shape[^1] % 2 != 0) throw new ArgumentException($"rope: x {Tensor.ShapeString(x.Shape)} needs [..., T, D] with even D");
        int d = x.Shape[^1];
        return Op("rope", s =>
        {
            var a = F32(s, x);
            if (x.Rank == 2) a = Reshape(s, a, [1, .. x.Shape]); // mx.fast.rope wants at least [B, T, D]
            // traditional=false: rotate-half (GPT-NeoX / HF Qwen2); MLX derives inv_freq from the base itself
            var r0 = s.Do("fast.rope", r => mlx_fast_rope((MlxArray*)r, a, d, false, new mlx_optional_float { Value = theta, HasValue = 1 }, 1f, offset, default, s.S));
            return x.Rank == 2 ? Reshape(s, r0, x.Shape) : r0;
        });
    }

    public Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut)
    {
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException("scaled_dot_product_attention: q, k, v must be [B, heads, T, D]");
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int hkv = k.Shape[1], tk = k.Shape[2];
        if (k.Shape[0] != b || v.Shape[0] != b || k.Shape[3] != d || v.Shape[1] != hkv || v.Shape[2] != tk || hq % hkv != 0)
            throw new ArgumentException($"scaled_dot_product_attention: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} disagree");
        if (scoresOut is not null && (scoresOut.DType != DType.F32 || !scoresOut.Shape.SequenceEqual(new[] { b, hq, tq, tk })))
            throw new ArgumentException($"scaled_dot_product_attention: scoresOut must be f32 [{b}, {hq}, {tq}, {tk}]");
        return Op("scaled_dot_product_attention", s =>
        {
            var qa = F32(s, q); var ka = F32(s, k); var va = F32(s, v);
            MlxArray mask = maskBias is null ? default : F32(s, maskBias);
            if (causal)
            {
                // keys after each query masked, aligned to the end (KV cache: the queries are the last tq positions)
                var qi = s.Do("arange", r => mlx_arange((MlxArray*)r, tk - tq, tk, 1, MlxDType.Int32, s.S));
                var ki = s.Do("arange", r => mlx_arange((MlxArray*)r, 0, tk, 1, MlxDType.Int32, s.S));
                var allowed = Bin(s, &mlx_greater_equal, Reshape(s, qi, [tq, 1]), Reshape(s, ki, [1, tk]), "causal");
                if (scoresOut is not null || !mask.IsNull)
                {
                    var zero = s.Scalar(0f); var ninf = s.Scalar(float.NegativeInfinity);
                    var neg = s.Do("where", r => mlx_where((MlxArray*)r, allowed, zero, ninf, s.S));
                    mask = mask.IsNull ? neg : Bin(s, &mlx_add, mask, neg, "causal");
                }
            }
            if (scoresOut is null)
            {
                string mode = !mask.IsNull ? "array" : causal ? "causal" : "";
                return s.Do("fast.scaled_dot_product_attention", r =>
                    mlx_fast_scaled_dot_product_attention((MlxArray*)r, qa, ka, va, scale, mode, mask, default, s.S));
            }
            // The .qk activation is wanted: spell the attention out (MLX's fused op does not expose its scores).
            int group = hq / hkv;
            if (group > 1)
            {
                ka = s.Do("repeat", r => mlx_repeat_axis((MlxArray*)r, ka, group, 1, s.S));
                va = s.Do("repeat", r => mlx_repeat_axis((MlxArray*)r, va, group, 1, s.S));
            }
            var sc = Bin(s, &mlx_multiply, Bin(s, &mlx_matmul, qa, Swap(s, ka, 4, 2, 3), "attention"), s.Scalar(scale), "attention");
            if (!mask.IsNull) sc = Bin(s, &mlx_add, sc, mask, "attention");
            Assign(s, scoresOut, sc);
            var p = s.Do("softmax", r => mlx_softmax_axis((MlxArray*)r, sc, -1, true, s.S));
            return Bin(s, &mlx_matmul, p, va, "attention");
        });
    }

    /// <summary>
    /// Writes <paramref name="values"/> (shaped as <paramref name="target"/>) into the tensor: an mlx tensor gets a new
    /// array swapped into its storage (a view: scattered through its flat element indices); a host tensor is written
    /// after evaluation (a download). Call inside an op (lock held).
    /// </summary>
    private void Assign(Scope s, Tensor target, MlxArray values)
    {
        if (target.Storage is MlxStorage ms)
        {
            var vals = AsType(s, values, ToMlx(ms.DType));
            MlxArray next;
            if (target.Offset == 0 && target.IsContiguous && target.ElementCount == ms.ElementCount)
                next = Reshape(s, vals, ms.Shape);
            else
            {
                var all = s.Do("arange", r => mlx_arange((MlxArray*)r, 0, ms.ElementCount, 1, MlxDType.Int32, s.S));
                var shape = target.Shape; var strides = target.Strides;
                var idx = s.Do("as_strided", r =>
                {
                    fixed (int* ps = shape) fixed (long* pst = strides)
                        return mlx_as_strided((MlxArray*)r, all, ps, (nuint)shape.Length, pst, (nuint)strides.Length, (nuint)target.Offset, s.S);
                });
                int count = checked((int)target.ElementCount);
                var flatIdx = Reshape(s, idx, [count]);
                var flatVals = Reshape(s, s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, vals, false, s.S)), [count]);
                var flat = Reshape(s, ms.Array, [checked((int)ms.ElementCount)]);
                var put = s.Do("put_along_axis", r => mlx_put_along_axis((MlxArray*)r, flat, flatIdx, flatVals, 0, s.S));
                next = Reshape(s, put, ms.Shape);
            }
            ms.Swap(s.Detach(next));
            return;
        }
        if (target.Storage is DeviceStorage other)
            throw new ArgumentException($"mlx: cannot write into a tensor of the {other.BackendName} backend");
        if (target.DType != DType.F32 || !target.IsContiguous)
            throw new ArgumentException($"mlx: a host output tensor must be contiguous f32, got {target}");
        var c = s.Do("contiguous", r => mlx_contiguous((MlxArray*)r, AsType(s, values, MlxDType.Float32), false, s.S));
        MlxLibrary.Check(mlx_array_eval(c), "eval");
        long n = target.ByteCount;
        new ReadOnlySpan<float>(mlx_array_data_uint8(c), checked((int)target.ElementCount)).CopyTo(target.AsWritableSpan<float>());
        Stats.CountDownload(n);
    }

    // ------------------------------------------------------------------------------------------------ lookups, quantized

    private static MlxArray Ids(Scope s, ReadOnlySpan<int> ids)
    {
        int n = ids.Length;
        fixed (int* p = ids)
        {
            int one = 0;
            return s.Own(mlx_array_new_data(p == null ? &one : p, &n, 1, MlxDType.Int32));
        }
    }

    public Tensor Take(Tensor table, ReadOnlySpan<int> ids)
    {
        if (table.Rank != 2) throw new ArgumentException($"take: table must be a [rows, dim] tensor, got {table}");
        int rows = table.Shape[0];
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {ids[i]} at position {i} outside table of {rows} rows");
        var copy = ids.ToArray();
        return Op("take", s =>
        {
            var idx = Ids(s, copy);
            Stats.CountUpload(copy.Length * sizeof(int)); // the ids go up: the one upload of a decoding step
            var w = Weight(s, table);
            var r0 = s.Do("take", r => mlx_take_axis((MlxArray*)r, w, idx, 0, s.S));
            return AsType(s, r0, MlxDType.Float32);
        });
    }

    private HeldQuant Quant(QuantizedWeight q)
    {
        if (_quant.TryGetValue(q, out var held)) return held;
        held = new HeldQuant(Upload(q.Weight, true), Upload(q.Scales, true), Upload(q.Biases, true));
        _quant.AddOrUpdate(q, held);
        return held;
    }

    public Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias)
    {
        int k = weight.InFeatures;
        if (x.Rank < 1 || x.Shape[^1] != k)
            throw new ArgumentException($"quantized_matmul: input {Tensor.ShapeString(x.Shape)} does not end in {k} ({weight})");
        return Op("quantized_matmul", s =>
        {
            var q = Quant(weight);
            var xa = F32(s, x);
            var gs = new mlx_optional_int { Value = weight.GroupSize, HasValue = 1 };
            var bits = new mlx_optional_int { Value = weight.Bits, HasValue = 1 };
            var y = s.Do("quantized_matmul", r => mlx_quantized_matmul((MlxArray*)r, xa, q.W, q.Scales, q.Biases, true, gs, bits, "affine", s.S));
            return AddBias(s, AsType(s, y, MlxDType.Float32), bias, weight.OutFeatures, "quantized_matmul");
        });
    }

    public Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids)
    {
        int rows = table.OutFeatures;
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"take: id {ids[i]} at position {i} outside table of {rows} rows");
        var copy = ids.ToArray();
        return Op("quantized_take", s =>
        {
            var q = Quant(table);
            var idx = Ids(s, copy);
            Stats.CountUpload(copy.Length * sizeof(int));
            MlxArray Rows(MlxArray a) => s.Do("take", r => mlx_take_axis((MlxArray*)r, a, idx, 0, s.S));
            // scales/biases widened first: mlx_dequantize computes scale·q + bias in the scales' dtype (bf16 would round)
            var w = Rows(q.W);
            var sc = AsType(s, Rows(q.Scales), MlxDType.Float32); var bi = AsType(s, Rows(q.Biases), MlxDType.Float32);
            var gs = new mlx_optional_int { Value = table.GroupSize, HasValue = 1 };
            var bits = new mlx_optional_int { Value = table.Bits, HasValue = 1 };
            var f32 = new mlx_optional_dtype { Value = MlxDType.Float32, HasValue = 1 };
            return s.Do("dequantize", r => mlx_dequantize((MlxArray*)r, w, sc, bi, gs, bits, "affine", default, f32, s.S));
        });
    }
}
