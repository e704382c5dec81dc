using StepAudio2.Lab.Config;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Tests.Models;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>The Generator on the tiny checkpoint against the Python reference's greedy ids (full recomputation, no cache).</summary>
public sealed class GeneratorTinyModelTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    private static (int[] Ids, PromptAudio Audio, int[] Expected) LoadDump(StepAudio2Model model, string dumpName)
    {
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", dumpName + ".safetensors"), out _);
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
        var expected = dump.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i).ToArray();
        var (mels, lengths) = TestMath.MelBatch(dump);
        return (ids, PromptAudio.Encode(model, mels, lengths), expected);
    }

    [Theory]
    [InlineData("llm-short")]
    [InlineData("llm-two_chunks")]
    public async Task GreedyGenerationReproducesTheReferenceIds(string dumpName)
    {
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
        var (ids, audio, expected) = LoadDump(model, dumpName);
        Assert.Equal(8, expected.Length);

        var generator = new Generator(model);
        var options = SamplingOptions.Greedy with { MaxNewTokens = 8, RecordAlternatives = true };
        var result = generator.Generate(ids, options, audio);

        Assert.Equal(expected, result.GeneratedIds);
        Assert.Equal(ids, result.PromptIds);
        Assert.Equal(expected.Contains(SamplingOptions.EndOfTurnId) ? StopReason.StopToken : StopReason.MaxNewTokens, result.StopReason);
        var (text, codes) = OutputSplitter.Split(expected, [SamplingOptions.EndOfTurnId]);
        Assert.Equal(text, result.TextIds);
        Assert.Equal(codes, result.AudioCodes);
        Assert.True(result.PrefillTokensPerSecond > 0 && result.DecodeTokensPerSecond > 0);
        // greedy: the chosen id is the most probable alternative at every step
        Assert.Equal(expected, result.Alternatives!.Select(a => a.Ids[0]));

        // the streaming form runs the same computation
        var streamed = new List<int>();
        GenerationResult? final = null;
        await foreach (var e in generator.GenerateStreamingAsync(ids, options with { RecordAlternatives = false }, audio))
        {
            if (e is TokenGenerated t) streamed.Add(t.Id);
            else final = ((GenerationCompleted)e).Result;
        }
        Assert.Equal(expected, streamed);
        Assert.Equal(expected, final!.GeneratedIds);
    }

    [Fact]
    public void SeededChatSamplingOnTheModelIsReproducible()
    {
        using var checkpoint = Fixtures.OpenCheckpoint(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
        var (ids, audio, _) = LoadDump(model, "llm-short");
        var generator = new Generator(model);
        var options = SamplingOptions.Chat with { MaxNewTokens = 12, Seed = 2024, RecordAlternatives = true };

        var a = generator.Generate(ids, options, audio);
        var b = generator.Generate(ids, options, audio);
        Assert.Equal(a.GeneratedIds, b.GeneratedIds);
        Assert.All(a.Alternatives!, alt => Assert.True(alt.ChosenProbability > 0));
        Assert.All(a.GeneratedIds, id => Assert.InRange(id, 0, model.Config.Text.VocabSize - 1));
    }
}
