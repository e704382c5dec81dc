using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Conversations;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Conversations;

/// <summary>Multi-turn with KV-cache reuse on the tiny model: only new tokens are prefilled, logits equal full recomputation.</summary>
public sealed class ConversationTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    [Fact]
    public void SecondTurnPrefillsOnlyTheNewTokensAndMatchesFullRecomputation()
    {
        using var checkpoint = ShardedCheckpoint.Open(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
        var tok = StepAudioTokenizer.Load(TestPaths.SharedModel);
        var conversation = new Conversation(model, tok);
        var options = SamplingOptions.Greedy with { MaxNewTokens = 5 };
        var clip = AudioInput.Load16k(Path.Combine(TestPaths.SharedAudio, "real_speech.aiff"));

        var first = conversation.Send(ChatMessage.User(new AudioItem(clip), new TextItem("What is said?")), options);
        Assert.Equal(0, first.ReusedTokens);
        Assert.Equal(first.Prompt.Ids.Length, first.PrefilledTokens);

        var second = conversation.Send(ChatMessage.User("And in French?"), options);
        Assert.True(second.ReusedTokens >= first.Prompt.Ids.Length, $"reused {second.ReusedTokens} of the {first.Prompt.Ids.Length}-token first prompt");
        Assert.Equal(second.Prompt.Ids.Length - second.ReusedTokens, second.PrefilledTokens);
        Assert.True(second.PrefilledTokens < second.Prompt.Ids.Length / 2);
        Assert.Equal(5, conversation.Messages.Count); // system, human, assistant, human, assistant

        // the same history recomputed from scratch (all audio chunks batched, no cache)
        var full = second.Prompt;
        var (features, lengths) = model.EncodeAudio(full.Audio!.Batch.Mels, full.Audio.MelLengths);
        var expected = model.LastLogits(model.EmbedPrompt(full.Ids, features, lengths), 0, null).ToFloatArray();
        double maxAbs = expected.Zip(second.PrefillLogits, (a, b) => Math.Abs(a - b)).Max();
        Assert.True(maxAbs <= 1e-5, $"cached vs recomputed logits differ by {maxAbs:E3}");

        conversation.ReuseCache = false;
        var third = conversation.Send(ChatMessage.User("Thanks."), options);
        Assert.Equal(0, third.ReusedTokens);
        Assert.Equal(third.Prompt.Ids.Length, third.PrefilledTokens);
    }

    [Fact]
    public void SpeechRepliesAreReFedAsTtsStartPlusRawIds()
    {
        using var checkpoint = ShardedCheckpoint.Open(Tiny);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny));
        var tok = StepAudioTokenizer.Load(TestPaths.SharedModel);
        var conversation = new Conversation(model, tok);
        var reply = conversation.Send(ChatMessage.User("Say hi."), SamplingOptions.Greedy with { MaxNewTokens = 4 }, speechReply: true);
        Assert.Equal(StepAudioTokenizer.TtsStart, reply.Prompt.Ids[^1]);
        var assistant = conversation.Messages[^1];
        Assert.Equal("assistant", assistant.Role);
        Assert.Equal(new TextItem("<tts_start>"), assistant.Items![0]);
        var kept = reply.Generation.GeneratedIds.Where(id => id != StepAudioTokenizer.Eot).ToArray();
        Assert.Equal(kept, ((TokenItem)assistant.Items[1]).Ids);
        // the next prompt contains <tts_start> followed by exactly those ids, then <|EOT|>
        var next = PromptBuilder.Chat(tok, [.. conversation.Messages, ChatMessage.User("Again."), ChatMessage.AssistantPrompt()]);
        int at = Array.LastIndexOf(next.Ids, StepAudioTokenizer.TtsStart);
        Assert.Equal([.. kept, StepAudioTokenizer.Eot], next.Ids.Skip(at + 1).Take(kept.Length + 1));
    }

    private static (StepAudio2Model Model, StepAudioTokenizer Tokenizer, IDisposable Checkpoint) Load()
    {
        var checkpoint = ShardedCheckpoint.Open(Tiny);
        return (new StepAudio2Model(checkpoint, StepAudio2Config.Load(Tiny)), StepAudio2.Lab.Tests.Tools.SharedTokenizer.Value, checkpoint);
    }

    private static double MaxAbsVsRecompute(StepAudio2Model model, ConversationReply reply)
    {
        var expected = model.LastLogits(model.EmbedPrompt(reply.Prompt.Ids, null, []), 0, null).ToFloatArray();
        return expected.Zip(reply.PrefillLogits, (a, b) => Math.Abs(a - b)).Max();
    }

    [Fact]
    public void TextHistoryIsTheHandBuiltPromptOfTheOfficialRunner()
    {
        var (model, tok, checkpoint) = Load();
        using var _ = checkpoint;
        var conversation = new Conversation(model, tok);
        var options = SamplingOptions.Greedy with { MaxNewTokens = 4 };
        var first = conversation.Send(ChatMessage.User("Hello there."), options);
        var second = conversation.Send(ChatMessage.User("Tell me more."), options);

        // docs/model.md §6.2/§6.6: each string turn one segment; the text reply goes back as a string turn
        int[] system = tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>");
        int[] human1 = tok.Encode("<|BOT|>human\nHello there.<|EOT|>");
        int[] gen = tok.Encode("<|BOT|>assistant\n");
        Assert.Equal([.. system, .. human1, .. gen], first.Prompt.Ids);
        Assert.Equal([.. system, .. human1, .. tok.Encode("<|BOT|>assistant\n" + first.Text + "<|EOT|>"),
            .. tok.Encode("<|BOT|>human\nTell me more.<|EOT|>"), .. gen], second.Prompt.Ids);
        Assert.Equal(ChatMessage.Assistant(first.Text), conversation.Messages[2]);
        Assert.True(MaxAbsVsRecompute(model, second) <= 1e-5);
    }

    [Fact]
    public void ThinkTurnKeepsTheThoughtOutOfTheHistoryAndReusesTheCache()
    {
        var (model, tok, checkpoint) = Load();
        using var _ = checkpoint;
        var conversation = new Conversation(model, tok);
        var streamed = new List<string>();
        var turn = conversation.Think(ChatMessage.User("Why is the sky blue?"), SamplingOptions.Greedy with { MaxNewTokens = 5 },
            SamplingOptions.Greedy with { MaxNewTokens = 3 }, onThought: t => streamed.Add(t.TextDelta));

        int[] head = [.. tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"), .. tok.Encode("<|BOT|>human\nWhy is the sky blue?<|EOT|>")];
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n")], turn.ThinkCall.Prompt.Ids);
        Assert.Equal(string.Concat(streamed), turn.ThinkCall.Text);
        Assert.Equal(ThinkMode.Thought(turn.ThinkCall.Text), turn.Thinking);
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n" + turn.Thinking + "</think>\n\n")], turn.Answer.Prompt.Ids);

        // the answer call reuses everything up to the thought and matches a full recomputation
        Assert.True(turn.Answer.ReusedTokens >= head.Length + 1, $"reused {turn.Answer.ReusedTokens}");
        Assert.Equal(turn.Answer.Prompt.Ids.Length - turn.Answer.ReusedTokens, turn.Answer.PrefilledTokens);
        double maxAbs = MaxAbsVsRecompute(model, turn.Answer);
        Assert.True(maxAbs <= 1e-5, $"cached vs recomputed logits differ by {maxAbs:E3}");

        // history: system, human, the answer only (official example: the thought is removed)
        Assert.Equal(["system", "human", "assistant"], conversation.Messages.Select(m => m.Role));
        Assert.Equal(ChatMessage.Assistant(turn.Answer.Text), conversation.Messages[^1]);
        var next = conversation.Send(ChatMessage.User("Thanks."), SamplingOptions.Greedy with { MaxNewTokens = 2 });
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n" + turn.Answer.Text + "<|EOT|>"), .. tok.Encode("<|BOT|>human\nThanks.<|EOT|>"),
            .. tok.Encode("<|BOT|>assistant\n")], next.Prompt.Ids);
        Assert.True(MaxAbsVsRecompute(model, next) <= 1e-5);
    }

    [Fact]
    public async Task ToolTurnAnnouncesTheToolsAndContactsNothingWithoutACall()
    {
        var (model, tok, checkpoint) = Load();
        using var _ = checkpoint;
        using var server = StepAudio2.Lab.Tests.Tools.LoopbackServer.Fixed(200, """{"results":[]}""");
        var registry = new ToolRegistry().Register(new WebSearchTool(new WebSearchOptions(server.BaseUrl, null, TimeSpan.FromSeconds(5), 3), new HttpClient()));
        var conversation = new Conversation(model, tok);
        conversation.Add(registry.ToolSchemasMessage());
        var events = new List<ToolLoopEvent>();
        var r = await conversation.SendWithToolsAsync(ChatMessage.User("Search the weather."), registry, maxRounds: 2,
            SamplingOptions.Greedy with { MaxNewTokens = 4 }, onToolEvent: events.Add);

        var gen = Assert.Single(r.Generations);
        Assert.Equal([.. tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"), .. tok.Encode("<|BOT|>tool_json_schemas\n" + registry.RenderSchemasJson() + "<|EOT|>"),
            .. tok.Encode("<|BOT|>human\nSearch the weather.<|EOT|>"), .. tok.Encode("<|BOT|>assistant\n")], gen.Prompt.Ids);
        Assert.Equal(ToolLoopStop.FinalAnswer, r.Loop.Stop); // the random tiny model writes no <tool_call> block
        Assert.Empty(events);
        Assert.Equal(0, server.RequestCount);
        Assert.Equal(["system", "tool_json_schemas", "human", "assistant"], conversation.Messages.Select(m => m.Role));
        Assert.Equal(gen.Text, conversation.Messages[^1].Text);
        Assert.Empty(r.Thoughts);
    }

    [Fact]
    public async Task StreamingTurnEqualsTheBlockingTurnAndACancelledOneLeavesNoTrace()
    {
        var (model, tok, checkpoint) = Load();
        using var _ = checkpoint;
        var options = SamplingOptions.Greedy with { MaxNewTokens = 6 };
        var blocking = new Conversation(model, tok);
        var expected = blocking.Send(ChatMessage.User("Count to three."), options);

        var streaming = new Conversation(model, tok);
        var events = new List<GenerationEvent>();
        await foreach (var e in streaming.SendStreamingAsync(ChatMessage.User("Count to three."), options))
        {
            if (e is GenerationCompleted) Assert.Equal(3, streaming.Messages.Count); // the turn is in the history by then
            events.Add(e);
        }
        var done = Assert.IsType<GenerationCompleted>(events[^1]);
        Assert.Equal(expected.Generation.GeneratedIds, events.OfType<TokenGenerated>().Select(t => t.Id));
        Assert.Equal(expected.Generation.GeneratedIds, done.Result.GeneratedIds);
        Assert.Equal(expected.Text, string.Concat(events.OfType<TokenGenerated>().Select(t => t.TextDelta)));
        Assert.Equal(blocking.Messages, streaming.Messages);
        Assert.Same(done.Result, streaming.LastReply!.Generation);

        // cancel the next turn after two tokens: no message is added, and the cache still serves an exact next turn
        using var cts = new CancellationTokenSource();
        int seen = 0;
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () =>
        {
            await foreach (var e in streaming.SendStreamingAsync(ChatMessage.User("Go on."), options with { MaxNewTokens = 50 }, cancellationToken: cts.Token))
                if (e is TokenGenerated && ++seen == 2) cts.Cancel();
        });
        Assert.Equal(2, seen);
        Assert.Equal(blocking.Messages, streaming.Messages);
        var after = streaming.Send(ChatMessage.User("Go on."), options);
        Assert.True(after.ReusedTokens >= expected.Prompt.Ids.Length, $"reused {after.ReusedTokens}");
        Assert.True(MaxAbsVsRecompute(model, after) <= 1e-5);
        Assert.Equal(blocking.Send(ChatMessage.User("Go on."), options).Generation.GeneratedIds, after.Generation.GeneratedIds);
    }

    [Fact]
    public async Task ThinkingToolTurnKeepsEachThoughtOutOfTheHistory()
    {
        var (model, tok, checkpoint) = Load();
        using var _ = checkpoint;
        var registry = new ToolRegistry().Register(new WebSearchTool(WebSearchOptions.Unconfigured, new HttpClient()));
        var conversation = new Conversation(model, tok);
        conversation.Add(registry.ToolSchemasMessage());
        var r = await conversation.SendWithToolsAsync(ChatMessage.User("Search the weather."), registry, maxRounds: 2,
            SamplingOptions.Greedy with { MaxNewTokens = 3 }, thinkOptions: SamplingOptions.Greedy with { MaxNewTokens = 4 });

        var thought = Assert.Single(r.Thoughts);
        Assert.Equal([thought.ThinkCall, thought.Answer], r.Generations);
        int[] head = [.. tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"), .. tok.Encode("<|BOT|>tool_json_schemas\n" + registry.RenderSchemasJson() + "<|EOT|>"),
            .. tok.Encode("<|BOT|>human\nSearch the weather.<|EOT|>")];
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n")], thought.ThinkCall.Prompt.Ids);
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n" + thought.Thinking + "</think>\n\n")], thought.Answer.Prompt.Ids);
        Assert.Equal(ChatMessage.Assistant(thought.Answer.Text), conversation.Messages[^1]);
        Assert.Equal(4, conversation.Messages.Count);
    }
}
