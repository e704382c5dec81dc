using StepAudio2.Lab.Generation;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>The generation loop on scripted logits: stopping, splitting, streaming, cancellation, stop strings, seeds.</summary>
public sealed class GeneratorTests
{
    private const int FullVocab = 158720; // the checkpoint's padded vocabulary: every special id is reachable
    private const int Eot = StepAudio2Tokens.EndOfTurn;
    private static readonly int[] Prompt = [7, 8, 9]; // valid in every fake vocabulary (the penalty checks prompt ids)

    private static int Audio(int code) => StepAudio2Tokens.FirstAudioCode + code;

    [Fact]
    public void StopsOnTheStopTokenKeepsItInGeneratedIdsAndLeavesItOutOfText()
    {
        var source = ScriptedLogitsSource.Forced(FullVocab, 10, 20, Eot, 30);
        var result = new Generator(source).Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 10 });

        Assert.Equal([10, 20, Eot], result.GeneratedIds);
        Assert.Equal(StopReason.StopToken, result.StopReason);
        Assert.True(result.StoppedOnEos);
        Assert.Equal([10, 20], result.TextIds);
        Assert.Empty(result.AudioCodes);
        Assert.Equal(Prompt, result.PromptIds);
        Assert.Equal(1, source.Prefills);
        Assert.Equal([10, 20], source.Stepped); // no forward pass after the stop token
    }

    [Fact]
    public void LengthLimitKeepsTheLastRealTokenUnlikeTheOfficialRunner()
    {
        var source = ScriptedLogitsSource.Forced(FullVocab, 10, 20, 30, 40);
        var result = new Generator(source).Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 3 });

        Assert.Equal([10, 20, 30], result.GeneratedIds);
        Assert.Equal(StopReason.MaxNewTokens, result.StopReason);
        Assert.False(result.StoppedOnEos);
        Assert.Equal([10, 20, 30], result.TextIds); // generated[prompt_len:-1] would have lost 30
        Assert.Equal([10, 20], source.Stepped);
    }

    [Fact]
    public void OnlyTheConfiguredStopIdsStop()
    {
        var source = ScriptedLogitsSource.Forced(FullVocab, 5, Eot, 151643, 7);
        var result = new Generator(source).Generate(Prompt, SamplingOptions.Greedy with { StopTokenIds = [151643] });

        Assert.Equal([5, Eot, 151643], result.GeneratedIds);
        Assert.True(result.StoppedOnEos);
        Assert.Equal([5, Eot], result.TextIds); // <|EOT|> mid-stream is just a text-range id here
    }

    [Fact]
    public void SpeechReplyIsSplitByRangeAndStreamedWithKinds()
    {
        // TA4 layout after a prompt ending in <tts_start>: t a a a a t a a a a <tts_pad> a a(pad) … <tts_end> text <|EOT|>
        int[] reply =
        [
            1234, Audio(0), Audio(17), Audio(6560), Audio(3),
            5678, Audio(4), Audio(5), Audio(6), Audio(7),
            StepAudio2Tokens.TtsPad, Audio(8), Audio(6561), Audio(6561), Audio(6561),
            StepAudio2Tokens.TtsEnd, 99, Eot,
        ];
        var source = ScriptedLogitsSource.Forced(FullVocab, reply);
        var events = new List<TokenGenerated>();
        var result = new Generator(source).Generate([.. Prompt, StepAudio2Tokens.TtsStart], SamplingOptions.Greedy, onToken: events.Add);

        Assert.Equal(reply, result.GeneratedIds);
        Assert.Equal([1234, 5678, 99], result.TextIds);
        Assert.Equal([0, 17, 6560, 3, 4, 5, 6, 7, 8, 6561, 6561, 6561], result.AudioCodes);
        Assert.Equal([0, 17, 6560, 3, 4, 5, 6, 7, 8], OutputSplitter.SpeechCodesForToken2Wav(result.AudioCodes));

        Assert.Equal(reply, events.Select(e => e.Id));
        Assert.Equal(Enumerable.Range(0, reply.Length), events.Select(e => e.Index));
        Assert.Equal(TokenKind.Text, events[0].Kind);
        Assert.Equal(TokenKind.AudioCode, events[1].Kind);
        Assert.Equal(17, events[2].AudioCode);
        Assert.Equal(TokenKind.Marker, events[10].Kind);
        Assert.Null(events[10].AudioCode);
        Assert.Equal(TokenKind.Marker, events[15].Kind);
        Assert.Equal(TokenKind.Stop, events[^1].Kind);
        Assert.Equal(result.AudioCodes, events.Where(e => e.AudioCode is not null).Select(e => e.AudioCode!.Value));
    }

    [Fact]
    public async Task StreamingYieldsTheSameIdsAndResultAsTheBlockingCall()
    {
        var options = SamplingOptions.Chat with { Seed = 1234, MaxNewTokens = 40 };
        var decoder = new TableDecoder(Enumerable.Range(0, 3000).ToDictionary(i => i, i => $"<{i}>"));
        var blocking = new Generator(ScriptedLogitsSource.Random(3000)).Generate(Prompt, options, decoder: decoder);

        var events = new List<GenerationEvent>();
        await foreach (var e in new Generator(ScriptedLogitsSource.Random(3000)).GenerateStreamingAsync(Prompt, options, decoder: decoder))
            events.Add(e);

        var tokens = events.OfType<TokenGenerated>().ToList();
        var done = Assert.IsType<GenerationCompleted>(events[^1]);
        Assert.Single(events.OfType<GenerationCompleted>());
        Assert.Equal(40, tokens.Count);
        Assert.Equal(blocking.GeneratedIds, tokens.Select(t => t.Id));
        Assert.Equal(blocking.GeneratedIds, done.Result.GeneratedIds);
        Assert.Equal(blocking.TextIds, done.Result.TextIds);
        Assert.Equal(blocking.Text, done.Result.Text);
        Assert.Equal(done.Result.Text, string.Concat(tokens.Select(t => t.TextDelta)));
        Assert.Equal(decoder.Decode(done.Result.TextIds), done.Result.Text);
        Assert.Equal(StopReason.MaxNewTokens, done.Result.StopReason);
    }

    [Fact]
    public async Task StreamingCanBeCancelledBetweenSteps()
    {
        using var cts = new CancellationTokenSource();
        var source = ScriptedLogitsSource.Forced(FullVocab, Enumerable.Range(100, 50).ToArray());
        var seen = new List<int>();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in new Generator(source).GenerateStreamingAsync(Prompt, SamplingOptions.Greedy, cancellationToken: cts.Token))
            {
                seen.Add(((TokenGenerated)e).Id);
                if (seen.Count == 3) cts.Cancel();
            }
        });
        Assert.Equal([100, 101, 102], seen);
        Assert.True(source.Stepped.Count <= 3, $"{source.Stepped.Count} steps ran after cancellation at token 3");
    }

    [Fact]
    public void BlockingCallHonoursCancellationFromTheCallbackAndBeforeStarting()
    {
        using var cts = new CancellationTokenSource();
        var source = ScriptedLogitsSource.Forced(FullVocab, Enumerable.Range(100, 50).ToArray());
        var generator = new Generator(source);
        Assert.ThrowsAny<OperationCanceledException>(() =>
            generator.Generate(Prompt, onToken: t => { if (t.Index == 4) cts.Cancel(); }, cancellationToken: cts.Token));
        Assert.Equal([100, 101, 102, 103], source.Stepped);

        var fresh = ScriptedLogitsSource.Forced(FullVocab, 1, 2, 3);
        Assert.ThrowsAny<OperationCanceledException>(() => new Generator(fresh).Generate(Prompt, cancellationToken: cts.Token));
        Assert.Equal(0, fresh.Prefills);
        // the generator is usable again after a cancelled run
        Assert.Equal([100, 101], generator.Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 2 }).GeneratedIds);
    }

    [Fact]
    public void SameSeedSameIdsDifferentSeedDifferentIds()
    {
        // a flat distribution over 1000 ids: 30 draws agree by chance with probability 1e-90
        var flat = new ScriptedLogitsSource(1000, (_, _) => new float[1000]);
        var options = new SamplingOptions { DoSample = true, TopK = 0, MaxNewTokens = 30 };
        var a = new Generator(flat).Generate(Prompt, options with { Seed = 42 }).GeneratedIds;
        var b = new Generator(flat).Generate(Prompt, options with { Seed = 42 }).GeneratedIds;
        var c = new Generator(flat).Generate(Prompt, options with { Seed = 43 }).GeneratedIds;
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        Assert.True(a.Distinct().Count() > 20, "a flat draw of 30 from 1000 should rarely repeat");
    }

    [Fact]
    public void SampledIdsNeverHaveZeroProbabilityAfterTopKAndTopP()
    {
        var source = ScriptedLogitsSource.Random(2000, scale: 2f);
        var options = SamplingOptions.Chat with { MaxNewTokens = 300, Seed = 5 };
        var result = new Generator(source).Generate(Prompt, options);
        Assert.Equal(300, result.GeneratedIds.Length);

        var sequence = Prompt.ToList();
        int narrowed = 0;
        for (int step = 0; step < result.GeneratedIds.Length; step++)
        {
            var probs = new LogitsProcessor(options).Probabilities(source.Returned[step], sequence.ToArray());
            int id = result.GeneratedIds[step];
            Assert.True(probs[id] > 0, $"step {step}: drew id {id} with probability {probs[id]}");
            int survivors = probs.Count(p => p > 0);
            Assert.InRange(survivors, 1, 50);
            if (survivors < 50) narrowed++;
            sequence.Add(id);
        }
        Assert.True(narrowed > 0, "top-p never removed anything beyond top-k: the test would not cover it");
    }

    [Fact]
    public void StopStringSplitAcrossTokensStopsGeneration()
    {
        var decoder = new TableDecoder(new Dictionary<int, string> { [100] = "Hm", [522] = "</", [26865] = "think", [29] = ">", [101] = "tail" });
        var source = ScriptedLogitsSource.Forced(30000, 100, 522, 26865, 29, 101);
        var events = new List<TokenGenerated>();
        var result = new Generator(source).Generate(Prompt, SamplingOptions.Greedy with { StopStrings = ["</think>"] }, decoder: decoder, onToken: events.Add);

        Assert.Equal([100, 522, 26865, 29], result.GeneratedIds);
        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.Equal("</think>", result.MatchedStopString);
        Assert.False(result.StoppedOnEos);
        Assert.Equal([100, 522, 26865, 29], result.TextIds); // the official runner drops the ">" and appends it back by hand
        Assert.Equal("Hm</think>", result.Text);
        Assert.Equal(["Hm", "</", "think", ">"], events.Select(e => e.TextDelta));
    }

    [Fact]
    public void StopStringMayEndInsideTheLastTokenButNotBeforeIt()
    {
        // HF semantics: the final token may run past the stop string (">\n" completes "</think>")
        var decoder = new TableDecoder(new Dictionary<int, string> { [522] = "</", [26865] = "think", [30] = ">\n", [40] = "x" });
        var overhang = new Generator(ScriptedLogitsSource.Forced(30000, 40, 522, 26865, 30, 40))
            .Generate(Prompt, SamplingOptions.Greedy with { StopStrings = ["</think>", "never"] }, decoder: decoder);
        Assert.Equal([40, 522, 26865, 30], overhang.GeneratedIds);
        Assert.Equal("</think>", overhang.MatchedStopString);

        // a stop string that does not occur does not stop; neither does a partial one
        var partial = new Generator(ScriptedLogitsSource.Forced(30000, 522, 26865, 40, 40))
            .Generate(Prompt, SamplingOptions.Greedy with { StopStrings = ["</think>"], MaxNewTokens = 4 }, decoder: decoder);
        Assert.Equal(StopReason.MaxNewTokens, partial.StopReason);
        Assert.Equal("</thinkxx", partial.Text);
    }

    [Fact]
    public void StopStringsNeedADecoder()
    {
        var generator = new Generator(ScriptedLogitsSource.Forced(100, 1));
        var e = Assert.Throws<ArgumentException>(() => generator.Generate([5], SamplingOptions.Greedy with { StopStrings = ["</think>"] }));
        Assert.Contains("decoder", e.Message);
    }

    [Fact]
    public void IncompleteUtf8IsHeldBackUntilCompletedAndFlushedAtTheEnd()
    {
        // "A中A" as bytes, then a lone lead byte at the end: E4 B8 AD = 中
        int[] bytes = ['A', 0xE4, 0xB8, 0xAD, 'A', 0xE4];
        var events = new List<TokenGenerated>();
        var result = new Generator(ScriptedLogitsSource.Forced(256, bytes))
            .Generate([65], SamplingOptions.Greedy with { MaxNewTokens = bytes.Length }, decoder: new ByteDecoder(), onToken: events.Add);

        Assert.Equal(["A", "", "", "中", "A", "\uFFFD"], events.Select(e => e.TextDelta));
        Assert.Equal("A中A\uFFFD", result.Text);
        Assert.Equal(result.Text, string.Concat(events.Select(e => e.TextDelta)));
    }

    [Fact]
    public void AlternativesAreTheTopOfTheStepDistribution()
    {
        var source = ScriptedLogitsSource.Random(500);
        var greedy = new Generator(source).Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 6, RecordAlternatives = true, AlternativesCount = 4 });
        Assert.NotNull(greedy.Alternatives);
        Assert.Equal(6, greedy.Alternatives!.Count);
        for (int step = 0; step < 6; step++)
        {
            var alt = greedy.Alternatives[step];
            var logits = source.Returned[step];
            var expectedOrder = Enumerable.Range(0, logits.Length).OrderByDescending(i => logits[i]).ThenBy(i => i).Take(4).ToArray();
            Assert.Equal(expectedOrder, alt.Ids);
            Assert.Equal(greedy.GeneratedIds[step], alt.ChosenId);
            Assert.Equal(alt.ChosenId, alt.Ids[0]);
            double z = logits.Sum(l => Math.Exp(l - logits.Max()));
            for (int j = 0; j < 4; j++)
                Assert.Equal(Math.Exp(logits[alt.Ids[j]] - logits.Max()) / z, alt.Probabilities[j], 1e-6);
        }

        var sampled = new Generator(ScriptedLogitsSource.Random(500)).Generate(Prompt, SamplingOptions.Chat with { MaxNewTokens = 20, Seed = 3, RecordAlternatives = true });
        foreach (var alt in sampled.Alternatives!)
        {
            Assert.Equal(5, alt.Ids.Length);
            Assert.True(alt.ChosenProbability > 0);
            Assert.True(alt.Probabilities.Zip(alt.Probabilities.Skip(1), (a, b) => a >= b).All(x => x), "alternatives not in descending order");
            Assert.True(alt.Probabilities[0] >= alt.ChosenProbability);
        }
        Assert.Null(new Generator(ScriptedLogitsSource.Random(50)).Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 2 }).Alternatives);
    }

    [Fact]
    public void TimingsAndRatesAreReported()
    {
        var result = new Generator(ScriptedLogitsSource.Random(5000)).Generate(Prompt, SamplingOptions.Chat with { MaxNewTokens = 20, Seed = 1 });
        Assert.True(result.Prefill > TimeSpan.Zero);
        Assert.True(result.Decode > TimeSpan.Zero);
        Assert.Equal(Prompt.Length / result.Prefill.TotalSeconds, result.PrefillTokensPerSecond, 6);
        Assert.Equal(19 / result.Decode.TotalSeconds, result.DecodeTokensPerSecond, 6);
    }

    [Fact]
    public async Task AGeneratorRunsOneGenerationAtATime()
    {
        var generator = new Generator(ScriptedLogitsSource.Forced(FullVocab, 1, 2, 3, 4));
        await using var stream = generator.GenerateStreamingAsync(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 4 }).GetAsyncEnumerator();
        Assert.True(await stream.MoveNextAsync());
        Assert.Throws<InvalidOperationException>(() => generator.Generate(Prompt));
        while (await stream.MoveNextAsync()) { }
        Assert.Equal([1, 2, 3, 4], generator.Generate(Prompt, SamplingOptions.Greedy with { MaxNewTokens = 4 }).GeneratedIds);
    }

    [Fact]
    public void WrongLogitsLengthAndInvalidOptionsAreRejected()
    {
        var bad = new ScriptedLogitsSource(100, (_, _) => new float[99]);
        Assert.Throws<InvalidOperationException>(() => new Generator(bad).Generate(Prompt));
        var ok = new Generator(ScriptedLogitsSource.Forced(100, 1));
        Assert.Throws<ArgumentException>(() => ok.Generate(Prompt, new SamplingOptions { DoSample = true, Temperature = 0 }));
        Assert.Throws<ArgumentException>(() => ok.Generate(Prompt, new SamplingOptions { MaxNewTokens = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => ok.Generate([100], SamplingOptions.Chat)); // prompt id outside the vocabulary
    }
}
