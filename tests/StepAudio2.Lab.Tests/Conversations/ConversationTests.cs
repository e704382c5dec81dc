using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Conversations;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Text;

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
}
