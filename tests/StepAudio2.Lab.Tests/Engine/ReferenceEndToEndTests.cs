using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Reference;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Models;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The tiny checkpoint end to end on the reference backend, against the Python reference dumps at the CPU parity
/// tests' tolerances: the ASR (encoder + adaptor) trace, the LLM forward and its greedy ids, the quantized checkpoint,
/// the generator, think and tool turns, the CLI; and the CPU backend against it at every traced path (token2wav:
/// <see cref="ReferenceToken2WavTests"/>). Every activation lives in <see cref="ReferenceStorage"/>, so any host read of a tensor by
/// model code outside a transfer point fails these tests with <see cref="HostAccessException"/> naming the line.
/// The host transfers per generated token are counted and must stay a handful, not one per op.
/// </summary>
[Collection(SharedReferenceBackend.Name)]
public sealed class ReferenceEndToEndTests(ITestOutputHelper output)
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static IBackend Reference => Backends.Get("reference");

    /// <summary>At most this many host↔device transfers per generated token (the id up, the logits or argmax down, a few more).</summary>
    private const double MaxTransfersPerToken = 4;

    [Theory]
    [InlineData("audio-short")]
    [InlineData("audio-two_chunks")]
    public void AsrTraceMatchesTheReference(string dumpName)
    {
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny), Reference);
        var (batch, lengths) = TestMath.MelBatch(dump);

        var trace = new Trace();
        var (features, _) = model.EncodeAudio(batch, lengths, trace);
        Assert.False(features.IsHost); // the activations stayed on the device

        int compared = 0;
        foreach (var info in dump.Tensors.Where(t => !t.Name.StartsWith("input.")))
        {
            Assert.True(trace.Contains(info.Name), $"the trace lacks '{info.Name}'");
            double rel = TestMath.RelL2(trace[info.Name], dump.Get(info.Name)) /* traces hold host copies */;
            Assert.True(rel <= 1e-5, $"{info.Name}: rel-L2 {rel:E3} > 1e-5 on the reference backend");
            compared++;
        }
        Assert.True(compared >= 30, $"only {compared} activations compared");
    }

    [Theory]
    [InlineData("llm-short")]
    [InlineData("llm-instruction")]
    [InlineData("llm-two_chunks")]
    public void LlmForwardAndGreedyIdsMatchTheReferenceWithAHandfulOfTransfersPerToken(string dumpName)
    {
        var backend = new ReferenceBackend(); // its own counters
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny), backend);

        int steps = LlmParityTests.AssertForwardAndGreedyMatch(model, dump,
            afterPrompt: (features, hidden) =>
            {
                Assert.False(features.IsHost); // the activations stay on the device
                Assert.False(hidden.IsHost);
            },
            beforeDecode: backend.Stats.Reset);
        double perToken = (double)backend.Stats.Transfers / steps;
        double opsPerToken = (double)backend.Stats.Ops / steps;
        output.WriteLine($"{dumpName}: {perToken:F1} transfers and {opsPerToken:F0} ops per token ({backend.Stats})");
        Assert.True(perToken <= MaxTransfersPerToken, $"{perToken:F1} host transfers per generated token ({backend.Stats})");
        Assert.True(opsPerToken >= 10 * perToken, $"the ops per token ({opsPerToken:F0}) should far outnumber the transfers ({perToken:F1})");
        Assert.Equal(0, backend.Stats.WeightUploads); // every weight was uploaded once, during the prompt
    }

    [Fact]
    public void QuantizedCheckpointMatchesTheDequantisedReferenceAtEveryPath()
    {
        // MLX affine weights (2…8 bits, per-module overrides) dequantised by the reference backend's own unpacking
        var tinyQuant = Path.Combine(TestPaths.ReferenceData, "tiny-quant");
        using var checkpoint = Fixtures.OpenCheckpoint(tinyQuant);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(tinyQuant), Reference);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(tinyQuant, "dumps", "llm-short.safetensors"), out _);
        LlmParityTests.AssertForwardAndGreedyMatch(model, dump);
    }

    [Fact]
    public void KvCachedDecodingEqualsFullRecomputation()
    {
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny), Reference);
        LlmParityTests.AssertKvCachedEqualsFull(model, Path.Combine(Tiny, "dumps", "llm-short.safetensors"), 12);
    }

    [Fact]
    public void GeneratorReproducesTheReferenceGreedyIds()
    {
        const string dumpName = "llm-short"; // the batched chunks are covered by the forward test above
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny), Reference);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
        var expected = dump.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i).ToArray();
        var (mels, lengths) = TestMath.MelBatch(dump);
        var audio = PromptAudio.Encode(model, mels, lengths);
        var result = new Generator(model).Generate(ids, SamplingOptions.Greedy with { MaxNewTokens = expected.Length, RecordAlternatives = true }, audio);
        Assert.Equal(expected, result.GeneratedIds);
        Assert.Equal(expected, result.Alternatives!.Select(a => a.Ids[0]));
    }

    [Fact]
    public async Task ThinkAndToolTurnsGiveTheCpuBackendsIds()
    {
        ChatMessage[] history = [ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Why is the sky blue?")];
        ThinkResult Think(IBackend backend)
        {
            using var pipeline = StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel, backend);
            Assert.Same(backend, pipeline.Model.Backend);
            return pipeline.Think(history, speechReply: true,
                thinkOptions: SamplingOptions.Greedy with { MaxNewTokens = 4 }, answerOptions: SamplingOptions.Greedy with { MaxNewTokens = 3 });
        }
        async Task<StepAudio2.Lab.Tools.ToolLoopResult> Tools(IBackend backend)
        {
            using var pipeline = StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel, backend);
            var registry = new StepAudio2.Lab.Tools.ToolRegistry();
            registry.Register(new StepAudio2.Lab.Tools.WebSearchTool(StepAudio2.Lab.Tools.WebSearchOptions.Unconfigured, new HttpClient()));
            return await pipeline.ChatWithToolsAsync([ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Search for today's weather.")],
                registry, maxRounds: 2, options: SamplingOptions.Greedy with { MaxNewTokens = 4 });
        }

        var cpu = Backends.Get("cpu");
        var cpuThink = Think(cpu);
        var cpuTools = await Tools(cpu);
        var refThink = Think(Reference);
        var refTools = await Tools(Reference);
        Assert.Equal(cpuThink.ThinkCall.Prompt.Ids, refThink.ThinkCall.Prompt.Ids);
        Assert.Equal(cpuThink.ThinkCall.Generation.GeneratedIds, refThink.ThinkCall.Generation.GeneratedIds);
        Assert.Equal(cpuThink.AnswerCall.Prompt.Ids, refThink.AnswerCall.Prompt.Ids);
        Assert.Equal(cpuThink.AnswerCall.Generation.GeneratedIds, refThink.AnswerCall.Generation.GeneratedIds);
        Assert.Equal(cpuThink.Thinking, refThink.Thinking);
        Assert.Equal(cpuTools.Stop, refTools.Stop);
        Assert.Equal(cpuTools.Rounds, refTools.Rounds);
        Assert.Equal(cpuTools.History.Select(m => m.Text), refTools.History.Select(m => m.Text));
    }

    [Fact]
    public void TranscribeCliOnTheReferenceBackendGivesTheCpuIds()
    {
        var clip = Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");
        string[] Ids(string backend)
        {
            var (code, stdout, err) = StepAudio2.Lab.Tests.Cli.InspectCliTests.Run(
                "transcribe", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, clip, "--max-tokens", "4", "--json", "--backend", backend);
            Assert.True(code == StepAudio2.Lab.Cli.StepLabCli.Ok, err);
            using var doc = System.Text.Json.JsonDocument.Parse(stdout);
            return doc.RootElement.GetProperty("generated_ids").EnumerateArray().Select(e => e.ToString()).ToArray();
        }
        long before = Reference.Stats.Ops;
        var reference = Ids("reference");
        Assert.True(Reference.Stats.Ops > before, "--backend reference ran no op on the reference backend");
        Assert.Equal(4, reference.Length);
        Assert.Equal(Ids("cpu"), reference);
    }

    /// <summary>rel-L2 of every path both traces hold, <paramref name="actual"/> against <paramref name="oracle"/>; the worst first.</summary>
    internal static List<(string Path, double Rel)> CompareTraces(Trace actual, Trace oracle)
    {
        var rows = new List<(string, double)>();
        foreach (var path in oracle.Order)
        {
            Assert.True(actual.Contains(path), $"the CPU trace lacks '{path}'");
            var o = oracle[path];
            if (!o.DType.IsFloating()) { Assert.Equal(o.ToDoubleArray(), actual[path].ToDoubleArray()); continue; }
            rows.Add((path, TestMath.RelL2(actual[path], o)));
        }
        return rows.OrderByDescending(r => r.Item2).ToList();
    }

    [Fact]
    public void TheCpuBackendMatchesTheReferenceBackendAtEveryTracedPathOfTheLlm()
    {
        // the CPU backend's SIMD/fused kernels against the oracle, module by module, on the same inputs
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", "llm-two_chunks.safetensors"), out _);
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
        var (mels, lengths) = TestMath.MelBatch(dump);
        Trace Run(IBackend backend)
        {
            var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny), backend);
            var trace = new Trace();
            var (features, featLens) = model.EncodeAudio(mels, lengths, trace);
            model.LastLogits(model.EmbedPrompt(ids, features, featLens, trace), 0, new KvCache(model.Config.Text), trace);
            return trace;
        }
        var rows = CompareTraces(Run(Backends.Get("cpu")), Run(Reference));
        Assert.True(rows.Count >= 30, $"only {rows.Count} paths compared");
        output.WriteLine($"{rows.Count} paths; worst: {string.Join(", ", rows.Take(3).Select(r => $"{r.Path} {r.Rel:E2}"))}");
        Assert.All(rows, r => Assert.True(r.Rel <= 1e-5, $"{r.Path}: CPU vs reference rel-L2 {r.Rel:E3}"));
    }
}

/// <summary>
/// The test classes that use the process-wide <c>Backends.Get("reference")</c> instance run one after another, so a
/// test that reads its <see cref="BackendStats"/> (a CLI run with <c>--backend reference</c>) sees only its own ops.
/// </summary>
[CollectionDefinition(Name)]
public sealed class SharedReferenceBackend
{
    public const string Name = "shared reference backend";
}
