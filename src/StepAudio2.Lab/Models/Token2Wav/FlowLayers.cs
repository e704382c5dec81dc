using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// Weight access for the flow: flow.pt keys carry no prefix (<c>encoder.embed.out.0.weight</c>) while activations are
/// traced under <c>flow.</c> (<c>flow.encoder.embed.out.0</c>), so each module gets the key and the trace path apart.
/// </summary>
internal static class FlowWeights
{
    public const string Root = "flow";

    public static string TracePath(string key) => $"{Root}.{key}";

    /// <summary>torch.nn.Linear <c>{key}.weight</c> [out, in] (+ <c>{key}.bias</c> [out]).</summary>
    public static Linear Linear(Weights w, string key, int outFeatures, int inFeatures, bool bias = true) =>
        new(TracePath(key), w.Get(key + ".weight", outFeatures, inFeatures), bias ? w.Get(key + ".bias", outFeatures) : null);

    /// <summary>torch.nn.LayerNorm with affine <c>{key}.weight</c>/<c>.bias</c> [dim].</summary>
    public static LayerNorm LayerNorm(Weights w, string key, int dim, float eps) =>
        new(TracePath(key), w.Get(key + ".weight", dim), w.Get(key + ".bias", dim), eps);

    /// <summary>torch.nn.Conv1d <c>{key}.weight</c> [Cout, Cin, K] + bias, run time-major with the given zero padding.</summary>
    public static FlowConv1d Conv(Weights w, string key, int cout, int cin, int kernel, int padLeft, int padRight) =>
        new(TracePath(key), w.Get(key + ".weight", cout, cin, kernel), w.Get(key + ".bias", cout), padLeft, padRight);
}

/// <summary>
/// torch.nn.Conv1d (stride 1, no dilation) applied to time-major activations [B, T, Cin] with explicit zero padding
/// (padLeft, padRight) — the causal and look-ahead convolutions of the flow (pre-lookahead, up_layer, DiT conv block),
/// whose modules transpose around a channels-first conv (<see cref="Composite.ConvTimeMajor"/>).
/// </summary>
public sealed class FlowConv1d
{
    public FlowConv1d(string path, Tensor weight, Tensor bias, int padLeft, int padRight)
    {
        if (weight.Rank != 3) throw new ArgumentException($"{path}: conv weight {Tensor.ShapeString(weight.Shape)} must be [Cout, Cin, K]");
        Path = path;
        Weight = weight;
        Bias = bias;
        PadLeft = padLeft;
        PadRight = padRight;
    }

    public string Path { get; }
    /// <summary><c>{key}.weight</c> [Cout, Cin, K] as the checkpoint holds it.</summary>
    public Tensor Weight { get; }
    /// <summary><c>{key}.bias</c> [Cout].</summary>
    public Tensor Bias { get; }
    public int InChannels => Weight.Shape[1];
    public int OutChannels => Weight.Shape[0];
    public int Kernel => Weight.Shape[2];
    public int PadLeft { get; }
    public int PadRight { get; }

    /// <summary>[B, T, Cin] → [B, T + padLeft + padRight − K + 1, Cout], time-major.</summary>
    public Tensor Forward(Tensor x)
    {
        if (x.Rank != 3 || x.Shape[2] != InChannels)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(x.Shape)} must be [B, T, {InChannels}]");
        if (x.Shape[1] + PadLeft + PadRight - Kernel + 1 < 1) throw new ArgumentException($"{Path}: {x.Shape[1]} frames are too few for kernel {Kernel}");
        return Composite.ConvTimeMajor(x, Weight, Bias, PadLeft, PadRight);
    }
}

/// <summary>Float32 sinusoid helpers shared by the flow's position table and time embedding.</summary>
internal static class FlowMath
{
    // float32 sin/cos/exp of a float32 argument, correctly rounded via double (what PyTorch's f32 kernels return to ≤ 1 ulp)
    public static float Sin(float x) => (float)Math.Sin(x);
    public static float Cos(float x) => (float)Math.Cos(x);
    public static float Exp(float x) => (float)Math.Exp(x);
}
