using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Engine;

/// <summary>
/// The op set the model code is written in, named after MLX's (<c>mx.matmul</c>, <c>mx.conv1d</c>,
/// <c>mx.fast.layer_norm</c>, <c>mx.fast.scaled_dot_product_attention</c> …). Eager; dispatches to
/// <see cref="Backend"/>, the backend of the current scope. Results are new float32 tensors on that backend.
/// <para>
/// A backend belongs to a model, not to the process: a model keeps the backend it was loaded with and enters it
/// (<see cref="Use"/>) in its public entry points, so two models on two backends can run side by side in one process
/// (a notebook running one stage on both and comparing). The scope is an <see cref="AsyncLocal{T}"/>: it flows into
/// tasks started inside it and never leaks into other threads.
/// </para>
/// </summary>
public static class Ops
{
    private static readonly AsyncLocal<IBackend?> s_scope = new();

    /// <summary>The backend used outside any scope: the CPU backend unless a host (CLI, notebook) changes it.</summary>
    public static IBackend Default { get; set; } = new CpuBackend();

    /// <summary>The backend every op runs on now: the innermost <see cref="Use"/> scope's, else <see cref="Default"/>.</summary>
    public static IBackend Backend => s_scope.Value ?? Default;

    /// <summary>Runs the ops of the enclosing <c>using</c> block on <paramref name="backend"/>; disposing restores the previous one.</summary>
    public static BackendScope Use(IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(backend);
        var previous = s_scope.Value;
        s_scope.Value = backend;
        return new BackendScope(previous);
    }

    /// <summary>Restores the backend that was current before <see cref="Use"/>.</summary>
    public readonly struct BackendScope : IDisposable
    {
        private readonly IBackend? _previous;
        internal BackendScope(IBackend? previous) => _previous = previous;
        public void Dispose() => s_scope.Value = _previous;
    }

    // ---------------------------------------------------------------- place

    /// <summary>The tensor on the current backend (uploaded when it is a host tensor of a device backend).</summary>
    public static Tensor FromHost(Tensor host) => Backend.FromHost(host);

    /// <summary>A host copy (a transfer point), made by the backend that owns the tensor; host tensors come back as they are.</summary>
    public static Tensor ToHost(Tensor x) => x.ToHost();

    public static Tensor Zeros(DType dtype, params int[] shape) => Backend.Zeros(dtype, shape);
    public static Tensor Zeros(params int[] shape) => Backend.Zeros(DType.F32, shape);
    public static Tensor Contiguous(Tensor x) => Backend.Contiguous(x);
    public static Tensor Cast(Tensor x, DType dtype) => Backend.Cast(x, dtype);

    /// <summary><c>dst[..., start:start+n, ...] = src</c> along <paramref name="axis"/>, in place.</summary>
    public static void SliceUpdate(Tensor dst, Tensor src, int axis, int start) => Backend.SliceUpdate(dst, src, axis, start);

    /// <summary>Rotate-half RoPE on x [..., T, D] at positions offset.. (MLX <c>mx.fast.rope</c>, traditional=False).</summary>
    public static Tensor Rope(Tensor x, int offset, float theta) => Backend.Rope(x, offset, theta);

    public static Tensor Cumsum(Tensor x, int axis) => Backend.Cumsum(x, axis);

    /// <summary><c>repeat_interleave</c> along one axis.</summary>
    public static Tensor Repeat(Tensor x, int axis, int repeats) => Backend.Repeat(x, axis, repeats);

    public static Tensor Where(Tensor cond, Tensor a, Tensor b) => Backend.Where(cond, a, b);
    public static Tensor Clamp(Tensor x, float min, float max) => Backend.Clamp(x, min, max);

    /// <summary>Snake: x + 1/(α + 1e-9)·sin²(α·x), α per channel (axis 1 of [B, C, T]).</summary>
    public static Tensor Snake(Tensor x, Tensor alpha) => Backend.Snake(x, alpha);

    // ---------------------------------------------------------------- compute

    public static Tensor Matmul(Tensor a, Tensor b) => Backend.Matmul(a, b);

    /// <summary>x·Wᵀ + b with a PyTorch Linear weight W [out, in] (f32 or bf16, used in place).</summary>
    public static Tensor Linear(Tensor x, Tensor weight, Tensor? bias = null) => Backend.Linear(x, weight, bias);

    /// <summary>x·Wᵀ + b with W quantized in MLX's affine layout (MLX <c>quantized_matmul</c>, transpose=True): the
    /// packed codes are read once and dequantised in registers, never into a full float copy.</summary>
    public static Tensor QuantizedLinear(Tensor x, QuantizedWeight weight, Tensor? bias = null) => Backend.QuantizedMatmul(x, weight, bias);

    /// <summary>PyTorch Conv1d (cross-correlation) on [B, Cin, T] or [Cin, T]; weight [Cout, Cin/groups, K].</summary>
    public static Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int dilation = 1, int groups = 1) =>
        Backend.Conv1d(x, weight, bias, stride, padding, dilation, groups);

    /// <summary>PyTorch ConvTranspose1d; weight [Cin, Cout, K].</summary>
    public static Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias = null, int stride = 1, int padding = 0, int outputPadding = 0, int dilation = 1) =>
        Backend.ConvTranspose1d(x, weight, bias, stride, padding, outputPadding, dilation);

    /// <summary>Average pool over the last axis, no padding (trailing remainder dropped).</summary>
    public static Tensor AvgPool1d(Tensor x, int kernel, int stride) => Backend.AvgPool1d(x, kernel, stride);

    public static Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps) => Backend.LayerNorm(x, weight, bias, eps);
    public static Tensor RmsNorm(Tensor x, Tensor weight, float eps) => Backend.RmsNorm(x, weight, eps);

    /// <summary>GELU, exact erf form (PyTorch default).</summary>
    public static Tensor Gelu(Tensor x) => Backend.Unary(UnaryOp.Gelu, x, 0);
    /// <summary>GELU, tanh approximation (MLX <c>gelu_approx</c>, PyTorch <c>approximate="tanh"</c>).</summary>
    public static Tensor GeluApprox(Tensor x) => Backend.Unary(UnaryOp.GeluTanh, x, 0);
    public static Tensor Silu(Tensor x) => Backend.Unary(UnaryOp.Silu, x, 0);
    public static Tensor Relu(Tensor x) => Backend.Unary(UnaryOp.Relu, x, 0);
    public static Tensor LeakyRelu(Tensor x, float slope) => Backend.Unary(UnaryOp.LeakyRelu, x, slope);
    public static Tensor Elu(Tensor x, float alpha = 1f) => Backend.Unary(UnaryOp.Elu, x, alpha);
    public static Tensor Mish(Tensor x) => Backend.Unary(UnaryOp.Mish, x, 0);
    public static Tensor Tanh(Tensor x) => Backend.Unary(UnaryOp.Tanh, x, 0);
    public static Tensor Exp(Tensor x) => Backend.Unary(UnaryOp.Exp, x, 0);
    public static Tensor Log(Tensor x) => Backend.Unary(UnaryOp.Log, x, 0);
    public static Tensor Sin(Tensor x) => Backend.Unary(UnaryOp.Sin, x, 0);
    public static Tensor Cos(Tensor x) => Backend.Unary(UnaryOp.Cos, x, 0);
    public static Tensor Abs(Tensor x) => Backend.Unary(UnaryOp.Abs, x, 0);
    public static Tensor Sigmoid(Tensor x) => Backend.Unary(UnaryOp.Sigmoid, x, 0);
    public static Tensor Sqrt(Tensor x) => Backend.Unary(UnaryOp.Sqrt, x, 0);
    public static Tensor Square(Tensor x) => Backend.Unary(UnaryOp.Square, x, 0);
    public static Tensor Negative(Tensor x) => Backend.Unary(UnaryOp.Neg, x, 0);

    public static Tensor Add(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Add, a, b);
    public static Tensor Subtract(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Subtract, a, b);
    public static Tensor Multiply(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Multiply, a, b);
    public static Tensor Divide(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Divide, a, b);
    public static Tensor Maximum(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Maximum, a, b);
    public static Tensor Minimum(Tensor a, Tensor b) => Backend.Binary(BinaryOp.Minimum, a, b);

    /// <summary>x·scale + shift.</summary>
    public static Tensor Multiply(Tensor x, float scale, float shift = 0f) => Backend.Scale(x, scale, shift);

    /// <summary>Softmax over the last axis (float32, max-subtracted).</summary>
    public static Tensor Softmax(Tensor x) => Backend.Softmax(x);

    /// <summary>
    /// softmax(q·kᵀ·scale + mask)·v with q [B, Hq, Tq, D], k/v [B, Hkv, Tk, D]; query head h uses KV head h / (Hq/Hkv).
    /// <paramref name="maskBias"/> is additive and broadcast to [B, Hq, Tq, Tk]; <paramref name="causal"/> masks keys after
    /// each query (aligned to the end, for KV caches). When <paramref name="scoresOut"/> is given ([B, Hq, Tq, Tk] f32),
    /// the pre-softmax scores (scaled, mask added) are written there — the <c>.qk</c> activation.
    /// </summary>
    public static Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias = null, bool causal = false, Tensor? scoresOut = null) =>
        Backend.ScaledDotProductAttention(q, k, v, scale, maskBias, causal, scoresOut);

    /// <summary>Rows of <paramref name="table"/> (an embedding lookup); bf16 tables are read in place.</summary>
    public static Tensor Take(Tensor table, ReadOnlySpan<int> ids) => Backend.Take(table, ids);

    /// <summary>Rows of a quantized embedding table, dequantised (MLX <c>QuantizedEmbedding</c>).</summary>
    public static Tensor Take(QuantizedWeight table, ReadOnlySpan<int> ids) => Backend.QuantizedTake(table, ids);

    /// <summary>Pads every axis by (before, after), like <c>mx.pad</c>; reflect excludes the edge sample as PyTorch does.</summary>
    public static Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode = PadMode.Constant, float value = 0f) =>
        Backend.Pad(x, pads, mode, value);

    public static Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis = 0) => Backend.Concatenate(xs, axis);
    public static Tensor Sum(Tensor x, int axis, bool keepDims = false) => Backend.Reduce(ReduceOp.Sum, x, axis, keepDims);
    public static Tensor Mean(Tensor x, int axis, bool keepDims = false) => Backend.Reduce(ReduceOp.Mean, x, axis, keepDims);
    public static Tensor Max(Tensor x, int axis, bool keepDims = false) => Backend.Reduce(ReduceOp.Max, x, axis, keepDims);
    public static Tensor Min(Tensor x, int axis, bool keepDims = false) => Backend.Reduce(ReduceOp.Min, x, axis, keepDims);

    /// <summary>Index of the (first) maximum along the last axis, per leading row.</summary>
    public static int[] Argmax(Tensor x) => Backend.Argmax(x);

    /// <summary>The k largest values in descending order with their indices (ties: lower index first).</summary>
    public static (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k) => Backend.TopK(x, k);

    // ---------------------------------------------------------------- token2wav: small ops and fused capabilities

    public static Tensor Floor(Tensor x) => Backend.Floor(x);

    /// <summary>One DiT block (the backend's fused kernel, or <see cref="Composite.DitBlock"/> op by op).</summary>
    public static Tensor DitBlock(Tensor h, Tensor modulation, DitBlockWeights weights) => Backend.DitBlock(h, modulation, weights);

    /// <summary>One HiFT Snake residual block (the backend's fused kernel, or <see cref="Composite.SnakeResBlock"/>).</summary>
    public static Tensor SnakeResBlock(Tensor x, SnakeResBlockWeights weights) => Backend.SnakeResBlock(x, weights);

    /// <summary>silu(gate(x)) · up(x) (the backend's fused kernel, or <see cref="Composite.SwiGlu"/>).</summary>
    public static Tensor SwiGlu(Tensor x, LinearWeights gate, LinearWeights up) => Backend.SwiGlu(x, gate, up);

    /// <summary>(x + r, RMSNorm(x + r)·weight) (the backend's fused kernel, or <see cref="Composite.AddRmsNorm"/>).</summary>
    public static (Tensor Sum, Tensor Normed) AddRmsNorm(Tensor x, Tensor r, Tensor weight, float eps) => Backend.AddRmsNorm(x, r, weight, eps);

    /// <summary>RoPE of q and k and the KV-cache append (the backend's fused kernel, or <see cref="Composite.RopeAppend"/>).</summary>
    public static Tensor RopeAppend(Tensor q, Tensor k, Tensor v, int heads, int start, float theta, Tensor kCache, Tensor vCache) =>
        Backend.RopeAppend(q, k, v, heads, start, theta, kCache, vCache);

    /// <summary>Several linear layers of one input (the backend's fused kernel, or <see cref="Composite.LinearGroup"/>).</summary>
    public static Tensor[] LinearGroup(Tensor x, IReadOnlyList<LinearWeights> layers) => Backend.LinearGroup(x, layers);

    /// <summary>Relative-position attention core (the backend's fused kernel, or <see cref="Composite.RelPositionAttention"/>).</summary>
    public static Tensor RelPositionAttention(Tensor q, Tensor k, Tensor v, Tensor positions, Tensor posBiasU, Tensor posBiasV, int heads) =>
        Backend.RelPositionAttention(q, k, v, positions, posBiasU, posBiasV, heads);
}
