using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>torch.nn.ConvTranspose1d with a folded weight [Cin, Cout, K] and bias [Cout].</summary>
public sealed class ConvTranspose1d(string path, Tensor weight, Tensor? bias, int stride, int padding)
{
    public string Path { get; } = path;
    public Tensor Weight { get; } = weight;
    public int InChannels => Weight.Shape[0];
    public int OutChannels => Weight.Shape[1];
    public int Kernel => Weight.Shape[2];

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        var y = Ops.ConvTranspose1d(x, Weight, bias, stride, padding);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>Snake activation x + sin²(αx)/(α + 1e−9) with a per-channel α on a linear scale (HiFT's ResBlocks).</summary>
public static class Snake
{
    /// <summary>[B, C, T] → [B, C, T]; the float operation order follows the official module.</summary>
    public static Tensor Forward(Tensor x, float[] alpha)
    {
        if (x.Rank != 3 || x.Shape[1] != alpha.Length)
            throw new ArgumentException($"snake: input {Tensor.ShapeString(x.Shape)} must be [B, {alpha.Length}, T]");
        var src = x.ToFloatArray();
        int c = x.Shape[1], t = x.Shape[2];
        var dst = new float[src.Length];
        for (int b = 0; b < x.Shape[0]; b++)
            for (int ch = 0; ch < c; ch++)
            {
                float a = alpha[ch], inv = 1f / (a + 1e-9f);
                int o = (b * c + ch) * t;
                for (int i = 0; i < t; i++)
                {
                    float v = src[o + i], s = MathF.Sin(v * a);
                    dst[o + i] = v + inv * (s * s);
                }
            }
        return Tensor.FromArray(dst, x.Shape);
    }
}

/// <summary>
/// HiFT ResBlock (spec §7.10 step 6): three rounds of Snake → dilated conv → Snake → conv, each added back to x.
/// Keys <c>{key}.convs1/convs2.{j}</c> (weight-normed) and <c>{key}.activations1/2.{j}.alpha</c>.
/// </summary>
public sealed class HiftResBlock
{
    private readonly Conv1d[] _convs1, _convs2;
    private readonly float[][] _alpha1, _alpha2;

    public string Path { get; }
    public int Channels { get; }
    public int Kernel { get; }

    public HiftResBlock(Weights w, string key, string path, int channels, int kernel, IReadOnlyList<int> dilations)
    {
        Path = path;
        Channels = channels;
        Kernel = kernel;
        int n = dilations.Count;
        _convs1 = new Conv1d[n];
        _convs2 = new Conv1d[n];
        _alpha1 = new float[n][];
        _alpha2 = new float[n][];
        for (int j = 0; j < n; j++)
        {
            int d = dilations[j];
            _convs1[j] = new Conv1d($"{path}.convs1.{j}", WeightNorm.Load(w, $"{key}.convs1.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs1.{j}.bias", channels), 1, (kernel * d - d) / 2, d);
            _convs2[j] = new Conv1d($"{path}.convs2.{j}", WeightNorm.Load(w, $"{key}.convs2.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs2.{j}.bias", channels), 1, (kernel - 1) / 2);
            _alpha1[j] = WeightNorm.Plain(w, $"{key}.activations1.{j}.alpha", channels).ToFloatArray();
            _alpha2[j] = WeightNorm.Plain(w, $"{key}.activations2.{j}.alpha", channels).ToFloatArray();
        }
    }

    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        for (int j = 0; j < _convs1.Length; j++)
        {
            var y = Snake.Forward(x, _alpha1[j]);
            y = _convs1[j].Forward(y);
            y = Snake.Forward(y, _alpha2[j]);
            y = _convs2[j].Forward(y);
            x = Ops.Add(y, x);
        }
        trace?.Record(Path, x);
        return x;
    }
}

/// <summary>
/// <c>ConvRNNF0Predictor</c> (spec §7.10 step 1): five weight-normed Conv1d(k3, p1) + ELU, then Linear → 1 and |·|.
/// The hidden width (cond_channels) is read from the checkpoint.
/// </summary>
public sealed class F0Predictor
{
    private readonly Conv1d[] _condnet;
    private readonly Linear _classifier;

    public string Path { get; }
    public int InChannels { get; }
    public int CondChannels { get; }

    public F0Predictor(Weights w, string key, string path, int inChannels)
    {
        Path = path;
        InChannels = inChannels;
        var first = WeightNorm.Load(w, $"{key}.condnet.0", -1, inChannels, 3);
        CondChannels = first.Shape[0];
        _condnet = new Conv1d[5];
        for (int i = 0; i < 5; i++)
        {
            var weight = i == 0 ? first : WeightNorm.Load(w, $"{key}.condnet.{2 * i}", CondChannels, CondChannels, 3);
            _condnet[i] = new Conv1d($"{path}.condnet.{2 * i}", weight, WeightNorm.Plain(w, $"{key}.condnet.{2 * i}.bias", CondChannels), 1, 1);
        }
        _classifier = new Linear($"{path}.classifier", WeightNorm.Plain(w, $"{key}.classifier.weight", 1, CondChannels), WeightNorm.Plain(w, $"{key}.classifier.bias", 1));
    }

    /// <summary>mel [B, C, T] → f0 [B, T] in Hz.</summary>
    public Tensor Forward(Tensor mel, Trace? trace = null)
    {
        var x = mel;
        foreach (var conv in _condnet) x = Ops.Elu(conv.Forward(x), 1f);
        x = Ops.Abs(_classifier.Forward(x.Transpose().Contiguous())); // [B, T, 1]
        var f0 = x.Reshape(x.Shape[0], x.Shape[1]);
        trace?.Record(Path, f0);
        return f0;
    }
}
