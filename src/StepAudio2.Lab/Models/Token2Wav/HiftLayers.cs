using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// HiFT <c>ResBlock</c> (CosyVoice hifigan, docs/model.md §7.10 step 6): three rounds of Snake → dilated conv → Snake → conv,
/// each added back to x. Keys <c>{key}.convs1/convs2.{j}</c> (weight-normed) and <c>{key}.activations1/2.{j}.alpha</c>.
/// </summary>
public sealed class HiftResBlock
{
    private readonly Conv1d[] _convs1, _convs2;
    private readonly Tensor[] _alpha1, _alpha2;

    public string Path { get; }
    public int Channels { get; }
    public int Kernel { get; }
    /// <summary>The dilated convs (convs1.j) and the plain ones (convs2.j), j = 0…2.</summary>
    public IReadOnlyList<Conv1d> Convs1 => _convs1;
    public IReadOnlyList<Conv1d> Convs2 => _convs2;
    /// <summary>Snake α [C] of activations1.j / activations2.j.</summary>
    public IReadOnlyList<Tensor> Alpha1 => _alpha1;
    public IReadOnlyList<Tensor> Alpha2 => _alpha2;

    public HiftResBlock(Weights w, string key, string path, int channels, int kernel, IReadOnlyList<int> dilations)
    {
        Path = path;
        Channels = channels;
        Kernel = kernel;
        int n = dilations.Count;
        _convs1 = new Conv1d[n];
        _convs2 = new Conv1d[n];
        _alpha1 = new Tensor[n];
        _alpha2 = new Tensor[n];
        for (int j = 0; j < n; j++)
        {
            int d = dilations[j];
            _convs1[j] = new Conv1d($"{path}.convs1.{j}", WeightNorm.Load(w, $"{key}.convs1.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs1.{j}.bias", channels), 1, (kernel * d - d) / 2, d);
            _convs2[j] = new Conv1d($"{path}.convs2.{j}", WeightNorm.Load(w, $"{key}.convs2.{j}", channels, channels, kernel),
                WeightNorm.Plain(w, $"{key}.convs2.{j}.bias", channels), 1, (kernel - 1) / 2);
            _alpha1[j] = WeightNorm.Plain(w, $"{key}.activations1.{j}.alpha", channels);
            _alpha2[j] = WeightNorm.Plain(w, $"{key}.activations2.{j}.alpha", channels);
        }
        Weights = new SnakeResBlockWeights
        {
            Convs1 = _convs1.Select(l => l.Weight).ToArray(), Convs1Bias = _convs1.Select(l => l.Bias!).ToArray(),
            Dilations = dilations.ToArray(),
            Convs2 = _convs2.Select(l => l.Weight).ToArray(), Convs2Bias = _convs2.Select(l => l.Bias!).ToArray(),
            Alpha1 = _alpha1, Alpha2 = _alpha2,
        };
    }

    /// <summary>The block's weights as <see cref="IBackend.SnakeResBlock"/> takes them (the same tensors).</summary>
    public SnakeResBlockWeights Weights { get; }

    /// <summary>x [B, C, T] → x after the three rounds (x ← convs2(Snake(convs1(Snake(x)))) + x, as the official
    /// <c>x = xt + x</c>), as one backend call (<see cref="Composite.SnakeResBlock"/> op by op).</summary>
    public Tensor Forward(Tensor x, Trace? trace = null)
    {
        if (x.Rank != 3 || x.Shape[1] != Channels)
            throw new ArgumentException($"{Path}: input {Tensor.ShapeString(x.Shape)} must be [B, {Channels}, T]");
        var y = Ops.SnakeResBlock(x, Weights);
        trace?.Record(Path, y);
        return y;
    }
}

/// <summary>
/// <c>ConvRNNF0Predictor</c> (docs/model.md §7.10 step 1): five weight-normed Conv1d(k3, p1) + ELU, then Linear → 1 and |·|.
/// The hidden width (cond_channels) is read from the checkpoint.
/// </summary>
public sealed class F0Predictor
{
    private readonly Conv1d[] _condnet;
    private readonly Linear _classifier;

    public string Path { get; }
    public int InChannels { get; }
    public int CondChannels { get; }
    /// <summary>condnet.0/2/4/6/8 (each followed by ELU) and the classifier Linear(cond → 1).</summary>
    public IReadOnlyList<Conv1d> Condnet => _condnet;
    public Linear Classifier => _classifier;

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
        x = Ops.Abs(_classifier.Forward(Ops.Contiguous(x.Transpose()))); // [B, T, 1]
        var f0 = x.Reshape(x.Shape[0], x.Shape[1]);
        trace?.Record(Path, f0);
        return f0;
    }
}
