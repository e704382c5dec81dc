using System.Numerics.Tensors;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Engine.Cpu;

// HiFT's Snake residual block as one backend call. Why: a block is six Snakes, six convs and three adds on [B, C, T]
// activations of up to 64 × 24 000 floats; op by op each is a fresh multi-megabyte tensor, and first-touch page faults on
// fresh memory cost about as much as the convolution that fills it on this machine. Here the two working buffers come
// from a small pool and the sum accumulates in place in the block's one output; the Snake, conv and add kernels are the
// backend's own, in the same order, so the result equals Composite.SnakeResBlock bit for bit.
public sealed unsafe partial class CpuBackend
{
    private readonly FloatPool _pool = new();

    public Tensor SnakeResBlock(Tensor x, SnakeResBlockWeights weights)
    {
        int rounds = weights.Convs1.Count, c = weights.Channels, k = weights.Kernel;
        if (!UsePackedConvs || !ConvGemm.IsSupported || x.Rank != 3 || x.Shape[1] != c
            || weights.Convs1.Concat(weights.Convs2).Any(w => w.DType != DType.F32 || w.Rank != 3 || w.Shape[0] != c || w.Shape[1] != c || w.Shape[2] != k))
        {
            using var _ = Ops.Use(this);
            return Composite.SnakeResBlock(x, weights);
        }
        x = F32(x);
        int bsz = x.Shape[0], t = x.Shape[2];
        long n = x.ElementCount;
        var a = _pool.Rent(n);
        var b = _pool.Rent(n);
        try
        {
            Tensor? acc = null;
            for (int j = 0; j < rounds; j++)
            {
                int d = weights.Dilations[j];
                float* cur = acc is null ? Ptr(x) : Ptr(acc);
                SnakeRows(cur, weights.Alpha1[j].ToFloatArray(), a.Pointer, bsz * c, c, t);
                ConvInto(a.Pointer, weights.Convs1[j], weights.Convs1Bias[j], bsz, c, t, (k * d - d) / 2, d, b.Pointer);
                SnakeRows(b.Pointer, weights.Alpha2[j].ToFloatArray(), b.Pointer, bsz * c, c, t);
                ConvInto(b.Pointer, weights.Convs2[j], weights.Convs2Bias[j], bsz, c, t, (k - 1) / 2, 1, a.Pointer);
                acc ??= New(x.Shape);
                // x = xt + x, as Composite's Ops.Add(xt, x); in place once acc holds x
                TensorPrimitives.Add(new ReadOnlySpan<float>(a.Pointer, (int)n), new ReadOnlySpan<float>(cur, (int)n), Out(acc));
            }
            GC.KeepAlive(x);
            return acc ?? x;
        }
        finally
        {
            _pool.Return(a);
            _pool.Return(b);
        }
    }

    /// <summary>Snake over rows of length t (row r has channel r mod c), rows split across the workers as <see cref="Snake"/>.</summary>
    private static void SnakeRows(float* src, float[] alpha, float* dst, int rows, int c, int t)
    {
        if (alpha.Length != c) throw new ArgumentException($"snake: alpha has {alpha.Length} values for {c} channels");
        int parts = rows * (long)t < 1 << 16 ? 1 : Math.Min(Gemm.MaxThreads, rows);
        Parallel.For(0, parts, new ParallelOptions { MaxDegreeOfParallelism = parts }, part =>
        {
            var (r0, r1) = Gemm.Part(rows, parts, part, 1);
            for (int r = r0; r < r1; r++)
                VectorTrig.Snake(new ReadOnlySpan<float>(src + (long)r * t, t), alpha[r % c], new Span<float>(dst + (long)r * t, t));
        });
    }

    /// <summary>A length-preserving stride-1 conv [C, C, K] of x [B, C, T] into y through the packed weight.</summary>
    private void ConvInto(float* x, Tensor weight, Tensor bias, int bsz, int c, int t, int padding, int dilation, float* y)
    {
        int kw = weight.Shape[2];
        int tout = t + 2 * padding - dilation * (kw - 1);
        if (tout != t) throw new ArgumentException($"snake resblock: conv (K {kw}, dilation {dilation}, padding {padding}) does not keep the length {t}");
        var packed = _convPacks.GetValue(weight, w => ConvGemm.PackWeight(w.Contiguous().AsSpan<float>(), w.Shape[0], w.Shape[1] * w.Shape[2]));
        var bv = BiasArray(bias, c, "conv1d");
        fixed (float* pb = bv)
            for (int bi = 0; bi < bsz; bi++)
                ConvGemm.Conv(packed, c, c, kw, x + (long)bi * c * t, t, 1, padding, dilation, pb, y + (long)bi * c * t, t, Gemm.MaxThreads);
    }
}

/// <summary>
/// A small thread-safe pool of pinned float buffers for a backend's internal scratch (never handed out as tensors):
/// at most four buffers of a length and 256 MB in all; a buffer that would pass the cap is dropped.
/// </summary>
internal sealed class FloatPool(long capBytes = 256L << 20)
{
    private readonly Dictionary<long, Stack<PinnedFloats>> _free = new();
    private long _bytes;

    public PinnedFloats Rent(long length)
    {
        lock (_free)
            if (_free.TryGetValue(length, out var stack) && stack.TryPop(out var p))
            {
                _bytes -= length * sizeof(float);
                return p;
            }
        return new PinnedFloats(length);
    }

    public void Return(PinnedFloats p)
    {
        long bytes = (long)p.Length * sizeof(float);
        lock (_free)
        {
            if (_bytes + bytes > capBytes) return;
            if (!_free.TryGetValue(p.Length, out var stack)) _free[p.Length] = stack = new Stack<PinnedFloats>();
            if (stack.Count >= 4) return;
            stack.Push(p);
            _bytes += bytes;
        }
    }
}
