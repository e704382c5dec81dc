using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>The whole tiny model (audio path + Qwen2 decoder) against the Python reference's full-forward dumps.</summary>
public sealed class LlmParityTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    private static StepAudio2Model LoadTiny(out IDisposable handle)
    {
        var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        handle = checkpoint;
        return new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
    }

    [Theory]
    [InlineData("llm-short")]
    [InlineData("llm-instruction")]
    [InlineData("llm-two_chunks")]
    public void FullForwardMatchesAtEveryPathAndGreedyIdsAreIdentical(string dumpName)
    {
        var model = LoadTiny(out var handle);
        using var owner = handle;
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        AssertForwardAndGreedyMatch(model, dump);
    }

    /// <summary>
    /// Runs the dump's prompt (its input.ids and mels) through <paramref name="model"/> and asserts every recorded
    /// module path within rel-L2 1e-5 and the KV-cached greedy continuation equal to the reference's output.greedy_ids
    /// (a full recomputation per step). Shared by the float and quantized parity tests and by the backend tests, which
    /// look at the prompt's features and hidden states (<paramref name="afterPrompt"/>) and count what the decode steps
    /// cost (<paramref name="beforeDecode"/>). Returns the number of decode steps.
    /// </summary>
    internal static int AssertForwardAndGreedyMatch(StepAudio2Model model, IO.ITensorSource dump,
        Action<Tensor, Tensor>? afterPrompt = null, Action? beforeDecode = null)
    {
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
        var (mels, lengths) = TestMath.MelBatch(dump);
        var trace = new Trace();
        var (features, featLens) = model.EncodeAudio(mels, lengths, trace);
        var cache = new KvCache(model.Config.Text);
        var hidden = model.EmbedPrompt(ids, features, featLens, trace);
        afterPrompt?.Invoke(features, hidden);
        var logits = model.LastLogits(hidden, 0, cache, trace); // on the host: the one download per step

        int compared = 0;
        foreach (var info in dump.Tensors.Where(t => !t.Name.StartsWith("input.") && !t.Name.StartsWith("output.")))
        {
            Assert.True(trace.Contains(info.Name), $"the C# trace lacks '{info.Name}'");
            double rel = TestMath.RelL2(trace[info.Name], dump.Get(info.Name));
            Assert.True(rel <= 1e-5, $"{info.Name}: rel-L2 {rel:E3} > 1e-5");
            compared++;
        }
        Assert.True(compared >= 2 + 13 * model.Config.Text.NumHiddenLayers, $"only {compared} activations compared");

        // greedy continuation with the KV cache: identical ids to the reference's full recomputation
        var expected = dump.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i).ToArray();
        var greedy = new List<int>();
        int pos = ids.Length;
        beforeDecode?.Invoke();
        for (int step = 0; step < expected.Length; step++)
        {
            int next = Ops.Argmax(logits)[0]; // sampling runs on the host, on the logits downloaded there
            greedy.Add(next);
            logits = model.LastLogits(model.EmbedPrompt([next], null, []), pos++, cache);
        }
        Assert.Equal(expected, greedy);
        return expected.Length;
    }

    [Fact]
    public void KvCachedDecodingEqualsFullRecomputationOver50Steps()
    {
        var model = LoadTiny(out var handle);
        using var owner = handle;
        AssertKvCachedEqualsFull(model, Path.Combine(Tiny, "dumps", "llm-short.safetensors"), 50);
    }

    /// <summary>
    /// Greedy decoding with the KV cache gives the logits (within 1e-5) and ids of recomputing the whole prefix each
    /// step, for <paramref name="steps"/> steps from the dump's prompt (on whichever backend the model runs).
    /// </summary>
    internal static void AssertKvCachedEqualsFull(StepAudio2Model model, string dumpPath, int steps)
    {
        using var dump = Fixtures.OpenSafetensors(dumpPath, out _);
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToList();
        var (mels, lengths) = TestMath.MelBatch(dump);
        var (features, featLens) = model.EncodeAudio(mels, lengths);

        var cache = new KvCache(model.Config.Text);
        var cached = model.LastLogits(model.EmbedPrompt(ids.ToArray(), features, featLens), 0, cache);
        for (int step = 0; step < steps; step++)
        {
            var full = model.LastLogits(model.EmbedPrompt(ids.ToArray(), features, featLens), 0, null);
            double maxAbs = cached.ToFloatArray().Zip(full.ToFloatArray(), (a, b) => Math.Abs(a - b)).Max();
            Assert.True(maxAbs <= 1e-5, $"step {step}: cached vs full logits differ by {maxAbs:E3}");
            int next = Ops.Argmax(full)[0]; // logits come back on the host: the CPU argmax reads them there
            Assert.Equal(next, Ops.Argmax(cached)[0]);
            ids.Add(next);
            cached = model.LastLogits(model.EmbedPrompt([next], null, []), ids.Count - 1, cache);
        }
    }
}
