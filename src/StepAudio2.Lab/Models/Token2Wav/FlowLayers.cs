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
    public static TimeMajorConv1d Conv(Weights w, string key, int cout, int cin, int kernel, int padLeft, int padRight) =>
        new(TracePath(key), w.Get(key + ".weight", cout, cin, kernel), w.Get(key + ".bias", cout), padLeft, padRight);
}

/// <summary>Float32 sinusoid helpers shared by the flow's position table and time embedding.</summary>
internal static class FlowMath
{
    // float32 sin/cos/exp of a float32 argument, correctly rounded via double (what PyTorch's f32 kernels return to ≤ 1 ulp)
    public static float Sin(float x) => (float)Math.Sin(x);
    public static float Cos(float x) => (float)Math.Cos(x);
    public static float Exp(float x) => (float)Math.Exp(x);
}
