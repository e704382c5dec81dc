using CsCheck;
using StepAudio2.Lab.Generation;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>Hand-computed cases and properties of the logits processing and the draw.</summary>
public sealed class LogitsProcessorTests
{
    private static readonly float NegInf = float.NegativeInfinity;

    [Fact]
    public void PenaltyHitsEachDistinctIdOnceDividingPositiveAndMultiplyingNegative()
    {
        float[] scores = [2f, -2f, 0f, 1f, 4f];
        new LogitsProcessor(new SamplingOptions { RepetitionPenalty = 2.0 }).Process(scores, [0, 0, 1, 2, 0, 1]);
        Assert.Equal([1f, -4f, 0f, 1f, 4f], scores);
    }

    [Fact]
    public void GreedyIgnoresTheWarpersAndTakesTheFirstMaximum()
    {
        float[] scores = [1f, 5f, 5f, 2f];
        var p = new LogitsProcessor(new SamplingOptions { Temperature = 0.01, TopK = 1, TopP = 0.1 });
        p.Process(scores, []);
        Assert.Equal([1f, 5f, 5f, 2f], scores);
        Assert.Equal(1, p.Next([1f, 5f, 5f, 2f], [], null, new float[4]));
        // the penalty still applies when greedy: id 1 was seen, 5/1.25 = 4 < 4.5
        Assert.Equal(2, new LogitsProcessor(new SamplingOptions { RepetitionPenalty = 1.25 }).Next([1f, 5f, 4.5f, 2f], [1], null, new float[4]));
    }

    [Fact]
    public void TopKKeepsEveryScoreTiedWithTheKthLargest()
    {
        float[] scores = [1f, 3f, 3f, 2f, 3f, 0f];
        new LogitsProcessor(new SamplingOptions { DoSample = true, TopK = 2 }).Process(scores, []);
        Assert.Equal([NegInf, 3f, 3f, NegInf, 3f, NegInf], scores);

        scores = [1f, 3f, 2f];
        new LogitsProcessor(new SamplingOptions { DoSample = true, TopK = 50 }).Process(scores, []);
        Assert.Equal([1f, 3f, 2f], scores);
    }

    [Fact]
    public void TopPRemovesTheLowTailAndAlwaysKeepsTheBest()
    {
        // probabilities ∝ 8, 4, 2, 1, 1 → 0.5, 0.25, 0.125, 0.0625, 0.0625
        float[] logits = [MathF.Log(8), MathF.Log(4), MathF.Log(2), 0f, 0f];
        var probs = new LogitsProcessor(new SamplingOptions { DoSample = true, TopK = 0, TopP = 0.7 }).Probabilities(logits, []);
        // ascending cumulative 0.0625, 0.125, 0.25, 0.5, 1: entries ≤ 0.3 go, 0.5 and 1 stay
        Assert.Equal(0, probs[2]);
        Assert.Equal(0, probs[3]);
        Assert.Equal(0, probs[4]);
        Assert.Equal(2 / 3.0, probs[0], 1e-6);
        Assert.Equal(1 / 3.0, probs[1], 1e-6);

        var one = new LogitsProcessor(new SamplingOptions { DoSample = true, TopK = 0, TopP = 0.0 }).Probabilities(logits, []);
        Assert.Equal([1f, 0f, 0f, 0f, 0f], one);
    }

    [Fact]
    public void DrawFollowsTheProbabilitiesAndIsReproducible()
    {
        float[] probs = [0.5f, 0f, 0.3f, 0.2f, 0f];
        var counts = new int[5];
        var rng = new Random(11);
        for (int i = 0; i < 40000; i++) counts[LogitsProcessor.Draw(probs, rng)]++;
        Assert.Equal(0, counts[1]);
        Assert.Equal(0, counts[4]);
        Assert.InRange(counts[0] / 40000.0, 0.49, 0.51);
        Assert.InRange(counts[2] / 40000.0, 0.29, 0.31);
        Assert.InRange(counts[3] / 40000.0, 0.19, 0.21);

        var a = Enumerable.Range(0, 50).Select(_ => 0).ToArray();
        var r1 = new Random(5); var r2 = new Random(5);
        Assert.Equal(a.Select(_ => LogitsProcessor.Draw(probs, r1)), a.Select(_ => LogitsProcessor.Draw(probs, r2)));
    }

    [Fact]
    public void DrawNeverReturnsAZeroProbabilityId()
    {
        Gen.Select(Gen.Float[0f, 1f].Array[1, 64], Gen.Int[0, int.MaxValue - 1]).Sample((raw, seed) =>
        {
            var probs = raw.Select((p, i) => i % 3 == 0 || p < 0.3f ? 0f : p).ToArray();
            if (probs.All(p => p == 0)) probs[^1] = 1e-30f;
            var rng = new Random(seed);
            for (int i = 0; i < 20; i++)
            {
                int id = LogitsProcessor.Draw(probs, rng);
                if (!(probs[id] > 0)) throw new Exception($"drew id {id} with probability {probs[id]}");
            }
        }, iter: 500);
    }

    [Fact]
    public void ProbabilitiesOfRandomLogitsSumToOneAndKeepAtMostKIds()
    {
        Gen.Float[-30f, 30f].Array[2, 400].Sample(logits =>
        {
            var probs = new LogitsProcessor(SamplingOptions.Chat).Probabilities(logits, [0, 1, 1]);
            int kept = probs.Count(p => p > 0);
            // at most the 50 best penalised scores, plus whatever ties the 50th
            var penalised = (float[])logits.Clone();
            new LogitsProcessor(new SamplingOptions { RepetitionPenalty = 1.05 }).Process(penalised, [0, 1, 1]);
            float kth = penalised.OrderDescending().ElementAt(Math.Min(49, logits.Length - 1));
            if (kept < 1 || kept > penalised.Count(v => v >= kth)) throw new Exception($"{kept} ids kept");
            for (int i = 0; i < probs.Length; i++)
                if (probs[i] > 0 && penalised[i] < kth) throw new Exception($"id {i} below the top-50 kept");
            if (Math.Abs(probs.Sum(p => (double)p) - 1) > 1e-5) throw new Exception($"sum {probs.Sum()}");
            // the most probable id is always kept
            int best = LogitsProcessor.ArgMax(probs);
            if (probs[best] <= 0) throw new Exception("no id kept");
        }, iter: 300);
    }

    [Fact]
    public void BadInputsAreRejected()
    {
        Assert.Throws<ArgumentException>(() => new LogitsProcessor(new SamplingOptions { DoSample = true, Temperature = -1 }));
        Assert.Throws<ArgumentException>(() => new LogitsProcessor(new SamplingOptions { TopP = 1.5 }));
        Assert.Throws<ArgumentException>(() => new LogitsProcessor(new SamplingOptions { TopK = -1 }));
        Assert.Throws<ArgumentException>(() => new LogitsProcessor(new SamplingOptions { RepetitionPenalty = 0 }));
        Assert.Throws<ArgumentException>(() => new LogitsProcessor(new SamplingOptions { StopStrings = [""] }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new LogitsProcessor(SamplingOptions.Chat).Process(new float[10], [3, 10]));
        Assert.Throws<InvalidOperationException>(() => LogitsProcessor.Draw([0f, 0f], new Random(1)));
        Assert.Throws<ArgumentException>(() => LogitsProcessor.Draw([0.5f, float.NaN], new Random(1)));
        // greedy temperature is not validated (HF ignores it without sampling)
        _ = new LogitsProcessor(new SamplingOptions { Temperature = 0 });
    }

    [Fact]
    public void PresetsMirrorTheOfficialExamples()
    {
        Assert.False(SamplingOptions.Greedy.DoSample);
        Assert.Equal(new SamplingOptions { DoSample = true, Temperature = 0.7, TopP = 0.9, RepetitionPenalty = 1.05, TopK = 50 } with { StopTokenIds = SamplingOptions.Chat.StopTokenIds, StopStrings = SamplingOptions.Chat.StopStrings }, SamplingOptions.Chat);
        Assert.Equal(0.1, SamplingOptions.Translate.Temperature);
        Assert.Equal(50, SamplingOptions.Translate.TopK);
        Assert.True(SamplingOptions.Translate.DoSample);
        Assert.Equal(2048, SamplingOptions.Greedy.MaxNewTokens);
        Assert.Equal([151665], SamplingOptions.Greedy.StopTokenIds);
        Assert.Null(SamplingOptions.Chat.Seed);
    }
}
