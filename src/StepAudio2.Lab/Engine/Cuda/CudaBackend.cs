using System.Runtime.CompilerServices;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine.Cuda;

/// <summary>Arithmetic of the CUDA backend's matrix products.</summary>
public enum CudaPrecision
{
    /// <summary>float32 weights and GEMMs with TF32 off: for parity with the CPU backend and the reference dumps.</summary>
    Fp32,
    /// <summary>bf16 weights of linear layers (the official inference precision), float32 accumulation and activations;
    /// other float32 GEMMs (convolutions, attention) may use TF32.</summary>
    Bf16,
}

/// <summary>
/// The CUDA backend: every <see cref="IBackend"/> op on one NVIDIA GPU through the driver API, NVRTC-compiled kernels
/// (<see cref="CudaKernels"/>) and cuBLAS. Results are <see cref="CudaStorage"/> tensors; host inputs are uploaded, host
/// weights once per weight (cached by storage, offset and shape). Mirrors the CPU backend op for op
/// (Engine/Cpu/CpuBackend.cs) and, for the roles of the ops, MLX's <c>mlx/backend/cuda</c>.
/// </summary>
public sealed unsafe partial class CudaBackend : IBackend
{
    private static readonly CpuBackend s_cpu = new();
    private readonly ConditionalWeakTable<TensorStorage, Dictionary<WeightKey, Tensor>> _weights = new();

    /// <summary>Which view of a host storage a cached device weight holds. Compared by value without allocating: the
    /// lookup runs for every weight of every op (~300 per decoded token); a formatted string key cost a few µs each.</summary>
    /// <summary>Layout: 0 as the tensor is, 1 lane-interleaved words (<see cref="WeightUse.Lanes"/>), 2 bf16 scale/bias pairs.</summary>
    private readonly record struct WeightKey(long Offset, DType Source, DType Target, int[] Shape, long[] Strides, byte Layout = 0)
    {
        public bool Equals(WeightKey o) => Offset == o.Offset && Source == o.Source && Target == o.Target && Layout == o.Layout
            && Shape.AsSpan().SequenceEqual(o.Shape) && Strides.AsSpan().SequenceEqual(o.Strides);

        public override int GetHashCode()
        {
            var h = new HashCode();
            h.Add(Offset); h.Add(Source); h.Add(Target); h.Add(Layout);
            foreach (int d in Shape) h.Add(d);
            return h.ToHashCode();
        }
    }
    private readonly Dictionary<(int Hd, float Theta), (Tensor Cos, Tensor Sin, int Positions)> _rope = new();

    public CudaBackend(CudaPrecision precision = CudaPrecision.Fp32, CudaDevice? device = null)
    {
        Device = device ?? CudaDevice.Shared;
        Precision = precision;
        GemmCompute = precision == CudaPrecision.Fp32 ? CudaApi.Compute32F : CudaApi.Compute32FFastTf32;
    }

    public CudaDevice Device { get; }
    public CudaPrecision Precision { get; }
    private int GemmCompute { get; }
    public string Name => Precision == CudaPrecision.Fp32 ? "cuda" : "cuda-bf16";
    public BackendStats Stats { get; } = new();

    public string Describe() => $"cuda backend, {Precision.ToString().ToLowerInvariant()}, {Device.Describe()}";

    /// <summary>The precision named on a command line ("fp32" or "bf16"); anything else fails naming both.</summary>
    public static CudaPrecision ParsePrecision(string text) => text.ToLowerInvariant() switch
    {
        "fp32" or "f32" or "float32" => CudaPrecision.Fp32,
        "bf16" or "bfloat16" => CudaPrecision.Bf16,
        _ => throw new ArgumentException($"unknown precision '{text}'; known: fp32, bf16"),
    };

    /// <summary>Waits for every queued kernel (timings; otherwise transfers synchronise by themselves).</summary>
    public void Synchronize() => Device.Synchronize();

    // ------------------------------------------------------------------------------------------------ helpers

    /// <summary>Start of every op: the context on this thread, the count, and buffers dropped since the last op returned
    /// to the pool (only here, between ops, so no buffer an op is about to read is freed under it).</summary>
    private void Begin()
    {
        Device.MakeCurrentIfNeeded();
        Device.DrainDropped();
        Stats.CountOp();
    }

    private Tensor New(DType dtype, int[] shape)
    {
        long bytes = Tensor.CountElements(shape) * dtype.SizeOf();
        var buffer = Device.Allocate(bytes);
        return new Tensor(new CudaStorage(this, buffer, bytes), dtype, shape);
    }

    private Tensor NewF32(int[] shape) => New(DType.F32, shape);

    private bool Mine(Tensor t) => t.Storage is CudaStorage cs && ReferenceEquals(cs.Owner, this);

    /// <summary>Device address of element [0, …, 0] of one of this backend's tensors.</summary>
    private static ulong Addr(Tensor t) => ((CudaStorage)t.Storage).Buffer.Ptr + (ulong)(t.Offset * t.DType.SizeOf());

    private ulong AddrOrZero(Tensor? t) => t is null ? 0 : Addr(t);

    /// <summary>Keeps its arguments reachable until this call (as <see cref="GC.KeepAlive"/>): a dropped input's buffer is
    /// only freed at the next op's start, after the kernels queued here.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Keep(params object?[] objects) => GC.KeepAlive(objects);

    /// <summary>An f32 contiguous tensor of this backend with x's values (uploaded when x is a host tensor, counted).</summary>
    private Tensor Dev(Tensor x)
    {
        if (Mine(x)) return x.DType == DType.F32 && x.IsContiguous ? x : ToF32(x);
        if (!x.IsHost) x = x.ToHost(); // another backend's device tensor
        var h = (x.DType == DType.F32 ? x : x.To(DType.F32)).Contiguous();
        var d = NewF32(h.Shape);
        Device.Upload(Addr(d), h.ContiguousBytes());
        Stats.CountUpload(h.ByteCount);
        return d;
    }

    private enum WeightUse
    {
        /// <summary>Matrix operand of a linear layer: bf16 in bf16 mode, f32 in fp32 mode.</summary>
        Gemm,
        /// <summary>Always f32 (biases, norm weights, conv kernels, quantization scales).</summary>
        F32,
        /// <summary>As stored when f32 or bf16 (embedding tables), else f32; u32 packed codes as they are.</summary>
        Raw,
        /// <summary>u32 packed 4/8-bit codes [out, words] rearranged once into the decode GEMVs' lane-interleaved layout
        /// (<c>qpack_lanes</c>; <see cref="FastQGemv"/> matrices only, which every device kernel then reads that way).</summary>
        Lanes,
    }

    /// <summary>A weight on the device, uploaded once per weight (cached by its host storage, offset, shape and target dtype).
    /// A device tensor is used as it is (converted when its dtype does not fit).</summary>
    private Tensor Weight(Tensor w, WeightUse use)
    {
        if (use == WeightUse.Lanes) return LaneWords(w);
        DType target = use switch
        {
            WeightUse.Gemm => Precision == CudaPrecision.Bf16 ? DType.BF16 : DType.F32,
            WeightUse.Raw => w.DType is DType.BF16 or DType.F32 or DType.U32 ? w.DType : DType.F32,
            _ => DType.F32,
        };
        if (Mine(w))
        {
            if (w.IsContiguous && w.DType == target) return w;
            if (w.IsContiguous && (w.DType == target || (use != WeightUse.F32 && w.DType is DType.F32 or DType.BF16))) return w;
            return target == DType.BF16 ? Cast(w, DType.BF16) : ToF32(w);
        }
        if (!w.IsHost) w = w.ToHost();
        var cache = _weights.GetOrCreateValue(w.Storage);
        var key = new WeightKey(w.Offset, w.DType, target, w.Shape, w.Strides);
        lock (cache)
        {
            if (cache.TryGetValue(key, out var hit)) return hit;
            var d = UploadWeight((w.DType == target ? w : w.To(target)).Contiguous());
            cache[key with { Shape = (int[])w.Shape.Clone(), Strides = (long[])w.Strides.Clone() }] = d; // the key keeps its own copies
            return d;
        }
    }

    /// <summary><see cref="WeightUse.Lanes"/>: the words uploaded (or taken from the device) and rearranged by
    /// <c>qpack_lanes</c> into a buffer of their own, cached like any weight (the stored order is not kept on the device).</summary>
    private Tensor LaneWords(Tensor w)
    {
        if (w.DType != DType.U32 || w.Rank != 2 || w.Shape[1] % 4 != 0)
            throw new ArgumentException($"quantized words {w.DType} {Tensor.ShapeString(w.Shape)}: expected u32 [out, words] with a multiple of 4 words a row");
        if (!w.IsHost && !Mine(w)) w = w.ToHost();
        var cache = _weights.GetOrCreateValue(w.Storage);
        var key = new WeightKey(w.Offset, w.DType, DType.U32, w.Shape, w.Strides, Layout: 1);
        lock (cache)
        {
            if (cache.TryGetValue(key, out var hit)) return hit;
            var src = Mine(w) ? (w.IsContiguous ? w : Contiguous(w)) : UploadWeight(w.Contiguous());
            var d = New(DType.U32, w.Shape);
            Device.Launch(CudaKernels.Names.QPackLanes, w.ElementCount, [Addr(src), Addr(d), (long)w.Shape[0], w.Shape[1]]);
            Keep(src);
            cache[key with { Shape = (int[])w.Shape.Clone(), Strides = (long[])w.Strides.Clone() }] = d;
            return d;
        }
    }

    private static int Rows(Tensor x, int d) => (int)(x.ElementCount / Math.Max(d, 1));

    /// <summary>The 16-byte-vector 4/8-bit GEMVs apply: a power-of-two group (its vector index is a shift) and rows of
    /// whole 32-code blocks (every row starts 16-byte aligned; MLX's group sizes are 32, 64 and 128).</summary>
    private static bool FastQGemv(QuantizedWeight w) => w.Bits is (4 or 8) && System.Numerics.BitOperations.IsPow2(w.GroupSize) && w.InFeatures % 32 == 0;

    /// <summary>Blocks of the decode GEMV kernels (256 threads): two tasks a block — a task is <paramref name="rowsPerTask"/>
    /// output rows (2: a row pair; 1: a SwiGLU row), each split over four warps (GEMV_SLICES in the kernel source).</summary>
    private static uint GemvBlocks(int rows, int rowsPerTask) => (uint)((rows + 2 * rowsPerTask - 1) / (2 * rowsPerTask));

    /// <summary>Blocks of the 4/8-bit decode GEMVs (256 threads = 8 warps): 8 / QGEMV_SLICES tasks a block, each split
    /// over QGEMV_SLICES warps (<see cref="CudaKernels.QGemvSlices"/>, default 2: the form the op checks ran on a GPU; one
    /// warp measured 198.5 against 186.5 int4 tok/s in the same call, timing only).</summary>
    private static uint QGemvBlocks(int rows, int rowsPerTask)
    {
        int perBlock = 8 / CudaKernels.QGemvSlices * rowsPerTask;
        return (uint)((rows + perBlock - 1) / perBlock);
    }

    /// <summary>The 16-byte-load bf16 GEMV applies: rows of whole 16-byte groups, aligned weight and input.</summary>
    private static bool VecGemv(int k, ulong w, ulong x) => k % 8 == 0 && w % 16 == 0 && x % 16 == 0;

    /// <summary>Threads for <c>mask_softmax_rows</c>: enough for eight scores each (the row then stays in registers), 128 to 1024.</summary>
    private static uint SoftmaxBlock(int tk) => Math.Clamp(System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max((tk + 7) / 8, 1)), 128u, 1024u);

    private static uint RowBlock(int d) => d >= 4096 ? 1024u : d >= 1024 ? 512u : d >= 256 ? 256u : 128u;

    /// <summary>A device tensor (f32 or bf16) of uniform values in [−scale, scale) made on the device from a hash of
    /// (seed, index): full-size benchmark weights without uploading gigabytes.</summary>
    public Tensor RandomUniform(DType dtype, int[] shape, ulong seed, float scale)
    {
        if (dtype is not (DType.F32 or DType.BF16)) throw new ArgumentException($"random_uniform: dtype {dtype.ShortName()} not supported (f32 or bf16)");
        Begin();
        var t = New(dtype, (int[])shape.Clone());
        Device.Launch(CudaKernels.Names.FillUniform, t.ElementCount, [Addr(t), (int)dtype, t.ElementCount, (long)seed, scale]);
        return t;
    }

    // ------------------------------------------------------------------------------------------------ place and layout

    public Tensor FromHost(Tensor host)
    {
        if (Mine(host)) return host;
        Device.MakeCurrentIfNeeded();
        if (!host.IsHost) host = host.ToHost();
        var h = host.Contiguous();
        var d = New(h.DType, h.Shape);
        Device.Upload(Addr(d), h.ContiguousBytes());
        Stats.CountUpload(h.ByteCount);
        return d;
    }

    public Tensor ToHost(Tensor x)
    {
        if (x.IsHost) return x;
        if (!Mine(x)) return x.ToHost();
        Device.MakeCurrentIfNeeded();
        var c = Contiguous(x);
        var h = Tensor.Zeros(c.DType, c.Shape);
        if (h.ElementCount > 0)
        {
            var span = ((ManagedStorage)h.Storage).WritableSpan;
            Device.Download(span[..checked((int)c.ByteCount)], Addr(c));
        }
        Stats.CountDownload(h.ByteCount);
        Keep(c);
        return h;
    }

    public Tensor Zeros(DType dtype, int[] shape)
    {
        Begin();
        var t = New(dtype, (int[])shape.Clone());
        Device.Zero(Addr(t), t.ByteCount);
        return t;
    }

    public Tensor Contiguous(Tensor x)
    {
        if (!Mine(x)) return FromHost(x.IsHost ? x.Contiguous() : x.ToHost());
        if (x.IsContiguous) return x;
        Begin();
        var y = New(x.DType, (int[])x.Shape.Clone());
        CopyStrided(x, Addr(y), Tensor.ContiguousStrides(x.Shape));
        Keep(x);
        return y;
    }

    /// <summary>Copies the (strided) view <paramref name="src"/> to <paramref name="dst"/> laid out with <paramref name="dstStrides"/>.</summary>
    private void CopyStrided(Tensor src, ulong dst, long[] dstStrides)
    {
        var meta = StridedMeta.Create(src.Shape, src.Strides, dstStrides);
        string k = src.DType.SizeOf() switch { 1 => CudaKernels.Names.Copy1, 2 => CudaKernels.Names.Copy2, 4 => CudaKernels.Names.Copy4, _ => CudaKernels.Names.Copy8 };
        Device.Launch(k, src.ElementCount, [Addr(src), dst, src.ElementCount], &meta);
    }

    /// <summary>A contiguous f32 copy of one of this backend's tensors, any dtype and strides.</summary>
    private Tensor ToF32(Tensor x)
    {
        var y = NewF32((int[])x.Shape.Clone());
        var meta = StridedMeta.Create(x.Shape, x.Strides);
        Device.Launch(CudaKernels.Names.ToF32, x.ElementCount, [Addr(x), (int)x.DType, Addr(y), x.ElementCount], &meta);
        Keep(x);
        return y;
    }

    public Tensor Cast(Tensor x, DType dtype)
    {
        if (!Mine(x)) x = FromHost(x);
        Begin();
        if (x.DType == dtype) return Contiguous(x);
        if (dtype == DType.F32) return ToF32(x);
        if (dtype == DType.BF16)
        {
            var f = x.DType == DType.F32 && x.IsContiguous ? x : ToF32(x);
            var y = New(DType.BF16, (int[])x.Shape.Clone());
            Device.Launch(CudaKernels.Names.F32ToBf16, f.ElementCount, [Addr(f), Addr(y), f.ElementCount]);
            Keep(f, x);
            return y;
        }
        // rare targets (integers, f16, f64): convert on the host, where every conversion exists, and upload back
        return FromHost(ToHost(x).To(dtype));
    }

    public void SliceUpdate(Tensor dst, Tensor src, int axis, int start)
    {
        if (dst.IsHost) { s_cpu.SliceUpdate(dst, src.IsHost ? src : ToHost(src), axis, start); return; }
        if (!Mine(dst)) throw new ArgumentException($"slice_update: destination lives on the {((DeviceStorage)dst.Storage).BackendName} backend, not this cuda backend");
        axis = ShapeRules.SliceUpdate(dst, src, axis, start);
        var target = dst.Slice(axis, start, src.Shape[axis]);
        var s = Mine(src) ? src : FromHost(src);
        Begin();
        if (s.ElementCount == 0) return;
        CopyStrided(s, Addr(target), target.Strides);
        Keep(s, target);
    }

    // ------------------------------------------------------------------------------------------------ linear algebra

    public Tensor Matmul(Tensor a, Tensor b)
    {
        Begin();
        if (a.Rank < 2 || b.Rank < 2) throw new ArgumentException($"matmul needs rank ≥ 2, got {Tensor.ShapeString(a.Shape)} and {Tensor.ShapeString(b.Shape)}");
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k) throw new ArgumentException($"matmul: inner dims differ: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}");
        var da = Dev(a); var db = Dev(b);
        int batchA = (int)(a.ElementCount / Math.Max((long)m * k, 1)), batchB = (int)(b.ElementCount / Math.Max((long)k * n, 1));
        if (batchB != 1 && batchB != batchA) throw new ArgumentException($"matmul: batch dims differ: {Tensor.ShapeString(a.Shape)} @ {Tensor.ShapeString(b.Shape)}");
        var shape = a.Shape.ToArray();
        shape[^1] = n;
        var c = NewF32(shape);
        if (c.ElementCount == 0) return c;
        if (k == 0) { Device.Zero(Addr(c), c.ByteCount); return c; }
        // row-major C = A·B is column-major Cᵀ = Bᵀ·Aᵀ
        Device.Gemm(false, false, n, m, k, Addr(db), CudaApi.R32F, n, batchB == 1 ? 0 : (long)k * n, Addr(da), k, (long)m * k,
            Addr(c), n, (long)m * n, batchA, GemmCompute);
        Keep(da, db);
        return c;
    }

    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias)
    {
        Begin();
        if (weight.Rank != 2) throw new ArgumentException($"linear: weight must be [out, in], got {Tensor.ShapeString(weight.Shape)}");
        if (weight.DType is not (DType.F32 or DType.BF16 or DType.F16)) throw new ArgumentException($"linear: weight dtype {weight.DType.ShortName()} not supported (f32 or bf16)");
        int n = weight.Shape[0], k = weight.Shape[1];
        if (x.Rank < 1 || x.Shape[^1] != k) throw new ArgumentException($"linear: input {Tensor.ShapeString(x.Shape)} does not end in {k} (weight {Tensor.ShapeString(weight.Shape)})");
        if (bias is not null && bias.ElementCount != n) throw new ArgumentException($"linear: bias has {bias.ElementCount} elements, expected {n}");
        var xd = Dev(x);
        var w = Weight(weight, WeightUse.Gemm);
        var b = bias is null ? null : Weight(bias, WeightUse.F32);
        int m = Rows(xd, k);
        var shape = x.Shape.ToArray();
        shape[^1] = n;
        var y = NewF32(shape);
        LinearInto(Addr(xd), m, k, w, AddrOrZero(b), Addr(y));
        Keep(xd, w, b);
        return y;
    }

    /// <summary>y[m, n] = x[m, k]·Wᵀ (+ bias) for W [n, k] on the device (f32 or bf16).</summary>
    private void LinearInto(ulong x, int m, int k, Tensor w, ulong bias, ulong y)
    {
        int n = w.Shape[0];
        if (m == 0 || n == 0) return;
        ulong wp = Addr(w);
        if (w.DType == DType.BF16)
        {
            if (m == 1)
            {
                // one token: a bandwidth-bound GEMV streaming the bf16 rows once (16-byte loads when aligned)
                if (VecGemv(k, wp, x)) Device.LaunchGrid(CudaKernels.Names.GemvBf16, GemvBlocks(n, 2), 256, [wp, 0UL, 0UL, bias, 0UL, 0UL, y, 0UL, 0UL, n, 0, 0, x, k]);
                else Device.LaunchGrid(CudaKernels.Names.GemvBf16Scalar, (uint)((n + 7) / 8), 256, [wp, x, bias, y, n, k]);
                return;
            }
            var xb = New(DType.BF16, [m, k]);
            Device.Launch(CudaKernels.Names.F32ToBf16, (long)m * k, [x, Addr(xb), (long)m * k]);
            Device.Gemm(true, false, n, m, k, wp, CudaApi.R16BF, k, 0, Addr(xb), k, 0, y, n, 0, 1, CudaApi.Compute32F);
            Keep(xb);
        }
        else
        {
            if (w.DType != DType.F32) throw new ArgumentException($"linear: device weight dtype {w.DType.ShortName()} not supported");
            Device.Gemm(true, false, n, m, k, wp, CudaApi.R32F, k, 0, x, k, 0, y, n, 0, 1, GemmCompute);
        }
        if (bias != 0) Device.Launch(CudaKernels.Names.RowBias, (long)m * n, [y, bias, (long)m * n, n]);
    }

    public Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups)
    {
        Begin();
        bool batched = x.Rank == 3;
        var xs = batched ? x.Shape : [1, .. x.Shape];
        if (xs.Length != 3 || weight.Rank != 3) throw new ArgumentException($"conv1d: input {Tensor.ShapeString(x.Shape)} must be [B, C, T], weight [Cout, Cin/groups, K]");
        int bsz = xs[0], cin = xs[1], t = xs[2];
        int cout = weight.Shape[0], cinG = weight.Shape[1], kw = weight.Shape[2];
        if (groups < 1 || cin != cinG * groups || cout % groups != 0)
            throw new ArgumentException($"conv1d: input channels {cin} / weight {Tensor.ShapeString(weight.Shape)} / groups {groups} disagree");
        int tout = (t + 2 * padding - dilation * (kw - 1) - 1) / stride + 1;
        if (tout <= 0) throw new ArgumentException($"conv1d: output length {tout} ≤ 0 for input length {t}");
        if (bias is not null && bias.ElementCount != cout) throw new ArgumentException($"conv1d: bias has {bias.ElementCount} elements, expected {cout}");
        var xd = Dev(x);
        var w = Weight(weight, WeightUse.F32);
        var b = bias is null ? null : Weight(bias, WeightUse.F32);
        var y = NewF32([bsz, cout, tout]);
        if (groups == 1)
        {
            int kk = cin * kw;
            Tensor? cols = null;
            ulong colsP;
            if (kw == 1 && stride == 1 && padding == 0) colsP = Addr(xd); // a 1×1 convolution is a GEMM on x itself
            else
            {
                cols = NewF32([bsz, kk, tout]);
                colsP = Addr(cols);
                Device.Launch(CudaKernels.Names.Im2col, (long)bsz * kk * tout, [Addr(xd), colsP, bsz, cin, t, kw, tout, stride, padding, dilation]);
            }
            // y_b [Cout, Tout] = W [Cout, kk]·cols_b [kk, Tout]: column-major y_bᵀ = cols_bᵀ·Wᵀ
            Device.Gemm(false, false, tout, cout, kk, colsP, CudaApi.R32F, tout, (long)kk * tout, Addr(w), kk, 0, Addr(y), tout, (long)cout * tout, bsz, GemmCompute);
            if (b is not null) Device.Launch(CudaKernels.Names.ChannelBias, y.ElementCount, [Addr(y), Addr(b), y.ElementCount, cout, tout]);
            Keep(cols);
        }
        else
        {
            Device.Launch(CudaKernels.Names.ConvDirect, y.ElementCount,
                [Addr(xd), Addr(w), AddrOrZero(b), Addr(y), bsz, cin, t, cout, kw, tout, stride, padding, dilation, groups]);
        }
        Keep(xd, w, b);
        return batched ? y : y.Reshape(cout, tout);
    }

    public Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation)
    {
        Begin();
        bool batched = x.Rank == 3;
        var xs = batched ? x.Shape : [1, .. x.Shape];
        int bsz = xs[0], cin = xs[1], t = xs[2];
        if (xs.Length != 3 || weight.Rank != 3 || weight.Shape[0] != cin)
            throw new ArgumentException($"conv_transpose1d: weight {Tensor.ShapeString(weight.Shape)} must be [Cin={cin}, Cout, K]");
        int cout = weight.Shape[1], kw = weight.Shape[2];
        int tout = (t - 1) * stride - 2 * padding + dilation * (kw - 1) + outputPadding + 1;
        if (tout <= 0) throw new ArgumentException($"conv_transpose1d: output length {tout} ≤ 0 for input length {t}");
        if (bias is not null && bias.ElementCount != cout) throw new ArgumentException($"conv_transpose1d: bias has {bias.ElementCount} elements, expected {cout}");
        var xd = Dev(x);
        var w = Weight(weight, WeightUse.F32);
        var b = bias is null ? null : Weight(bias, WeightUse.F32);
        int coK = cout * kw;
        // cols_b [T, Cout·K] = x_bᵀ [T, Cin]·W [Cin, Cout·K]: column-major cols_bᵀ = Wᵀ-as-stored · x_b
        var cols = NewF32([bsz, t, coK]);
        Device.Gemm(false, true, coK, t, cin, Addr(w), CudaApi.R32F, coK, 0, Addr(xd), t, (long)cin * t, Addr(cols), coK, (long)t * coK, bsz, GemmCompute);
        var y = NewF32([bsz, cout, tout]);
        Device.Launch(CudaKernels.Names.Col2im, y.ElementCount, [Addr(cols), AddrOrZero(b), Addr(y), bsz, t, cout, kw, tout, stride, padding, dilation]);
        Keep(xd, w, b, cols);
        return batched ? y : y.Reshape(cout, tout);
    }

    public Tensor AvgPool1d(Tensor x, int kernel, int stride)
    {
        Begin();
        var xd = Dev(x);
        int t = x.Shape[^1];
        int tout = Math.Max((t - kernel) / stride + 1, 0);
        int rows = Rows(xd, t);
        var shape = x.Shape.ToArray();
        shape[^1] = tout;
        var y = NewF32(shape);
        Device.Launch(CudaKernels.Names.AvgPool, (long)rows * tout, [Addr(xd), Addr(y), (long)rows, t, tout, kernel, stride]);
        Keep(xd);
        return y;
    }

    // ------------------------------------------------------------------------------------------------ attention

    public Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut)
    {
        Begin();
        if (q.Rank != 4 || k.Rank != 4 || v.Rank != 4)
            throw new ArgumentException("scaled_dot_product_attention: q, k, v must be [B, heads, T, D]");
        int b = q.Shape[0], hq = q.Shape[1], tq = q.Shape[2], d = q.Shape[3];
        int hkv = k.Shape[1], tk = k.Shape[2], dv = v.Shape[3];
        if (k.Shape[0] != b || v.Shape[0] != b || k.Shape[3] != d || v.Shape[1] != hkv || v.Shape[2] != tk || hkv == 0 || hq % hkv != 0)
            throw new ArgumentException($"scaled_dot_product_attention: q {Tensor.ShapeString(q.Shape)}, k {Tensor.ShapeString(k.Shape)}, v {Tensor.ShapeString(v.Shape)} disagree");
        if (scoresOut is not null && (scoresOut.DType != DType.F32 || !scoresOut.IsContiguous || !scoresOut.Shape.SequenceEqual(new[] { b, hq, tq, tk })))
            throw new ArgumentException($"scaled_dot_product_attention: scoresOut must be f32 [{b}, {hq}, {tq}, {tk}]");
        int group = hq / hkv;
        // Q, K, V used in place when each row's values are contiguous (a view of a KV-cache buffer, or heads of a
        // projection [B, T, H, D] viewed as [B, H, T, D]: the GEMMs take the row and head strides), else copied. Q must
        // be contiguous for attn_decode, and when a KV head serves several query heads (their rows are one GEMM operand).
        bool few = maskBias is null && scoresOut is null && tq <= AttnFewRows;
        bool qInPlace = !few && group == 1 && Rows(q) && (b == 1 || q.Strides[0] == hq * q.Strides[1]);
        var qd = qInPlace ? q : Dev(q);
        var kd = Rows(k) ? k : Dev(k);
        var vd = Rows(v) ? v : Dev(v);
        var o = NewF32([b, hq, tq, dv]);
        if (o.ElementCount == 0) return o;
        if (few && AttendFew(qd, kd, vd, o, scale, causal)) { Keep(qd, kd, vd); return o; }
        long qBatch = qInPlace ? q.Strides[0] : (long)hq * tq * d, qHead = qInPlace ? q.Strides[1] : (long)group * tq * d;
        int ldq = qInPlace ? (int)q.Strides[2] : d;
        Tensor? mask = maskBias is null ? null : Dev(maskBias);
        var meta = mask is null ? default : StridedMeta.Create([b, hq, tq, tk], ShapeRules.BroadcastStrides(mask.Shape, [b, hq, tq, tk]));
        var scores = NewF32([b, hq, tq, tk]);
        Tensor? scoresDev = scoresOut is null ? null : Mine(scoresOut) ? scoresOut : NewF32([b, hq, tq, tk]);
        int gq = group * tq; // the query heads of one KV head are consecutive rows: [B·Hkv] batches of [group·Tq, D]
        bool uniform = b == 1 || (kd.Strides[0] == hkv * kd.Strides[1] && vd.Strides[0] == hkv * vd.Strides[1]);
        int batches = uniform ? 1 : b, per = uniform ? b * hkv : hkv;
        for (int bi = 0; bi < batches; bi++)
        {
            ulong kp = Addr(kd) + (ulong)(bi * kd.Strides[0] * 4), vp = Addr(vd) + (ulong)(bi * vd.Strides[0] * 4);
            ulong qp = Addr(qd) + (ulong)(bi * qBatch * 4), sp = Addr(scores) + (ulong)((long)bi * hq * tq * tk * 4);
            // S [gq, Tk] = Q [gq, D]·Kᵀ: column-major Sᵀ = K(T)·Qᵀ
            Device.Gemm(true, false, tk, gq, d, kp, CudaApi.R32F, (int)kd.Strides[2], kd.Strides[1], qp, ldq, qHead, sp, tk, (long)gq * tk, per, GemmCompute);
        }
        Device.LaunchGrid(CudaKernels.Names.MaskSoftmax, (uint)((long)b * hq * tq), SoftmaxBlock(tk),
            [Addr(scores), AddrOrZero(mask), AddrOrZero(scoresDev), hq, tq, tk, scale, causal ? 1 : 0, tk - tq], &meta);
        for (int bi = 0; bi < batches; bi++)
        {
            ulong vp = Addr(vd) + (ulong)(bi * vd.Strides[0] * 4);
            ulong sp = Addr(scores) + (ulong)((long)bi * hq * tq * tk * 4), op = Addr(o) + (ulong)((long)bi * hq * tq * dv * 4);
            // O [gq, Dv] = P [gq, Tk]·V [Tk, Dv]: column-major Oᵀ = Vᵀ·Pᵀ
            Device.Gemm(false, false, dv, gq, tk, vp, CudaApi.R32F, (int)vd.Strides[2], vd.Strides[1], sp, tk, (long)gq * tk, op, dv, (long)gq * dv, per, GemmCompute);
        }
        if (scoresOut is not null && !Mine(scoresOut))
        {
            if (!scoresOut.IsHost) throw new ArgumentException("scaled_dot_product_attention: scoresOut lives on another backend");
            var host = ToHost(scoresDev!);
            host.AsSpan<float>().CopyTo(scoresOut.AsWritableSpan<float>());
        }
        Keep(qd, kd, vd, mask, scores, scoresDev);
        return o;

        bool Rows(Tensor t) => Mine(t) && t.DType == DType.F32 && t.Strides[3] == 1 && t.Strides[2] >= t.Shape[3] && t.Strides[1] >= 0
            && t.Strides[2] <= int.MaxValue;
    }

    // ------------------------------------------------------------------------------------------------ quantized

    public Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias)
    {
        Begin();
        int n = weight.OutFeatures, k = weight.InFeatures;
        if (x.Rank < 1 || x.Shape[^1] != k) throw new ArgumentException($"quantized_matmul: input {Tensor.ShapeString(x.Shape)} does not end in {k} ({weight})");
        if (bias is not null && bias.ElementCount != n) throw new ArgumentException($"quantized_matmul: bias has {bias.ElementCount} elements, expected {n}");
        var xd = Dev(x);
        // the fast GEMV reads x as float4s; its matrix is stored for it alone (lanes), so an unaligned row is copied
        if (FastQGemv(weight) && Addr(xd) % 16 != 0)
        {
            var aligned = NewF32((int[])xd.Shape.Clone());
            Device.CopyDevice(Addr(aligned), Addr(xd), xd.ByteCount);
            Keep(xd);
            xd = aligned;
        }
        var (wq, sc, bi, packed) = QuantParts(weight);
        var b = bias is null ? null : Weight(bias, WeightUse.F32);
        int m = Rows(xd, k);
        var shape = x.Shape.ToArray();
        shape[^1] = n;
        var y = NewF32(shape);
        if (m == 1 && FastQGemv(weight))
            Device.LaunchGrid(weight.Bits == 4 ? CudaKernels.Names.QGemv4 : CudaKernels.Names.QGemv8, QGemvBlocks(n, 2), 256,
                [Addr(wq), 0UL, 0UL, Addr(sc), 0UL, 0UL, Addr(bi), 0UL, 0UL, AddrOrZero(b), 0UL, 0UL, Addr(y), 0UL, 0UL, n, 0, 0, Addr(xd), k, weight.GroupSize, packed]);
        else if (m == 1)
            Device.LaunchGrid(CudaKernels.Names.QGemv, (uint)((n + 7) / 8), 256, [Addr(wq), Addr(sc), Addr(bi), Addr(xd), AddrOrZero(b), Addr(y), n, k, weight.Bits, weight.GroupSize]);
        else if (m > 1)
        {
            // several rows: dequantise once into a float32 scratch matrix, then one GEMM
            var wf = NewF32([n, k]);
            Device.Launch(CudaKernels.Names.Dequant, (long)n * k, [Addr(wq), Addr(sc), Addr(bi), 0UL, Addr(wf), n, k, weight.Bits, weight.GroupSize, FastQGemv(weight) ? 1 : 0, packed]);
            Device.Gemm(true, false, n, m, k, Addr(wf), CudaApi.R32F, k, 0, Addr(xd), k, 0, Addr(y), n, 0, 1, GemmCompute);
            if (b is not null) Device.Launch(CudaKernels.Names.RowBias, (long)m * n, [Addr(y), Addr(b), (long)m * n, n]);
            Keep(wf);
        }
        Keep(xd, wq, sc, bi, b);
        return y;
    }

    /// <summary>A quantized matrix's device parts. For <see cref="FastQGemv"/> matrices the words are lane-interleaved
    /// (<see cref="WeightUse.Lanes"/>) and, where the checkpoint stores scales and biases in bf16, both come as one u32 a
    /// group (<c>sb_pack</c>; Biases is then the same tensor and Packed 1): the kernels' <c>group_sb</c> reads either form.</summary>
    private (Tensor Words, Tensor Scales, Tensor Biases, int Packed) QuantParts(QuantizedWeight w)
    {
        if (!FastQGemv(w)) return (Weight(w.Weight, WeightUse.Raw), Weight(w.Scales, WeightUse.F32), Weight(w.Biases, WeightUse.F32), 0);
        var words = Weight(w.Weight, WeightUse.Lanes);
        if (w.Scales.DType != DType.BF16 || w.Biases.DType != DType.BF16 || !w.Scales.Shape.SequenceEqual(w.Biases.Shape))
            return (words, Weight(w.Scales, WeightUse.F32), Weight(w.Biases, WeightUse.F32), 0);
        var sb = ScaleBiasPairs(w.Scales, w.Biases);
        return (words, sb, sb, 1);
    }

    /// <summary>bf16 scales and biases as one u32 a group (scale low, bias high), made on the device once per matrix and
    /// cached under the scales' storage.</summary>
    private Tensor ScaleBiasPairs(Tensor scales, Tensor biases)
    {
        var s = scales.IsHost || Mine(scales) ? scales : scales.ToHost();
        var cache = _weights.GetOrCreateValue(s.Storage);
        var key = new WeightKey(s.Offset, s.DType, DType.U32, s.Shape, s.Strides, Layout: 2);
        lock (cache)
        {
            if (cache.TryGetValue(key, out var hit)) return hit;
            var sd = Bf16Operand(s);
            var bd = Bf16Operand(biases);
            var d = New(DType.U32, (int[])s.Shape.Clone());
            Device.Launch(CudaKernels.Names.SbPack, d.ElementCount, [Addr(sd), Addr(bd), Addr(d), d.ElementCount]);
            Keep(sd, bd);
            cache[key with { Shape = (int[])s.Shape.Clone(), Strides = (long[])s.Strides.Clone() }] = d;
            return d;
        }

        // a contiguous bf16 copy on the device (uploaded, not cached: only the packed pairs stay)
        Tensor Bf16Operand(Tensor t) =>
            Mine(t) ? (t.IsContiguous ? t : Contiguous(t)) : UploadWeight((t.IsHost ? t : t.ToHost()).Contiguous());
    }

    /// <summary>A contiguous host tensor copied into a new device tensor of its dtype, counted as a weight upload.</summary>
    private Tensor UploadWeight(Tensor h)
    {
        var d = New(h.DType, h.Shape);
        Device.Upload(Addr(d), h.ContiguousBytes());
        Stats.CountWeightUpload(h.ByteCount);
        return d;
    }

    public Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids)
    {
        Begin();
        var idsD = Ids(ids, table.OutFeatures, "quantized_take");
        var (wq, sc, bi, packed) = QuantParts(table);
        var y = NewF32([ids.Length, table.InFeatures]);
        Device.Launch(CudaKernels.Names.Dequant, y.ElementCount, [Addr(wq), Addr(sc), Addr(bi), AddrOrZero(idsD), Addr(y), ids.Length, table.InFeatures, table.Bits, table.GroupSize, FastQGemv(table) ? 1 : 0, packed]);
        Keep(idsD, wq, sc, bi);
        return y;
    }

    /// <summary>Ids checked against the table on the host (the error names the position) and uploaded (counted).</summary>
    private Tensor? Ids(ReadOnlySpan<int> ids, int rows, string op)
    {
        for (int i = 0; i < ids.Length; i++)
            if ((uint)ids[i] >= (uint)rows) throw new ArgumentOutOfRangeException(nameof(ids), $"{op}: id {ids[i]} at position {i} outside table of {rows} rows");
        if (ids.IsEmpty) return null;
        var d = New(DType.I32, [ids.Length]);
        Device.Upload(Addr(d), System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids));
        Stats.CountUpload((long)ids.Length * 4);
        return d;
    }

    public Tensor Take(Tensor table, ReadOnlySpan<int> ids)
    {
        Begin();
        if (table.Rank != 2) throw new ArgumentException($"take: table must be a [rows, dim] tensor, got {table}");
        int rows = table.Shape[0], d = table.Shape[1];
        var idsD = Ids(ids, rows, "take");
        var w = Weight(table, WeightUse.Raw);
        if (w.DType is not (DType.F32 or DType.BF16)) w = ToF32(w);
        var y = NewF32([ids.Length, d]);
        Device.Launch(CudaKernels.Names.Take, y.ElementCount, [Addr(w), (int)w.DType, AddrOrZero(idsD), Addr(y), ids.Length, d]);
        Keep(idsD, w);
        return y;
    }
}
