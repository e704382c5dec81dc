using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Nn;

/// <summary>torch.nn.Linear: <c>{Path}.weight</c> [out, in] (f32 or bf16, used in place), optional <c>{Path}.bias</c> [out].</summary>
public sealed class Linear(string path, Tensor weight, Tensor? bias)
{
    public string Path { get; } = path;
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int InFeatures => Weight.Shape[1];
    public int OutFeatures => Weight.Shape[0];

    public static Linear Load(Weights w, string path, int outFeatures, int inFeatures, bool bias = true) =>
        new(path, w.Get(path + ".weight", outFeatures, inFeatures), bias ? w.Get(path + ".bias", outFeatures) : null);

    /// <summary>Loads with the output width read from the checkpoint (e.g. the adaptor's hidden 2048).</summary>
    public static Linear LoadInferOut(Weights w, string path, int inFeatures, bool bias = true)
    {
        var weight = w.GetAnyShape(path + ".weight", 2);
        int outFeatures = weight.Shape[0];
        if (weight.Shape[1] != inFeatures)
            throw new IO.WeightException(w.Source.Path, $"shape {Tensor.ShapeString(weight.Shape)} does not take {inFeatures} inputs", path + ".weight");
        return new(path, weight, bias ? w.Get(path + ".bias", outFeatures) : null);
    }

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.Linear(x, Weight, Bias);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>torch.nn.Conv1d: <c>{Path}.weight</c> [Cout, Cin/groups, K], <c>{Path}.bias</c> [Cout].</summary>
public sealed class Conv1d(string path, Tensor weight, Tensor? bias, int stride, int padding, int dilation = 1, int groups = 1)
{
    public string Path { get; } = path;
    public Tensor Weight { get; } = weight;
    public Tensor? Bias { get; } = bias;
    public int Stride { get; } = stride;
    public int Padding { get; } = padding;

    public static Conv1d Load(Weights w, string path, int cout, int cin, int kernel, int stride, int padding, bool bias = true) =>
        new(path, w.Get(path + ".weight", cout, cin, kernel), bias ? w.Get(path + ".bias", cout) : null, stride, padding);

    /// <summary>[B, Cin, T] → [B, Cout, T'] as the module returns it (no activation).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.Conv1d(x, Weight, Bias, Stride, Padding, dilation, groups);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>torch.nn.LayerNorm over the last axis: <c>{Path}.weight</c>, <c>{Path}.bias</c> [D].</summary>
public sealed class LayerNorm(string path, Tensor? weight, Tensor? bias, float eps)
{
    public string Path { get; } = path;

    public static LayerNorm Load(Weights w, string path, int dim, float eps) =>
        new(path, w.Get(path + ".weight", dim), w.Get(path + ".bias", dim), eps);

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.LayerNorm(x, weight, bias, eps);
        trace?.Record(Path, y);
        return y;
    }
}
