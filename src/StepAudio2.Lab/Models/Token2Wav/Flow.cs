using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models.Nn;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// <c>CausalMaskedDiffWithXvec</c>, the flow model (module <c>flow</c>, docs/model.md §7.6): speech codes + voice prompt → 80-bin
/// mel at 50 fps. <c>input_embedding</c> [vocab, D], <c>spk_embed_affine_layer</c> [80, 192] + bias, <c>encoder</c>
/// (<see cref="FlowEncoder"/>), <c>encoder_proj</c> [80, D] + bias, <c>decoder</c> (<see cref="CausalConditionalCfm"/>).
/// Weights come from flow.pt by exact key with shapes from flow.yaml; a missing, extra or mis-shaped key is a
/// <see cref="WeightException"/> naming it. Activations are traced under <c>flow.</c>. Weights stay in place in the
/// checkpoint's memory map; a flow loaded from a path owns (and disposes) its checkpoint.
/// </summary>
public sealed class Flow : IDisposable
{
    private ITensorSource? _owned;

    public const string CheckpointFileName = "flow.pt";
    private const string P = FlowWeights.Root;

    public Flow(Weights w, FlowConfig config, IBackend? backend = null)
    {
        Backend = backend ?? Ops.Backend; // made inside a backend scope (a CLI --backend, a notebook), it belongs to that backend
        Config = config;
        int d = config.InputSize, mel = config.OutputSize;
        InputEmbedding = w.Get("input_embedding.weight", config.VocabSize, d);
        SpkEmbedAffineLayer = FlowWeights.Linear(w, "spk_embed_affine_layer", mel, config.SpkEmbedDim);
        Encoder = new FlowEncoder(w, config.Encoder);
        EncoderProj = FlowWeights.Linear(w, "encoder_proj", mel, config.Encoder.OutputSize);
        Decoder = new CausalConditionalCfm(w, config.Decoder);
    }

    public FlowConfig Config { get; }
    /// <summary>The backend this flow runs on (entered by <see cref="Generate"/>).</summary>
    public IBackend Backend { get; }
    /// <summary><c>input_embedding.weight</c> [vocab, D].</summary>
    public Tensor InputEmbedding { get; }
    public Linear SpkEmbedAffineLayer { get; }
    public FlowEncoder Encoder { get; }
    public Linear EncoderProj { get; }
    public CausalConditionalCfm Decoder { get; }
    public int MelChannels => Config.OutputSize;

    /// <summary>Loads <c>flow.pt</c> and <c>flow.yaml</c> from a token2wav folder.</summary>
    public static Flow Load(string token2wavDir, IBackend? backend = null) =>
        Load(Path.Combine(token2wavDir, CheckpointFileName), Path.Combine(token2wavDir, FlowConfig.FileName), backend);

    /// <summary>Loads a flow checkpoint (torch zip) with the configuration of a flow.yaml.</summary>
    public static Flow Load(string flowPt, string flowYaml, IBackend? backend = null)
    {
        var config = FlowConfig.Load(flowYaml);
        var ckpt = TorchCheckpoint.Open(flowPt);
        try
        {
            var flow = Load(ckpt, config, backend);
            flow._owned = ckpt;
            return flow;
        }
        catch
        {
            ckpt.Dispose();
            throw;
        }
    }

    /// <summary>Releases the checkpoint mapping when this flow opened it (the weights are unusable afterwards).</summary>
    public void Dispose()
    {
        _owned?.Dispose();
        _owned = null;
    }

    /// <summary>Builds from any tensor source holding flow.pt's keys (which must outlive the flow); every key must be used.</summary>
    public static Flow Load(ITensorSource source, FlowConfig config, IBackend? backend = null)
    {
        var w = new Weights(source);
        var flow = new Flow(w, config, backend);
        w.AssertAllUsed("");
        return flow;
    }

    /// <summary>N(0,1) CFM noise [1, 80, frames] from a seeded generator (<see cref="GaussianNoise"/>); stands in for the
    /// official module's unseeded <c>rand_noise</c> buffer.</summary>
    public Tensor SampleNoise(int frames, int seed) => GaussianNoise.Sample(seed, 1, MelChannels, frames);

    /// <summary>
    /// Speech codes (N) with the voice prompt's tokens (P), mel [1, 2P, 80] and x-vector [1, 192] → mel [1, 80, 2N]
    /// (docs/model.md §7.6). <paramref name="noise"/> [1, 80, 2(P+N)] is the CFM's starting point; null draws it from
    /// <paramref name="seed"/>. With a trace, the inputs are recorded as <c>input.*</c> and every stage under <c>flow.</c>.
    /// </summary>
    public Tensor Generate(ReadOnlySpan<int> codes, ReadOnlySpan<int> promptTokens, Tensor promptMel, Tensor xvector,
        Tensor? noise = null, int seed = 0, Trace? trace = null, IProgress<FlowProgress>? progress = null, int steps = 10)
    {
        int n = codes.Length, p = promptTokens.Length, mel = MelChannels, ratio = Config.TokenMelRatio;
        if (n < 1) throw new ArgumentException("flow: no speech codes to synthesise", nameof(codes));
        int total = p + n, framesPrompt = ratio * p, frames = ratio * total;
        if (promptMel.Rank != 3 || promptMel.Shape[0] != 1 || promptMel.Shape[1] != framesPrompt || promptMel.Shape[2] != mel)
            throw new ArgumentException($"flow: prompt mel {Tensor.ShapeString(promptMel.Shape)} must be [1, {framesPrompt}, {mel}] ({ratio} frames per prompt token; pad or crop it first)", nameof(promptMel));
        if (xvector.ElementCount != Config.SpkEmbedDim || xvector.Shape[^1] != Config.SpkEmbedDim)
            throw new ArgumentException($"flow: x-vector {Tensor.ShapeString(xvector.Shape)} must be [1, {Config.SpkEmbedDim}]", nameof(xvector));
        if (noise is not null && (noise.Rank != 3 || noise.Shape[0] != 1 || noise.Shape[1] != mel || noise.Shape[2] != frames))
            throw new ArgumentException($"flow: noise {Tensor.ShapeString(noise.Shape)} must be [1, {mel}, {frames}]", nameof(noise));
        var ids = new int[total];
        promptTokens.CopyTo(ids);
        codes.CopyTo(ids.AsSpan(p));
        for (int i = 0; i < total; i++)
        {
            if (ids[i] >= Config.VocabSize)
                throw new ArgumentOutOfRangeException(i < p ? nameof(promptTokens) : nameof(codes),
                    $"flow: token {ids[i]} at {(i < p ? "prompt position " + i : "code position " + (i - p))} is outside the vocabulary of {Config.VocabSize}");
            ids[i] = Math.Max(ids[i], 0); // the official module clamps at 0 (padding ids)
        }
        noise ??= SampleNoise(frames, seed);

        if (trace is not null)
        {
            trace.Record("input.codes", Tensor.FromArray(codes.ToArray().Select(c => (long)c).ToArray(), n));
            trace.Record("input.prompt_tokens", Tensor.FromArray(promptTokens.ToArray().Select(c => (long)c).ToArray(), p));
            trace.Record("input.xvector", xvector);
            trace.Record("input.prompt_mel", promptMel);
            trace.Record("input.noise", noise);
        }

        using var _ = Ops.Use(Backend);
        // speaker: F.normalize (of the input, on the host before upload) then the affine layer → [1, 80]
        var spk = SpkEmbedAffineLayer.Forward(Ops.FromHost(Normalize(xvector.Contiguous().Reshape(1, Config.SpkEmbedDim))), trace);

        var emb = Ops.Take(InputEmbedding, ids).Reshape(1, total, Config.InputSize);
        trace?.Record($"{P}.input_embedding", emb);
        var h = Encoder.Forward(emb, trace);
        var mu = Ops.Contiguous(EncoderProj.Forward(h, trace).Permute(0, 2, 1)); // [1, 80, 2(P+N)]

        // cond: the prompt mel channels-first in the first 2P frames, zeros after
        var cond = Ops.Pad(Ops.FromHost(promptMel).Permute(0, 2, 1), [(0, 0), (0, 0), (0, frames - framesPrompt)]);
        var x = Decoder.Forward(mu, spk, cond, Ops.FromHost(noise), steps, trace, progress);
        var output = Ops.Contiguous(x.Slice(2, framesPrompt, frames - framesPrompt));
        trace?.Record(P, output);
        return output;
    }

    /// <summary><c>F.normalize(x, dim=1)</c>: x / max(‖x‖₂, 1e−12), the norm accumulated in float32.</summary>
    private static Tensor Normalize(Tensor x)
    {
        var v = x.ToFloatArray();
        float ss = 0;
        foreach (float a in v) ss += a * a;
        float norm = MathF.Max(MathF.Sqrt(ss), 1e-12f);
        for (int i = 0; i < v.Length; i++) v[i] /= norm;
        return Tensor.FromArray(v, x.Shape);
    }
}
