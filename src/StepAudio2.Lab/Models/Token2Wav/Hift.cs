using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The fixed hyper-parameters of the CosyVoice 2 HiFT that Step-Audio 2 builds with all defaults (docs/model.md §7.10); channel
/// widths are not here: they are read from the checkpoint's shapes.
/// </summary>
public sealed record HiftConfig
{
    public int SampleRate { get; init; } = 24000;
    public int Harmonics { get; init; } = 9;
    public int[] UpsampleRates { get; init; } = [8, 5, 3];
    public int[] UpsampleKernels { get; init; } = [16, 11, 7];
    public int[] ResblockKernels { get; init; } = [3, 7, 11];
    public int[] SourceResblockKernels { get; init; } = [7, 7, 11];
    public int[] Dilations { get; init; } = [1, 3, 5];
    public int NFft { get; init; } = 16;
    public int Hop { get; init; } = 4;
    public float LeakySlope { get; init; } = 0.1f;
    public float AudioLimit { get; init; } = 0.99f;

    /// <summary>Samples per mel frame: Π upsample rates · hop (480).</summary>
    public int SamplesPerFrame => UpsampleRates.Aggregate(1, (a, u) => a * u) * Hop;
}

/// <summary>
/// <c>HiFTGenerator</c>, the HiFT vocoder (docs/model.md §7.10): mel [B, 80, T] → 24 kHz waveform [B, 480·T]. Weights are taken by
/// exact key from hift.pt (the <c>generator.</c> prefix stripped), weight norm folded at load, widths inferred from shapes.
/// Activations are traced under <c>hift.&lt;module path&gt;</c>, plus <c>hift.source_stft</c> and <c>hift</c> (waveform).
/// </summary>
public sealed class Hift
{
    private const string P = "hift";
    private readonly Conv1d _convPre, _convPost;
    private readonly ConvTranspose1d[] _ups;
    private readonly Conv1d[] _sourceDowns;
    private readonly HiftResBlock[] _sourceResblocks, _resblocks;
    private readonly HiftStft _stft;

    public HiftConfig Config { get; }
    public F0Predictor F0Predictor { get; }
    public HiftSource Source { get; }
    public int MelChannels { get; }
    public int BaseChannels { get; }
    /// <summary>Channels after each upsampling stage (256, 128, 64 at full size).</summary>
    public IReadOnlyList<int> StageChannels { get; }
    /// <summary>The decoder's modules, for stepping through (or timing) <see cref="Decode"/> one module at a time.</summary>
    public Conv1d ConvPre => _convPre;
    public IReadOnlyList<ConvTranspose1d> Ups => _ups;
    public IReadOnlyList<Conv1d> SourceDowns => _sourceDowns;
    public IReadOnlyList<HiftResBlock> SourceResblocks => _sourceResblocks;
    public IReadOnlyList<HiftResBlock> Resblocks => _resblocks;
    public Conv1d ConvPost => _convPost;
    public HiftStft Stft => _stft;

    /// <summary>The backend this vocoder runs on (entered by its public entry points).</summary>
    public IBackend Backend { get; }

    /// <summary>Builds from <paramref name="w"/> whose keys are already stripped of <c>generator.</c>; runs on
    /// <paramref name="backend"/> (default: the one current when loaded, <see cref="Ops.Backend"/>).</summary>
    public Hift(Weights w, HiftConfig? config = null, IBackend? backend = null)
    {
        Backend = backend ?? Ops.Backend; // made inside a backend scope (a CLI --backend, a notebook), it belongs to that backend
        Config = config ?? new HiftConfig();
        var c = Config;
        int nStages = c.UpsampleRates.Length, spec = c.NFft + 2;
        var pre = WeightNorm.Load(w, "conv_pre", -1, -1, 7);
        BaseChannels = pre.Shape[0];
        MelChannels = pre.Shape[1];
        _convPre = new Conv1d($"{P}.conv_pre", pre, WeightNorm.Plain(w, "conv_pre.bias", BaseChannels), 1, 3);

        F0Predictor = new F0Predictor(w, "f0_predictor", $"{P}.f0_predictor", MelChannels);
        Source = new HiftSource(w, "m_source", $"{P}.m_source", c.Harmonics, c.SampleRate, c.SamplesPerFrame);
        _stft = new HiftStft(c.NFft, c.Hop);

        _ups = new ConvTranspose1d[nStages];
        _sourceDowns = new Conv1d[nStages];
        _sourceResblocks = new HiftResBlock[nStages];
        _resblocks = new HiftResBlock[nStages * c.ResblockKernels.Length];
        var stageChannels = new int[nStages];
        int cin = BaseChannels;
        // source_downs stride for stage i: product of the upsample rates after stage i (15, 3, 1), kernel 2·stride, pad stride/2
        for (int i = 0; i < nStages; i++)
        {
            int u = c.UpsampleRates[i], k = c.UpsampleKernels[i];
            var up = WeightNorm.Load(w, $"ups.{i}", cin, -1, k);
            int ch = up.Shape[1];
            stageChannels[i] = ch;
            _ups[i] = new ConvTranspose1d($"{P}.ups.{i}", up, WeightNorm.Plain(w, $"ups.{i}.bias", ch), u, (k - u) / 2);

            int stride = 1;
            for (int j = i + 1; j < nStages; j++) stride *= c.UpsampleRates[j];
            _sourceDowns[i] = stride == 1
                ? new Conv1d($"{P}.source_downs.{i}", WeightNorm.Plain(w, $"source_downs.{i}.weight", ch, spec, 1), WeightNorm.Plain(w, $"source_downs.{i}.bias", ch), 1, 0)
                : new Conv1d($"{P}.source_downs.{i}", WeightNorm.Plain(w, $"source_downs.{i}.weight", ch, spec, 2 * stride), WeightNorm.Plain(w, $"source_downs.{i}.bias", ch), stride, stride / 2);
            _sourceResblocks[i] = new HiftResBlock(w, $"source_resblocks.{i}", $"{P}.source_resblocks.{i}", ch, c.SourceResblockKernels[i], c.Dilations);
            for (int j = 0; j < c.ResblockKernels.Length; j++)
            {
                int r = i * c.ResblockKernels.Length + j;
                _resblocks[r] = new HiftResBlock(w, $"resblocks.{r}", $"{P}.resblocks.{r}", ch, c.ResblockKernels[j], c.Dilations);
            }
            cin = ch;
        }
        StageChannels = stageChannels;
        _convPost = new Conv1d($"{P}.conv_post", WeightNorm.Load(w, "conv_post", spec, cin, 7), WeightNorm.Plain(w, "conv_post.bias", spec), 1, 3);
    }

    /// <summary>
    /// Opens a hift.pt (torch zip checkpoint), strips <c>generator.</c> when every key has it, and builds the vocoder;
    /// fails with a <see cref="WeightException"/> on a missing, mis-shaped or unused key.
    /// </summary>
    public static Hift Load(string path, HiftConfig? config = null, IBackend? backend = null)
    {
        using var ckpt = TorchCheckpoint.Open(path);
        return Load(ckpt, config, backend);
    }

    /// <summary>Builds from any tensor source holding hift.pt's keys (with or without the <c>generator.</c> prefix).</summary>
    public static Hift Load(ITensorSource source, HiftConfig? config = null, IBackend? backend = null)
    {
        const string prefix = "generator.";
        ITensorSource src = source.Tensors.Count > 0 && source.Tensors.All(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
            ? new PrefixedTensorSource(source, prefix)
            : source;
        var w = new Weights(src);
        var hift = new Hift(w, config, backend);
        w.AssertAllUsed("");
        return hift;
    }

    /// <summary>mel [B, 80, T] → waveform [B, 480·T]; <paramref name="noise"/> [B, 480·T, 9] is the NSF's N(0,1) draw
    /// (null: drawn from <paramref name="seed"/>).</summary>
    public Tensor Forward(Tensor mel, Tensor? noise = null, int seed = 0, Trace? trace = null)
    {
        using var _ = Ops.Use(Backend);
        var (_, source) = ComputeSource(mel, noise, seed, trace);
        return Decode(mel, source, trace);
    }

    /// <summary>mel → (f0 [B, T], source [B, 480·T, 1]).</summary>
    public (Tensor F0, Tensor Source) ComputeSource(Tensor mel, Tensor? noise = null, int seed = 0, Trace? trace = null)
    {
        CheckMel(mel);
        using var _ = Ops.Use(Backend);
        var f0 = F0Predictor.Forward(Ops.FromHost(mel), trace);
        noise ??= Source.SampleNoise(mel.Shape[0], mel.Shape[2], seed);
        return (f0, Source.Forward(f0, Ops.FromHost(noise), trace));
    }

    /// <summary>The decoder (docs/model.md §7.10 steps 4–8): mel [B, 80, T] and source [B, 480·T, 1] (or [B, 1, 480·T]) → waveform.</summary>
    public Tensor Decode(Tensor mel, Tensor source, Trace? trace = null)
    {
        CheckMel(mel);
        using var _ = Ops.Use(Backend);
        int bsz = mel.Shape[0], samples = mel.Shape[2] * Config.SamplesPerFrame;
        if (source.ElementCount != (long)bsz * samples)
            throw new ArgumentException($"hift: source {Tensor.ShapeString(source.Shape)} does not hold {bsz}×{samples} samples");
        var sStft = _stft.Forward(Ops.FromHost(source).Reshape(bsz, samples));
        trace?.Record($"{P}.source_stft", sStft);

        var x = _convPre.Forward(Ops.FromHost(mel), trace);
        int nk = Config.ResblockKernels.Length;
        for (int i = 0; i < _ups.Length; i++)
        {
            x = _ups[i].Forward(Ops.LeakyRelu(x, Config.LeakySlope), trace);
            if (i == _ups.Length - 1) x = Ops.Pad(x, [(0, 0), (0, 0), (1, 0)], PadMode.Reflect); // reflection_pad (1, 0)
            var si = _sourceResblocks[i].Forward(_sourceDowns[i].Forward(sStft, trace), trace);
            x = Ops.Add(x, si);
            // the mean of the nk resblocks, summed in order then divided as the official xs / num_kernels
            Tensor? xs = null;
            for (int j = 0; j < nk; j++)
            {
                var y = _resblocks[i * nk + j].Forward(x, trace);
                xs = xs is null ? y : Ops.Add(xs, y);
            }
            x = Ops.Divide(xs!, Ops.FromHost(Tensor.FromArray([(float)nk], 1)));
        }
        x = _convPost.Forward(Ops.LeakyRelu(x, 0.01f), trace);
        var wav = Synthesize(x);
        trace?.Record(P, wav);
        return wav;
    }

    /// <summary>conv_post output [B, 18, F] → magnitude exp(·) clipped at 100, phase sin(·) → iSTFT → clamp(±limit), [B, hop·(F−1)].</summary>
    internal Tensor Synthesize(Tensor x)
    {
        int bins = _stft.Bins;
        var magnitude = Ops.Clamp(Ops.Exp(x.Slice(1, 0, bins)), float.NegativeInfinity, 100f);
        var phase = Ops.Sin(x.Slice(1, bins, bins));
        var wav = _stft.Inverse(Ops.Multiply(magnitude, Ops.Cos(phase)), Ops.Multiply(magnitude, Ops.Sin(phase)));
        return Ops.Clamp(wav, -Config.AudioLimit, Config.AudioLimit);
    }

    private void CheckMel(Tensor mel)
    {
        if (mel.Rank != 3 || mel.Shape[1] != MelChannels || mel.Shape[2] < 1)
            throw new ArgumentException($"hift: mel {Tensor.ShapeString(mel.Shape)} must be [B, {MelChannels}, T ≥ 1]");
    }
}
