using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine;

/// <summary>Element-wise functions of one input (MLX names: <c>gelu</c>, <c>gelu_approx</c>, <c>silu</c> …).</summary>
public enum UnaryOp { Gelu, GeluTanh, Silu, Relu, LeakyRelu, Elu, Mish, Tanh, Exp, Log, Sin, Cos, Abs, Neg, Sigmoid, Sqrt, Square }

/// <summary>Broadcasting element-wise functions of two inputs.</summary>
public enum BinaryOp { Add, Subtract, Multiply, Divide, Maximum, Minimum }

/// <summary>Padding modes of <see cref="Ops.Pad"/> (PyTorch <c>F.pad</c> modes).</summary>
public enum PadMode { Constant, Reflect, Replicate }

/// <summary>Reductions over one axis.</summary>
public enum ReduceOp { Sum, Mean, Max, Min }

/// <summary>
/// The backend boundary: every op the model code uses, implemented once per device. Model code calls <see cref="Ops"/>,
/// never a backend directly, so an MLX (mlx-c) or CUDA backend slots in by implementing this interface.
/// <para>
/// Place: a backend's results live where it keeps them — host memory for <c>cpu</c>, a <see cref="DeviceStorage"/>
/// (no host address) for the others. Inputs may be host tensors (weights mapped from a checkpoint, ids, features):
/// a device backend uploads them, caching weights per weight tensor so each is uploaded once. Host values come back
/// only through <see cref="ToHost"/> (and <see cref="Argmax"/>'s ids); <see cref="Stats"/> counts those transfers.
/// </para>
/// Activations are float32; weight operands of <see cref="Linear"/>, <see cref="Conv1d"/> and <see cref="Take"/>
/// may be bf16 and are used in place (never widened into a second f32 copy).
/// </summary>
public interface IBackend
{
    string Name { get; }

    /// <summary>One-line description: backend, SIMD level, threads.</summary>
    string Describe();

    /// <summary>Host↔backend transfers and ops run so far (reset with <see cref="BackendStats.Reset"/>).</summary>
    BackendStats Stats { get; }

    // ---------------------------------------------------------------- place and layout

    /// <summary>Uploads a host tensor (a transfer point): the same tensor on this backend, contiguous.</summary>
    Tensor FromHost(Tensor host);

    /// <summary>Downloads a tensor of this backend (a transfer point): a contiguous host tensor.</summary>
    Tensor ToHost(Tensor x);

    /// <summary>A new zero-filled tensor on this backend.</summary>
    Tensor Zeros(DType dtype, int[] shape);

    /// <summary>A contiguous copy of a (strided) view, on this backend.</summary>
    Tensor Contiguous(Tensor x);

    /// <summary>A contiguous copy converted to <paramref name="dtype"/> (floats narrow with round-to-nearest-even).</summary>
    Tensor Cast(Tensor x, DType dtype);

    /// <summary>
    /// Writes <paramref name="src"/> into <paramref name="dst"/>[…, start:start+n, …] along <paramref name="axis"/>, in
    /// place (<c>dst[..., start:start+n] = src</c>; MLX <c>slice_update</c>): KV-cache appends, audio features written into
    /// the embeddings. Shapes must agree on every other axis; dtypes must match.
    /// </summary>
    void SliceUpdate(Tensor dst, Tensor src, int axis, int start);

    // ---------------------------------------------------------------- element-wise and small ops the models need

    /// <summary>
    /// Rotate-half (GPT-NeoX, HF Qwen2) rotary embedding of x [..., T, D] at positions offset..offset+T−1 (axis −2):
    /// inv_freq_i = 1/θ^(2i/D) and angle = position·inv_freq_i in float32; out = x·cos + rotate_half(x)·sin.
    /// </summary>
    Tensor Rope(Tensor x, int offset, float theta);

    /// <summary>Inclusive cumulative sum along <paramref name="axis"/>; float32 values summed in double and rounded per
    /// element, as PyTorch's CPU <c>cumsum</c> does.</summary>
    Tensor Cumsum(Tensor x, int axis);

    /// <summary>Each element repeated <paramref name="repeats"/> times along <paramref name="axis"/> (<c>repeat_interleave</c>).</summary>
    Tensor Repeat(Tensor x, int axis, int repeats);

    /// <summary>cond ? a : b, broadcasting (cond: bool/uint8/float, non-zero is true).</summary>
    Tensor Where(Tensor cond, Tensor a, Tensor b);

    /// <summary>min(max(x, min), max).</summary>
    Tensor Clamp(Tensor x, float min, float max);

    /// <summary>Snake activation of x [B, C, T] (or [C, T]) with per-channel α [C]: x + 1/(α + 1e-9)·sin²(α·x).</summary>
    Tensor Snake(Tensor x, Tensor alpha);

    Tensor Matmul(Tensor a, Tensor b);
    Tensor Linear(Tensor x, Tensor weight, Tensor? bias);
    Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups);
    Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation);
    Tensor AvgPool1d(Tensor x, int kernel, int stride);
    Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps);
    Tensor RmsNorm(Tensor x, Tensor weight, float eps);
    Tensor Unary(UnaryOp op, Tensor x, float alpha);
    Tensor Binary(BinaryOp op, Tensor a, Tensor b);
    Tensor Scale(Tensor x, float scale, float shift);
    Tensor Softmax(Tensor x);
    Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut);
    Tensor Take(Tensor table, ReadOnlySpan<int> ids);

    /// <summary>x·Wᵀ (+ bias) with W in MLX's affine quantized layout (MLX <c>quantized_matmul(x, w, scales, biases,
    /// transpose=True)</c>); the result equals dequantise-then-matmul within float32 rounding.</summary>
    Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias);

    /// <summary>Rows of a quantized table, dequantised to float32 (MLX <c>QuantizedEmbedding</c>).</summary>
    Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids);
    Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value);
    Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis);
    Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims);
    /// <summary>Index of the (first) maximum along the last axis per leading row, returned to the host (a transfer point).</summary>
    int[] Argmax(Tensor x);
    (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k);

    // ---------------------------------------------------------------- token2wav: small ops and fused capabilities
    // Default bodies compose the ops above (every backend gets them for free); a backend overrides them with its kernels.
    // Fused capabilities are tested against their op-by-op bodies (Composite), which stay callable on any backend.

    /// <summary>⌊x⌋ element-wise. Default: truncation through an int32 cast, corrected by one below zero (|x| &lt; 2³¹).</summary>
    Tensor Floor(Tensor x)
    {
        using var _ = Ops.Use(this);
        var truncated = Ops.Cast(Ops.Cast(x, DType.I32), DType.F32);
        // truncation rounds negatives up: subtract one where truncated > x (the difference is exact, and positive only there)
        var above = Ops.Relu(Ops.Subtract(truncated, x));
        return Ops.Subtract(truncated, Ops.Where(above, Ops.FromHost(Tensor.FromArray([1f], 1)), Ops.FromHost(Tensor.FromArray([0f], 1))));
    }

    /// <summary>
    /// One DiT block of the flow's estimator (<c>DiTBlock</c>): h [B, T, D] and its modulation [B, 9D] → new h. Default:
    /// <see cref="Composite.DitBlock"/>, op by op. A backend may prepare (pack, re-lay) the block's weights once, keyed by
    /// <paramref name="weights"/> or its tensors, but must not keep widened second copies of them.
    /// </summary>
    Tensor DitBlock(Tensor h, Tensor modulation, DitBlockWeights weights)
    {
        using var _ = Ops.Use(this);
        return Composite.DitBlock(h, modulation, weights);
    }

    /// <summary>
    /// One HiFT Snake residual block (<c>ResBlock</c>): x [B, C, T] → x after its rounds. Default:
    /// <see cref="Composite.SnakeResBlock"/>, op by op.
    /// </summary>
    Tensor SnakeResBlock(Tensor x, SnakeResBlockWeights weights)
    {
        using var _ = Ops.Use(this);
        return Composite.SnakeResBlock(x, weights);
    }

    /// <summary>
    /// Relative-position multi-head attention core (<c>RelPositionMultiHeadedAttention</c>, batch 1, before linear_out):
    /// q, k, v [1, T, D], projected positions [2T−1, D], pos_bias_u/v [H, D/H] → [1, T, D]. Default:
    /// <see cref="Composite.RelPositionAttention"/>, op by op.
    /// </summary>
    Tensor RelPositionAttention(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor posBiasU, Tensor posBiasV, int heads)
    {
        using var _ = Ops.Use(this);
        return Composite.RelPositionAttention(q, k, v, positions, posBiasU, posBiasV, heads);
    }

    // ---------------------------------------------------------------- decoder: fused capabilities of a decoding step
    // A decoding step of the 7B decoder is ~500 small ops; on a GPU their launches and gaps cost as much as the weights'
    // streaming. These let a backend do a layer's pieces in fewer kernels; the defaults are the ops they replace.

    /// <summary>silu(x·Gᵀ + bg) · (x·Uᵀ + bu) (Qwen2MLP's act_fn(gate_proj(x)) * up_proj(x)). Default: <see cref="Composite.SwiGlu"/>.</summary>
    Tensor SwiGlu(Tensor x, LinearWeights gate, LinearWeights up)
    {
        using var _ = Ops.Use(this);
        return Composite.SwiGlu(x, gate, up);
    }

    /// <summary>(x + r, RMSNorm(x + r)·weight) for same-shape x and r: a residual add and the norm that follows it.
    /// Default: <see cref="Composite.AddRmsNorm"/>.</summary>
    (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor r, Tensor weight, float eps)
    {
        using var _ = Ops.Use(this);
        return Composite.AddRmsNorm(x, r, weight, eps);
    }

    /// <summary>RoPE on q and k at positions start.. and k, v written into a KV cache's buffers; returns the rotated q
    /// [H, n, hd]. Default: <see cref="Composite.RopeAppend"/>.</summary>
    Tensor RopeAppend(Tensor q, Tensor k, Tensor v, int heads, int start, float theta, Tensor kCache, Tensor vCache)
    {
        using var _ = Ops.Use(this);
        return Composite.RopeAppend(q, k, v, heads, start, theta, kCache, vCache);
    }

    /// <summary>Each layer applied to the same x (the q/k/v projections). Default: <see cref="Composite.LinearGroup"/>.</summary>
    Tensor[] LinearGroup(Tensor x, IReadOnlyList<LinearWeights> layers)
    {
        using var _ = Ops.Use(this);
        return Composite.LinearGroup(x, layers);
    }
}

/// <summary>What crossed the host↔backend boundary: uploads (activations and inputs), weight uploads (cached once per
/// weight), downloads; and how many ops ran. Tests assert "a handful of transfers per generated token" with it.</summary>
public sealed class BackendStats
{
    private long _uploads, _uploadBytes, _weightUploads, _weightUploadBytes, _downloads, _downloadBytes, _ops;

    public long Uploads => Interlocked.Read(ref _uploads);
    public long UploadBytes => Interlocked.Read(ref _uploadBytes);
    public long WeightUploads => Interlocked.Read(ref _weightUploads);
    public long WeightUploadBytes => Interlocked.Read(ref _weightUploadBytes);
    public long Downloads => Interlocked.Read(ref _downloads);
    public long DownloadBytes => Interlocked.Read(ref _downloadBytes);
    public long Ops => Interlocked.Read(ref _ops);

    /// <summary>Uploads plus downloads of activations (weights not counted).</summary>
    public long Transfers => Uploads + Downloads;

    public void CountUpload(long bytes) { Interlocked.Increment(ref _uploads); Interlocked.Add(ref _uploadBytes, bytes); }
    public void CountWeightUpload(long bytes) { Interlocked.Increment(ref _weightUploads); Interlocked.Add(ref _weightUploadBytes, bytes); }
    public void CountDownload(long bytes) { Interlocked.Increment(ref _downloads); Interlocked.Add(ref _downloadBytes, bytes); }
    public void CountOp() => Interlocked.Increment(ref _ops);

    public void Reset()
    {
        Interlocked.Exchange(ref _uploads, 0); Interlocked.Exchange(ref _uploadBytes, 0);
        Interlocked.Exchange(ref _weightUploads, 0); Interlocked.Exchange(ref _weightUploadBytes, 0);
        Interlocked.Exchange(ref _downloads, 0); Interlocked.Exchange(ref _downloadBytes, 0);
        Interlocked.Exchange(ref _ops, 0);
    }

    public override string ToString() =>
        $"{Uploads} uploads ({UploadBytes} B), {Downloads} downloads ({DownloadBytes} B), {WeightUploads} weight uploads ({WeightUploadBytes} B), {Ops} ops";
}
