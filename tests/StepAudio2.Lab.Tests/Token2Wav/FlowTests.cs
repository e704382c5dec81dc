using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Parity;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// The tiny flow of reference-data/make_flow.py (official key names and structure, small widths) against the Python
/// reference dump token2wav-short (P = 12 prompt tokens, N = 20 codes): every traced path, each module fed the
/// reference's own inputs, the loader's failures, and the chain into the tiny HiFT.
/// </summary>
public sealed class FlowTests(ITestOutputHelper output)
{
    private static string Token2WavDir => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");
    private const double F32Tier = 1e-5;

    private static readonly Lazy<Flow> TinyFlow = new(() => Flow.Load(Token2WavDir));

    private static readonly string[] FlowPaths =
    [
        "flow.spk_embed_affine_layer", "flow.input_embedding", "flow.encoder.embed", "flow.encoder.pre_lookahead_layer",
        "flow.encoder.encoders.0", "flow.encoder.encoders.1", "flow.encoder.up_layer", "flow.encoder.up_embed",
        "flow.encoder.up_encoders.0", "flow.encoder.up_encoders.1", "flow.encoder", "flow.encoder_proj",
        .. Enumerable.Range(0, 10).Select(k => $"flow.decoder.estimator.step.{k}"),
        "flow.decoder", "flow",
    ];

    internal static double RelL2(Tensor actual, Tensor expected, string name)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape),
            $"{name}: shape {Tensor.ShapeString(actual.Shape)} vs reference {Tensor.ShapeString(expected.Shape)}");
        var a = actual.ToDoubleArray();
        var e = expected.ToDoubleArray();
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        Assert.True(den > 0, $"{name}: reference is all zeros");
        return Math.Sqrt(num / den);
    }

    private void AssertClose(Tensor actual, Tensor expected, string name, double tol = F32Tier)
    {
        double rel = RelL2(actual, expected, name);
        output.WriteLine($"{name} rel-L2 {rel:E3}");
        Assert.True(rel <= tol, $"{name}: rel-L2 {rel:E3} > {tol:E0}");
    }

    private static int[] Ints(Tensor t) => t.ToInt64Array().Select(v => checked((int)v)).ToArray();

    private static Tensor ChannelsFirst(Tensor x) => x.Permute(0, 2, 1).Contiguous();

    [Fact]
    public void TinyCheckpointLoadsWithTheYamlShapes()
    {
        var flow = TinyFlow.Value;
        Assert.Equal(64, flow.Config.InputSize);
        Assert.Equal([6561, 64], flow.InputEmbedding.Shape);
        Assert.Equal(2, flow.Encoder.Encoders.Length);
        Assert.Equal(2, flow.Encoder.UpEncoders.Length);
        Assert.Equal(4, flow.Encoder.Encoders[0].SelfAttn.Heads);
        Assert.Equal(16, flow.Encoder.Encoders[0].SelfAttn.HeadDim);
        Assert.Equal(2, flow.Decoder.Estimator.Blocks.Length);
        Assert.Equal(4, flow.Decoder.Estimator.Blocks[0].Attn.Heads);
        Assert.Equal(256, flow.Decoder.Estimator.Blocks[0].MlpFc1.OutFeatures);
        Assert.Equal(4, flow.Encoder.PreLookahead.Conv1.Kernel);
        Assert.Equal(5, flow.Encoder.UpLayer.Conv.Kernel);
    }

    /// <summary>The float32 τ_k bit patterns torch 1.13 produces (TAU_HEX of steplab_ref/flow.py).</summary>
    [Fact]
    public void TimeScheduleIsTorchsFloat32Grid()
    {
        string[] hex = ["0x0.0p+0", "0x1.936d8p-7", "0x1.90f1ep-5", "0x1.be6ffp-4", "0x1.872218p-3", "0x1.2bec34p-2",
            "0x1.a61ba4p-2", "0x1.178e8ep-1", "0x1.61c888p-1", "0x1.afe7d2p-1", "0x1.0p+0"];
        var tau = CausalConditionalCfm.TSpan(10);
        Assert.Equal(11, tau.Length);
        for (int k = 0; k < hex.Length; k++) Assert.Equal(ParseHexFloat(hex[k]), tau[k]);
        Assert.Equal(0.0123117f, tau[1], 6);
        Assert.Equal(0.8435655f, tau[9], 6);
    }

    private static float ParseHexFloat(string s)
    {
        // 0x1.<hex>p<exp> (or 0x0.0p+0)
        var body = s[2..];
        int p = body.IndexOf('p');
        var mant = body[..p].Split('.');
        int exp = int.Parse(body[(p + 1)..]);
        double v = Convert.ToInt64(mant[0], 16);
        string frac = mant.Length > 1 ? mant[1] : "";
        for (int i = 0; i < frac.Length; i++) v += Convert.ToInt32(frac[i].ToString(), 16) / Math.Pow(16, i + 1);
        return (float)(v * Math.Pow(2, exp));
    }

    [Fact]
    public void EveryTracedPathMatchesTheReference()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var trace = new Trace();
        var mel = flow.Generate(Ints(dump.Get("input.codes")), Ints(dump.Get("input.prompt_tokens")), dump.Get("input.prompt_mel"),
            dump.Get("input.xvector"), dump.Get("input.noise"), trace: trace);
        Assert.Equal([1, 80, 40], mel.Shape);
        foreach (var path in FlowPaths)
        {
            Assert.True(trace.Contains(path), $"trace lacks {path}");
            AssertClose(trace[path], dump.Get(path), path);
        }
        Assert.Equal(mel.ToFloatArray(), trace["flow"].ToFloatArray());
        // inputs are recorded as given, in the dump's layout
        foreach (var input in new[] { "input.codes", "input.prompt_tokens", "input.xvector", "input.prompt_mel", "input.noise" })
        {
            Assert.Equal(dump.Get(input).DType, trace[input].DType);
            Assert.Equal(dump.Get(input).ToDoubleArray(), trace[input].ToDoubleArray());
        }
        // the paths come in the reference's execution order
        var order = (DumpFile.ExecutionOrder(dump) ?? throw new InvalidOperationException("dump has no steplab.order")).Where(p => p.StartsWith("flow", StringComparison.Ordinal)).ToList();
        Assert.Equal(order, trace.Order.Where(order.Contains).ToList());
    }

    [Fact]
    public void ATraceWithCapturePatternsKeepsOnlyThoseAndChangesNothing()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var trace = new Trace(["flow.decoder.estimator.step.*"]);
        var codes = Ints(dump.Get("input.codes"));
        var prompt = Ints(dump.Get("input.prompt_tokens"));
        var a = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), dump.Get("input.noise"), trace: trace);
        var b = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), dump.Get("input.noise"));
        Assert.Equal(a.ToFloatArray(), b.ToFloatArray());
        Assert.Equal(Enumerable.Range(0, 10).Select(k => $"flow.decoder.estimator.step.{k}"), trace.Order);
    }

    [Fact]
    public void EncoderModulesFedTheReferenceInputsMatch()
    {
        var enc = TinyFlow.Value.Encoder;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        AssertClose(enc.Forward(dump.Get("flow.input_embedding")), dump.Get("flow.encoder"), "flow.encoder (from the reference embedding)");
        AssertClose(enc.PreLookahead.Forward(dump.Get("flow.encoder.embed")), dump.Get("flow.encoder.pre_lookahead_layer"), "pre_lookahead_layer");
        int t = dump.Get("flow.encoder.embed").Shape[1], d = enc.Config.OutputSize;
        var pos = EspnetRelPositionalEncoding.Table(t, d);
        AssertClose(enc.Encoders[0].Forward(dump.Get("flow.encoder.pre_lookahead_layer"), pos), dump.Get("flow.encoder.encoders.0"), "encoders.0");
        AssertClose(enc.Encoders[1].Forward(dump.Get("flow.encoder.encoders.0"), pos), dump.Get("flow.encoder.encoders.1"), "encoders.1");
        var up = new Trace();
        var upOut = enc.UpLayer.Forward(dump.Get("flow.encoder.encoders.1"), up);
        AssertClose(up["flow.encoder.up_layer"], dump.Get("flow.encoder.up_layer"), "up_layer (channels-first)");
        Assert.Equal([1, 2 * t, d], upOut.Shape);
        var pos2 = EspnetRelPositionalEncoding.Table(2 * t, d);
        AssertClose(enc.UpEncoders[0].Forward(dump.Get("flow.encoder.up_embed"), pos2), dump.Get("flow.encoder.up_encoders.0"), "up_encoders.0");
        AssertClose(enc.UpEncoders[1].Forward(dump.Get("flow.encoder.up_encoders.0"), pos2), dump.Get("flow.encoder.up_encoders.1"), "up_encoders.1");
        AssertClose(enc.AfterNorm.Forward(dump.Get("flow.encoder.up_encoders.1")), dump.Get("flow.encoder"), "after_norm");
        AssertClose(TinyFlow.Value.EncoderProj.Forward(dump.Get("flow.encoder")), dump.Get("flow.encoder_proj"), "encoder_proj");
    }

    [Fact]
    public void PositionTableRowsAreSinCosOfIMinusJ()
    {
        // rows r = T−1 … −(T−1): row c holds r = T−1−c; sin at even, cos at odd columns (checked in double)
        const int t = 5, d = 8;
        var pe = EspnetRelPositionalEncoding.Table(t, d).ToFloatArray();
        for (int c = 0; c < 2 * t - 1; c++)
            for (int m = 0; m < d / 2; m++)
            {
                double r = t - 1 - c, w = Math.Exp(-2.0 * m * Math.Log(10000.0) / d);
                Assert.Equal(Math.Sin(r * w), pe[c * d + 2 * m], 5);
                Assert.Equal(Math.Cos(r * w), pe[c * d + 2 * m + 1], 5);
            }
    }

    /// <summary>The estimator of step 0 (t = 0) and the whole CFM, both fed the reference's μ, speaker and noise.</summary>
    [Fact]
    public void DecoderFedTheReferenceConditioningMatches()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var mu = ChannelsFirst(dump.Get("flow.encoder_proj"));
        var spk = dump.Get("flow.spk_embed_affine_layer");
        var noise = dump.Get("input.noise");
        int frames = mu.Shape[2];
        var promptMel = dump.Get("input.prompt_mel");
        var condV = new float[80 * frames];
        var pm = promptMel.ToFloatArray();
        for (int f = 0; f < promptMel.Shape[1]; f++)
            for (int c = 0; c < 80; c++) condV[c * frames + f] = pm[f * 80 + c];
        var cond = Tensor.FromArray(condV, 1, 80, frames);

        // step 0 through the public upstream-shaped entry point: rows (x, μ, s, cond) and (x, 0, 0, 0)
        var zeros = Tensor.Zeros(DType.F32, 1, 80, frames);
        var x2 = Ops2(noise, noise);
        var v = flow.Decoder.Estimator.Forward(x2, Ops2(mu, zeros), [0f, 0f],
            Tensor.FromArray([.. spk.ToFloatArray(), .. new float[80]], 2, 80), Ops2(cond, zeros));
        AssertClose(v, dump.Get("flow.decoder.estimator.step.0"), "estimator step 0 (reference μ)");

        var trace = new Trace();
        var x = flow.Decoder.Forward(mu, spk, cond, noise, trace: trace);
        AssertClose(x, dump.Get("flow.decoder"), "flow.decoder (reference μ)");
        for (int k = 0; k < 10; k++)
            AssertClose(trace[$"flow.decoder.estimator.step.{k}"], dump.Get($"flow.decoder.estimator.step.{k}"), $"step {k} (reference μ)");
    }

    private static Tensor Ops2(Tensor a, Tensor b) => StepAudio2.Lab.Engine.Ops.Concatenate([a, b], 0);

    [Fact]
    public void ProgressReportsEveryEulerStep()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var steps = new List<FlowProgress>();
        flow.Generate(Ints(dump.Get("input.codes")), Ints(dump.Get("input.prompt_tokens")), dump.Get("input.prompt_mel"),
            dump.Get("input.xvector"), dump.Get("input.noise"), progress: new SyncProgress(steps.Add));
        Assert.Equal(Enumerable.Range(1, 10), steps.Select(s => s.Step));
        Assert.All(steps, s => { Assert.Equal(10, s.Steps); Assert.Equal(64, s.Frames); });
    }

    private sealed class SyncProgress(Action<FlowProgress> report) : IProgress<FlowProgress>
    {
        public void Report(FlowProgress value) => report(value);
    }

    [Fact]
    public void SeededNoiseIsReproducibleAndChangesTheMel()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var codes = Ints(dump.Get("input.codes"));
        var prompt = Ints(dump.Get("input.prompt_tokens"));
        var a = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), seed: 5).ToFloatArray();
        var b = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), seed: 5).ToFloatArray();
        var c = flow.Generate(codes, prompt, dump.Get("input.prompt_mel"), dump.Get("input.xvector"), seed: 6).ToFloatArray();
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.All(a, v => Assert.True(float.IsFinite(v)));
        var z = flow.SampleNoise(1000, 3).ToFloatArray();
        double mean = z.Average(v => (double)v), var = z.Average(v => (v - mean) * (v - mean));
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(var, 0.95, 1.05);
    }

    [Fact]
    public void BadInputsAreArgumentErrorsNamingTheProblem()
    {
        var flow = TinyFlow.Value;
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var codes = Ints(dump.Get("input.codes"));
        var prompt = Ints(dump.Get("input.prompt_tokens"));
        var pm = dump.Get("input.prompt_mel");
        var xv = dump.Get("input.xvector");
        var ex = Assert.Throws<ArgumentException>(() => flow.Generate(codes, prompt[..^1], pm, xv));
        Assert.Contains("prompt mel", ex.Message);
        Assert.Throws<ArgumentException>(() => flow.Generate(codes, prompt, pm, Tensor.Zeros(DType.F32, 1, 191)));
        Assert.Throws<ArgumentException>(() => flow.Generate(codes, prompt, pm, xv, Tensor.Zeros(DType.F32, 1, 80, 63)));
        Assert.Throws<ArgumentException>(() => flow.Generate([], prompt, pm, xv));
        var bad = (int[])codes.Clone();
        bad[7] = 6561;
        var oor = Assert.Throws<ArgumentOutOfRangeException>(() => flow.Generate(bad, prompt, pm, xv));
        Assert.Contains("code position 7", oor.Message);
    }

    // ------------------------------------------------------------------------------------------------ loader failures

    private static InMemoryTensorSource CopyOf(Func<string, Tensor, Tensor?> edit)
    {
        using var ckpt = TorchCheckpoint.Open(Path.Combine(Token2WavDir, "flow.pt"));
        var mem = new InMemoryTensorSource(Path.Combine(Token2WavDir, "flow.pt"));
        foreach (var info in ckpt.Tensors)
        {
            var t = ckpt.Get(info.Name);
            var edited = edit(info.Name, Tensor.FromArray(t.ToFloatArray(), t.Shape));
            if (edited is not null) mem.Add(info.Name, edited);
        }
        return mem;
    }

    private static FlowConfig TinyConfig => FlowConfig.Load(Token2WavDir);

    [Fact]
    public void TheUnmodifiedCopyLoadsAndTheCheckpointHoldsExactlyTheSpecKeys()
    {
        using var src = CopyOf((_, t) => t);
        var flow = Flow.Load(src, TinyConfig);
        // the copy's weights are the ones used: same embedding values, and the same mel as the flow loaded from flow.pt
        Assert.Equal(src.Get("input_embedding.weight").ToFloatArray(), flow.InputEmbedding.ToFloatArray());
        using (var dump = Fixtures.OpenSafetensors(DumpPath, out _))
        {
            Tensor Run(Flow f) => f.Generate(Ints(dump.Get("input.codes")), Ints(dump.Get("input.prompt_tokens")), dump.Get("input.prompt_mel"),
                dump.Get("input.xvector"), dump.Get("input.noise"));
            Assert.Equal(Run(TinyFlow.Value).ToFloatArray(), Run(flow).ToFloatArray());
        }
        // docs/model.md §7.13 key families at tiny depth: embedding + speaker 3, embed 4, pre-lookahead 4, 2 + 2 conformer layers × 19,
        // up_layer 2, up_embed 4, after_norm 2, encoder_proj 2, t_embedder 4, in_proj 2, 2 DiT blocks × 24, final layer 4
        Assert.Equal(3 + 4 + 4 + 4 * 19 + 2 + 4 + 2 + 2 + 4 + 2 + 2 * 24 + 4, src.Tensors.Count);
    }

    [Theory]
    [InlineData("input_embedding.weight")]
    [InlineData("spk_embed_affine_layer.bias")]
    [InlineData("encoder.embed.out.1.weight")]
    [InlineData("encoder.pre_lookahead_layer.conv2.weight")]
    [InlineData("encoder.encoders.1.self_attn.pos_bias_v")]
    [InlineData("encoder.encoders.0.self_attn.linear_pos.weight")]
    [InlineData("encoder.up_layer.conv.bias")]
    [InlineData("encoder.up_encoders.1.feed_forward.w_2.weight")]
    [InlineData("encoder.after_norm.bias")]
    [InlineData("encoder_proj.weight")]
    [InlineData("decoder.estimator.t_embedder.mlp.2.bias")]
    [InlineData("decoder.estimator.blocks.1.attn.k_norm.weight")]
    [InlineData("decoder.estimator.blocks.0.conv.block.6.weight")]
    [InlineData("decoder.estimator.blocks.1.adaLN_modulation.1.weight")]
    [InlineData("decoder.estimator.final_layer.linear.bias")]
    public void MissingKeyIsAWeightExceptionNamingIt(string drop)
    {
        using var src = CopyOf((name, t) => name == drop ? null : t);
        var ex = Assert.Throws<WeightException>(() => Flow.Load(src, TinyConfig));
        Assert.Equal(drop, ex.Key);
        Assert.Contains(drop, ex.Message);
    }

    [Theory]
    [InlineData("input_embedding.weight")]
    [InlineData("encoder.encoders.0.self_attn.pos_bias_u")]
    [InlineData("encoder.pre_lookahead_layer.conv1.weight")]
    [InlineData("encoder.up_encoders.0.feed_forward.w_1.bias")]
    [InlineData("decoder.estimator.in_proj.weight")]
    [InlineData("decoder.estimator.blocks.0.conv.block.1.weight")]
    [InlineData("decoder.estimator.blocks.1.mlp.fc1.weight")]
    [InlineData("decoder.estimator.final_layer.adaLN_modulation.1.weight")]
    public void MisShapedKeyIsAWeightExceptionNamingIt(string bad)
    {
        using var src = CopyOf((name, t) =>
        {
            if (name != bad) return t;
            var shape = (int[])t.Shape.Clone();
            shape[^1] += 1;
            return Tensor.Zeros(DType.F32, shape);
        });
        var ex = Assert.Throws<WeightException>(() => Flow.Load(src, TinyConfig));
        Assert.Equal(bad, ex.Key);
        Assert.Contains("shape", ex.Fault);
    }

    [Fact]
    public void UnexpectedKeyIsAWeightExceptionNamingIt()
    {
        using var src = CopyOf((_, t) => t);
        src.Add("decoder.estimator.blocks.2.attn.to_q.bias", Tensor.Zeros(DType.F32, 64));
        var ex = Assert.Throws<WeightException>(() => Flow.Load(src, TinyConfig));
        Assert.Equal("decoder.estimator.blocks.2.attn.to_q.bias", ex.Key);
    }

    [Fact]
    public void AConfigDeeperThanTheCheckpointFailsOnTheFirstMissingLayer()
    {
        var deeper = TinyConfig with { Decoder = TinyConfig.Decoder with { Estimator = TinyConfig.Decoder.Estimator with { Depth = 3 } } };
        using var src = CopyOf((_, t) => t);
        var ex = Assert.Throws<WeightException>(() => Flow.Load(src, deeper));
        Assert.StartsWith("decoder.estimator.blocks.2.", ex.Key);
    }

    [Fact]
    public void TruncatedCheckpointIsALabDataExceptionNamingTheFile()
    {
        using var tmp = TestPaths.Temp();
        var bytes = File.ReadAllBytes(Path.Combine(Token2WavDir, "flow.pt"));
        var path = tmp.File("flow.pt");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var ex = Assert.ThrowsAny<LabDataException>(() => Flow.Load(path, Path.Combine(Token2WavDir, "flow.yaml")));
        Assert.Equal(path, ex.FilePath);
    }

    // ------------------------------------------------------------------------------------------------ chain into HiFT

    private static readonly string[] HiftPaths =
    [
        "hift.source_stft", "hift.conv_pre",
        "hift.ups.0", "hift.source_downs.0", "hift.source_resblocks.0", "hift.resblocks.0", "hift.resblocks.1", "hift.resblocks.2",
        "hift.ups.1", "hift.source_downs.1", "hift.source_resblocks.1", "hift.resblocks.3", "hift.resblocks.4", "hift.resblocks.5",
        "hift.ups.2", "hift.source_downs.2", "hift.source_resblocks.2", "hift.resblocks.6", "hift.resblocks.7", "hift.resblocks.8",
        "hift.conv_post", "hift",
    ];

    [Fact]
    public void ReferenceMelThroughTheHiftMatchesPerModuleAndAsAChain()
    {
        var hift = Hift.Load(Path.Combine(Token2WavDir, "hift.pt"));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var mel = dump.Get("flow");
        AssertClose(hift.F0Predictor.Forward(mel), dump.Get("hift.f0_predictor"), "hift.f0_predictor");
        // the NSF source integrates the phase in float32 over 19 200 samples (docs/model.md §9): one ulp of a phase sample moves the
        // sine, so this stage sits at ~2e-5 here rather than at the per-module 1e-5 of the stages after it
        AssertClose(hift.Source.Forward(dump.Get("hift.f0_predictor"), dump.Get("input.hift_noise")), dump.Get("hift.m_source"), "hift.m_source (reference f0)", 1e-4);
        var trace = new Trace();
        hift.Decode(mel, dump.Get("hift.m_source"), trace);
        foreach (var path in HiftPaths) AssertClose(trace[path], dump.Get(path), path + " (reference source)");

        var chain = new Trace();
        var wav = hift.Forward(mel, dump.Get("input.hift_noise"), trace: chain);
        Assert.Equal([1, 40 * 480], wav.Shape);
        AssertClose(wav, dump.Get("hift"), "hift (whole chain)", 1e-3);
    }

    [Fact]
    public void OurMelThroughTheHiftMatchesTheReferenceWaveform()
    {
        var flow = TinyFlow.Value;
        var hift = Hift.Load(Path.Combine(Token2WavDir, "hift.pt"));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var mel = flow.Generate(Ints(dump.Get("input.codes")), Ints(dump.Get("input.prompt_tokens")), dump.Get("input.prompt_mel"),
            dump.Get("input.xvector"), dump.Get("input.noise"));
        var wav = hift.Forward(mel, dump.Get("input.hift_noise"));
        AssertClose(wav, dump.Get("hift"), "hift (codes → waveform)", 1e-3);
    }
}
