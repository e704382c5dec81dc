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
/// Activations are float32; weight operands of <see cref="Linear"/>, <see cref="Conv1d"/> and <see cref="Take"/>
/// may be bf16 and are used in place (never widened into a second f32 copy).
/// </summary>
public interface IBackend
{
    string Name { get; }

    /// <summary>One-line description: backend, SIMD level, threads.</summary>
    string Describe();

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
    int[] Argmax(Tensor x);
    (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k);
}
