using System.Text.Json;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>
/// Our logits processing against HF's processors as written in torch by reference-data/make_sampling_fixtures.py:
/// same probability vector (max abs ≤ 1e-6), same surviving ids, same processed scores.
/// </summary>
/// <remarks>
/// The probabilities are compared with the softmax of HF's processed scores computed in float64 (<c>probs_exact</c>).
/// torch's float32 softmax (<c>probs</c>, what HF draws from on CPU) is an approximation of that with its own
/// summation error, up to ~2e-6 on a 5000-survivor row; it is checked with that allowance.
/// </remarks>
public sealed class LogitsProcessorFixtureTests
{
    private static readonly string FixturePath = TestPaths.Fixture("sampling", "sampling.safetensors");

    public static TheoryData<string> Cases() => new(CaseNames());

    /// <summary>Cases that also store the processed scores (all but the full-vocabulary one).</summary>
    public static TheoryData<string> CasesWithScores()
    {
        using var file = Fixtures.OpenSafetensors(FixturePath, out var meta);
        return new(meta.Keys.Order().Where(n => file.Contains(n + ".scores")));
    }

    private static string[] CaseNames()
    {
        using var file = Fixtures.OpenSafetensors(FixturePath, out var meta);
        return meta.Keys.Order().ToArray();
    }

    private sealed record Case(SamplingOptions Options, float[] Logits, int[] Ids, float[]? Scores, float[] Probs, float[] ProbsExact, int Survivors);

    private static Case Load(string name)
    {
        using var file = Fixtures.OpenSafetensors(FixturePath, out var meta);
        using var json = JsonDocument.Parse(meta[name]);
        var p = json.RootElement;
        var options = new SamplingOptions
        {
            DoSample = p.GetProperty("do_sample").GetBoolean(),
            Temperature = p.GetProperty("temperature").GetDouble(),
            TopK = p.GetProperty("top_k").GetInt32(),
            TopP = p.GetProperty("top_p").GetDouble(),
            RepetitionPenalty = p.GetProperty("repetition_penalty").GetDouble(),
        };
        return new Case(options, file.Get(name + ".logits").ToFloatArray(), file.Get(name + ".ids").ToInt64Array().Select(i => (int)i).ToArray(),
            file.Contains(name + ".scores") ? file.Get(name + ".scores").ToFloatArray() : null, file.Get(name + ".probs").ToFloatArray(),
            file.Get(name + ".probs_exact").ToFloatArray(), p.GetProperty("survivors").GetInt32());
    }

    [Fact]
    public void FixtureCoversThePresetsAndTheEdgeCases()
    {
        var names = CaseNames().ToHashSet();
        Assert.Contains("chat_v5000", names);
        Assert.Contains("translate_v5000", names);
        Assert.Contains("chat_v158720", names);
        Assert.Contains("top_k_ties_v5000", names);
        Assert.Contains("top_k_over_vocab_v37", names);
        Assert.Contains("top_p_exact_boundary_v4", names);
        Assert.True(names.Count >= 12, $"only {names.Count} cases");
        // the presets in the fixture are the ones SamplingOptions ships
        var chat = Load("chat_v5000").Options;
        Assert.Equal(SamplingOptions.Chat with { StopTokenIds = chat.StopTokenIds, StopStrings = chat.StopStrings }, chat);
        var translate = Load("translate_v5000").Options;
        Assert.Equal(SamplingOptions.Translate with { StopTokenIds = translate.StopTokenIds, StopStrings = translate.StopStrings }, translate);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ProbabilitiesAndSurvivorsEqualHuggingFace(string name)
    {
        var c = Load(name);
        var probs = new LogitsProcessor(c.Options).Probabilities(c.Logits, c.Ids);

        Assert.Equal(c.Probs.Length, probs.Length);
        var expectedSurvivors = Enumerable.Range(0, c.Probs.Length).Where(i => c.Probs[i] > 0).ToArray();
        var survivors = Enumerable.Range(0, probs.Length).Where(i => probs[i] > 0).ToArray();
        Assert.Equal(c.Survivors, expectedSurvivors.Length);
        Assert.Equal(expectedSurvivors, survivors);

        double exact = MaxAbs(probs, c.ProbsExact, out int at);
        Assert.True(exact <= 1e-6, $"{name}: max |p − p_hf| = {exact:E3} at id {at} ({probs[at]} vs {c.ProbsExact[at]})");
        double torchF32 = MaxAbs(probs, c.Probs, out at);
        Assert.True(torchF32 <= 3e-6, $"{name}: max |p − p_torch_f32| = {torchF32:E3} at id {at} ({probs[at]} vs {c.Probs[at]})");
        Assert.InRange(probs.Sum(), 1 - 1e-5, 1 + 1e-5);
    }

    private static double MaxAbs(float[] a, float[] b, out int at)
    {
        at = 0;
        for (int i = 1; i < a.Length; i++)
            if (Math.Abs(a[i] - b[i]) > Math.Abs(a[at] - b[at])) at = i;
        return Math.Abs(a[at] - b[at]);
    }

    [Theory]
    [MemberData(nameof(CasesWithScores))]
    public void ProcessedScoresEqualHuggingFace(string name)
    {
        var c = Load(name);
        Assert.NotNull(c.Scores);
        var scores = (float[])c.Logits.Clone();
        new LogitsProcessor(c.Options).Process(scores, c.Ids);
        for (int i = 0; i < scores.Length; i++)
        {
            float e = c.Scores![i], a = scores[i];
            if (float.IsNegativeInfinity(e)) { Assert.True(float.IsNegativeInfinity(a), $"{name}: id {i} should be removed, has {a}"); continue; }
            // penalty and temperature are one float32 multiply/divide each: allow an ulp or two
            Assert.True(Math.Abs(a - e) <= 1e-6 * Math.Max(1, Math.Abs(e)), $"{name}: score of id {i} is {a}, HF {e}");
        }
    }

    [Fact]
    public void GreedyPicksTheArgmaxOfThePenalisedScores()
    {
        var c = Load("greedy_with_penalty_v5000");
        Assert.False(c.Options.DoSample);
        int expected = Array.IndexOf(c.ProbsExact, c.ProbsExact.Max());
        var scratch = new float[c.Logits.Length];
        Assert.Equal(expected, new LogitsProcessor(c.Options).Next(c.Logits, c.Ids, null, scratch));
        // the case is built so that the penalty changes the winner: the raw argmax was already generated
        int raw = Array.IndexOf(c.Logits, c.Logits.Max());
        Assert.Contains(raw, c.Ids);
        Assert.NotEqual(raw, expected);
    }

    [Fact]
    public void ExactTopPBoundaryRemovesTheEntryWhoseCumulativeEqualsOneMinusTopP()
    {
        var c = Load("top_p_exact_boundary_v4");
        Assert.Equal([0f, 1f / 3, 1f / 3, 1f / 3], c.ProbsExact);
        var probs = new LogitsProcessor(c.Options).Probabilities(c.Logits, c.Ids);
        Assert.Equal(c.ProbsExact, probs);
    }
}
