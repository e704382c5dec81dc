using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Tests.Cli;
using StepAudio2.Lab.Models.Llm;

namespace StepAudio2.Lab.Tests.Pipeline;

/// <summary>
/// Batched decoding (issue 15 item 4): several requests decoded together, one batched forward per step, each with its
/// own KV cache and stop, give each request what it gets alone.
/// </summary>
public sealed class BatchTranscribeTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static readonly string[] Clips = ["real_speech.aiff", "default_female.wav", "mmau_test.wav"];

    [Fact]
    public void ABatchOfThreeGivesEachRequestItsOwnGreedyIds()
    {
        using var pipeline = global::StepAudio2.Lab.Pipeline.StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel);
        var paths = Clips.Select(c => Path.Combine(TestPaths.SharedAudio, c)).ToArray();
        // different budgets so that requests leave the batch at different steps
        var single = paths.Select((p, i) => pipeline.Transcribe(p, SamplingOptions.Greedy with { MaxNewTokens = 6 + 3 * i, StopTokenIds = [] })).ToArray();
        var requests = single.Select((s, i) => new BatchRequest(s.Prompt.Ids, Audio(pipeline, s), SamplingOptions.Greedy with { MaxNewTokens = 6 + 3 * i, StopTokenIds = [] })).ToList();
        var batch = new BatchGenerator(pipeline.Model).Generate(requests, pipeline.Decoder);
        for (int i = 0; i < paths.Length; i++)
        {
            Assert.Equal(single[i].Generation.GeneratedIds, batch[i].GeneratedIds);
            Assert.Equal(StopReason.MaxNewTokens, batch[i].StopReason);
            Assert.Equal(single[i].Text, batch[i].Text);
        }
        Assert.Equal([6, 9, 12], batch.Select(b => b.GeneratedIds.Length));
    }

    [Fact]
    public void BatchedStepLogitsEqualSingleStepLogits()
    {
        using var pipeline = global::StepAudio2.Lab.Pipeline.StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel);
        var m = pipeline.Model;
        int[][] prompts = [[151666, 8948, 198, 2610], [151666, 25312, 198], [151666, 77091, 198, 1, 2, 3, 4]];
        var single = new float[prompts.Length][];
        var caches = new KvCache[prompts.Length];
        var last = new int[prompts.Length];
        for (int r = 0; r < prompts.Length; r++)
        {
            var c = new KvCache(m.Config.Text);
            m.LastLogits(m.EmbedPrompt(prompts[r][..^1], null, []), 0, c);
            single[r] = m.LastLogits(m.EmbedPrompt(prompts[r][^1..], null, []), prompts[r].Length - 1, c).ToFloatArray();
            caches[r] = new KvCache(m.Config.Text);
            m.LastLogits(m.EmbedPrompt(prompts[r][..^1], null, []), 0, caches[r]);
            last[r] = prompts[r][^1];
        }
        var batched = m.StepLogitsBatch(last, prompts.Select(p => p.Length - 1).ToArray(), caches).ToFloatArray();
        int vocab = m.Config.Text.VocabSize;
        for (int r = 0; r < prompts.Length; r++)
        {
            var row = batched.AsSpan(r * vocab, vocab).ToArray();
            double max = row.Zip(single[r], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(max < 1e-5, $"request {r}: max |Δ| {max}");
            Assert.Equal(prompts[r].Length, caches[r].Length);
        }
    }

    [Fact]
    public void TranscribeTakesSeveralFilesAsOneBatch()
    {
        var paths = Clips.Take(2).Select(c => Path.Combine(TestPaths.SharedAudio, c)).ToArray();
        var (code, stdout, err) = InspectCliTests.Run(["transcribe", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--max-tokens", "4", .. paths]);
        Assert.True(code == StepLabCli.Ok, err);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.StartsWith(paths[0] + ": ", lines[0]);
        Assert.StartsWith(paths[1] + ": ", lines[1]);
        Assert.Contains("batch of 2", err);
        Assert.Contains("tok/s aggregate", err);
    }

    private static PromptAudio Audio(global::StepAudio2.Lab.Pipeline.StepAudio2Pipeline p, global::StepAudio2.Lab.Pipeline.ChatResult r)
    {
        var (f, l) = p.Model.EncodeAudio(r.Prompt.Audio!.Batch.Mels, r.Prompt.Audio.MelLengths);
        return new PromptAudio(f, l);
    }
}
