using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Mlx;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tests.Engine;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>
/// The tiny checkpoint run by MLX itself (the <c>mlx</c> backend over mlx-c) against the Python reference's dumps: every
/// traced module path of the encoder, adaptor and Qwen2 decoder within the float32 tolerance (rel-L2 1e-5) and the
/// KV-cached greedy ids identical to the reference's; the quantized checkpoint through <c>mlx_quantized_matmul</c>
/// against the same dump (its reference is dequantise-then-float32, which our CPU kernels also match).
/// </summary>
public sealed class MlxParityTests
{
    [MlxTheory]
    [InlineData("tiny", "llm-short")]
    [InlineData("tiny", "llm-two_chunks")]
    [InlineData("tiny-quant", "llm-short")]
    public void AsrTraceOnMlxMatchesTheReferenceDumps(string checkpointName, string dumpName)
    {
        string dir = Path.Combine(TestPaths.ReferenceData, checkpointName);
        using var checkpoint = Fixtures.OpenCheckpoint(dir);
        var backend = new MlxBackend();
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(dir), backend);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(dir, "dumps", dumpName + ".safetensors"), out _);
        LlmParityTests.AssertForwardAndGreedyMatch(model, dump);
        // it was MLX that computed: every weight went up to it and the ops ran there
        Assert.True(backend.Stats.Ops > 100 && backend.Stats.WeightUploads > 10, backend.Stats.ToString());
    }

    [MlxFact]
    public void DecodingKeepsActivationsOnMlxAndDownloadsOnlyTheLogits()
    {
        string dir = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var checkpoint = Fixtures.OpenCheckpoint(dir);
        var backend = new MlxBackend();
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(dir), backend);
        var cache = new KvCache(model.Config.Text);
        var logits = model.LastLogits(model.EmbedPrompt([1, 2, 3, 4], null, []), 0, cache);
        int pos = 4;
        backend.Stats.Reset();
        const int steps = 5;
        for (int i = 0; i < steps; i++)
        {
            int next = Ops.Argmax(logits)[0];
            logits = model.LastLogits(model.EmbedPrompt([next], null, []), pos++, cache);
        }
        // per token: the logits come back once; the id goes up once (the embedding lookup's index array)
        Assert.Equal(steps, backend.Stats.Downloads);
        Assert.Equal(steps, backend.Stats.Uploads);
        Assert.Equal(0, backend.Stats.WeightUploads); // weights were uploaded by the prompt's forward, once
        Assert.True(backend.Stats.Ops > steps * model.Config.Text.NumHiddenLayers * 5, backend.Stats.ToString());
    }

    [MlxFact]
    public void SteplabTraceWithBackendMlxFromTheRealClipMatchesTheReference()
    {
        string tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var tmp = TestPaths.Temp();
        var output = tmp.File("llm-mlx.safetensors");
        long opsBefore = Backends.Get("mlx").Stats.Ops;   // the CLI's --backend mlx uses the shared instance
        var (code, _, err) = Cli.InspectCliTests.Run("trace", "--backend", "mlx", "--model", tiny, "--tokenizer", TestPaths.SharedModel,
            "--audio", Path.Combine(TestPaths.SharedAudio, "real_speech.aiff"), "--instruction", "Please repeat what you hear in English:",
            "--greedy", "8", "--out", output);
        Assert.True(code == StepAudio2.Lab.Cli.StepLabCli.Ok, err);
        Assert.True(Backends.Get("mlx").Stats.Ops > opsBefore + 100, "the trace did not run on MLX");
        var (cmp, table, _) = Cli.InspectCliTests.Run("compare", output, Path.Combine(tiny, "dumps", "llm-instruction.safetensors"));
        Assert.True(cmp == StepAudio2.Lab.Cli.StepLabCli.Ok, table);
        Assert.Contains("output.greedy_ids", table);
        Assert.Contains("34 compared, 0 failing", table);
    }

    [MlxFact]
    public void Token2WavTraceOnMlxMatchesTheReferenceAtTheDocumentedFloors()
    {
        // flow + HiFT from the dump's inputs on MLX: every flow path within the flow floor, the HiFT chain within its
        // documented 1e-3 floor (the float32 source phase), as on the cpu and reference backends
        string tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var tmp = TestPaths.Temp();
        var output = tmp.File("t2w-mlx.safetensors");
        var dump = Path.Combine(tiny, "dumps", "token2wav-short.safetensors");
        long opsBefore = Backends.Get("mlx").Stats.Ops;
        var (code, _, err) = Cli.InspectCliTests.Run("trace", "--backend", "mlx", "--token2wav", Path.Combine(tiny, "token2wav"),
            "--inputs", dump, "--out", output);
        Assert.True(code == StepAudio2.Lab.Cli.StepLabCli.Ok, err);
        Assert.True(Backends.Get("mlx").Stats.Ops > opsBefore + 500, "token2wav did not run on MLX");
        var (cmp, table, _) = Cli.InspectCliTests.Run("compare", output, dump);
        Assert.True(cmp == StepAudio2.Lab.Cli.StepLabCli.Ok, table);
        Assert.Contains("54 compared, 0 failing", table);
        Assert.Contains("hift-chain floor", table);
    }
}
