using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.GpuTests;

/// <summary>
/// Runs every op on a device backend and hands back host tensors: model code that still reads activations on the host
/// (spans, element loops between ops) runs unchanged while each op it calls computes on the device. Inputs are
/// uploaded per op, weights once (the inner backend's cache). For parity runs, not for speed.
/// </summary>
public sealed class HostResultsBackend(IBackend device) : IBackend
{
    public IBackend Device { get; } = device;
    public string Name => Device.Name + "+host-results";
    public string Describe() => Device.Describe() + " (results downloaded after every op)";
    public BackendStats Stats => Device.Stats;

    private Tensor H(Tensor x) => Device.ToHost(x);

    public Tensor FromHost(Tensor host) => host.IsHost ? host : H(host);
    public Tensor ToHost(Tensor x) => x.IsHost ? x : H(x);
    public Tensor Zeros(DType dtype, int[] shape) => Tensor.Zeros(dtype, shape);
    public Tensor Contiguous(Tensor x) => x.IsHost ? x.Contiguous() : H(Device.Contiguous(x));
    public Tensor Cast(Tensor x, DType dtype) => H(Device.Cast(x, dtype));
    public void SliceUpdate(Tensor dst, Tensor src, int axis, int start) => Device.SliceUpdate(dst, src, axis, start);
    public Tensor Rope(Tensor x, int offset, float theta) => H(Device.Rope(x, offset, theta));
    public Tensor Cumsum(Tensor x, int axis) => H(Device.Cumsum(x, axis));
    public Tensor Repeat(Tensor x, int axis, int repeats) => H(Device.Repeat(x, axis, repeats));
    public Tensor Where(Tensor cond, Tensor a, Tensor b) => H(Device.Where(cond, a, b));
    public Tensor Clamp(Tensor x, float min, float max) => H(Device.Clamp(x, min, max));
    public Tensor Snake(Tensor x, Tensor alpha) => H(Device.Snake(x, alpha));
    public Tensor Matmul(Tensor a, Tensor b) => H(Device.Matmul(a, b));
    public Tensor Linear(Tensor x, Tensor weight, Tensor? bias) => H(Device.Linear(x, weight, bias));
    public Tensor Conv1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int dilation, int groups) => H(Device.Conv1d(x, weight, bias, stride, padding, dilation, groups));
    public Tensor ConvTranspose1d(Tensor x, Tensor weight, Tensor? bias, int stride, int padding, int outputPadding, int dilation) => H(Device.ConvTranspose1d(x, weight, bias, stride, padding, outputPadding, dilation));
    public Tensor AvgPool1d(Tensor x, int kernel, int stride) => H(Device.AvgPool1d(x, kernel, stride));
    public Tensor LayerNorm(Tensor x, Tensor? weight, Tensor? bias, float eps) => H(Device.LayerNorm(x, weight, bias, eps));
    public Tensor RmsNorm(Tensor x, Tensor weight, float eps) => H(Device.RmsNorm(x, weight, eps));
    public Tensor Unary(UnaryOp op, Tensor x, float alpha) => H(Device.Unary(op, x, alpha));
    public Tensor Binary(BinaryOp op, Tensor a, Tensor b) => H(Device.Binary(op, a, b));
    public Tensor Scale(Tensor x, float scale, float shift) => H(Device.Scale(x, scale, shift));
    public Tensor Softmax(Tensor x) => H(Device.Softmax(x));
    public Tensor ScaledDotProductAttention(Tensor q, Tensor k, Tensor v, float scale, Tensor? maskBias, bool causal, Tensor? scoresOut) =>
        H(Device.ScaledDotProductAttention(q, k, v, scale, maskBias, causal, scoresOut));
    public Tensor Take(Tensor table, ReadOnlySpan<int> ids) => H(Device.Take(table, ids));
    public Tensor QuantizedMatmul(Tensor x, QuantizedWeight weight, Tensor? bias) => H(Device.QuantizedMatmul(x, weight, bias));
    public Tensor QuantizedTake(QuantizedWeight table, ReadOnlySpan<int> ids) => H(Device.QuantizedTake(table, ids));
    public Tensor Pad(Tensor x, ReadOnlySpan<(int Before, int After)> pads, PadMode mode, float value) => H(Device.Pad(x, pads, mode, value));
    public Tensor Concatenate(IReadOnlyList<Tensor> xs, int axis) => H(Device.Concatenate(xs, axis));
    public Tensor Reduce(ReduceOp op, Tensor x, int axis, bool keepDims) => H(Device.Reduce(op, x, axis, keepDims));
    public int[] Argmax(Tensor x) => Device.Argmax(x);
    public (float[] Values, int[] Indices) TopK(ReadOnlySpan<float> x, int k) => Device.TopK(x, k);
}
