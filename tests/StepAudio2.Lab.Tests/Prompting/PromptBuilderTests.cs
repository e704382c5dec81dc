using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Tests.Prompting;

/// <summary>The official chat format (docs/model.md §6.2) against the ids in the reference dumps and the spec's worked example.</summary>
public sealed class PromptBuilderTests
{
    private static readonly Lazy<StepAudioTokenizer> s_tokenizer = new(() => StepAudioTokenizer.Load(TestPaths.SharedModel));
    private static StepAudioTokenizer Tok => s_tokenizer.Value;

    private static (int[] Ids, float[] Wav) Dump(string name)
    {
        using var dump = SafetensorsFile.Open(Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", name + ".safetensors"));
        var wav = name.StartsWith("llm-two") ? null : SafetensorsFile.Open(Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "audio-short.safetensors")).Get("input.wav").ToFloatArray();
        return (dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray(), wav!);
    }

    [Fact]
    public void AudioOnlyHumanTurnMatchesTheReferenceIds()
    {
        var (expected, wav) = Dump("llm-short");
        var prompt = PromptBuilder.Chat(Tok, [ChatMessage.System("You are a helpful assistant."), ChatMessage.User(new AudioItem(wav)), ChatMessage.AssistantPrompt()]);
        Assert.Equal(expected, prompt.Ids);
        Assert.Single(prompt.Audio!.Mels);
        Assert.Contains(prompt.Segments, s => s.Kind == "audio" && s.Length == 39 + 2);
    }

    [Fact]
    public void InstructionTextPlusAudioMatchesTheReferenceIds()
    {
        var (expected, wav) = Dump("llm-instruction");
        var prompt = PromptBuilder.Chat(Tok, [
            ChatMessage.System("You are a helpful assistant."),
            ChatMessage.User(new TextItem("Please repeat what you hear in English:"), new AudioItem(wav)),
            ChatMessage.AssistantPrompt()]);
        Assert.Equal(expected, prompt.Ids);
    }

    [Fact]
    public void SpeechToSpeechExampleOfTheSpec()
    {
        var fiveSeconds = new float[80_000];
        for (int i = 0; i < fiveSeconds.Length; i++) fiveSeconds[i] = 0.1f * MathF.Sin(i * 0.05f);
        var prompt = PromptBuilder.Chat(Tok, [ChatMessage.System("You are a helpful assistant."), ChatMessage.User(new AudioItem(fiveSeconds)), ChatMessage.AssistantSpeechPrompt()]);
        int[] expected = [151666, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151665, 151666, 25312, 198, 151688,
            .. Enumerable.Repeat(151690, 63), 151689, 151665, 151666, 77091, 198, 151693];
        Assert.Equal(expected, prompt.Ids);
    }

    [Fact]
    public void ChunksOfSeveralItemsAreBatchedInOrderAndSegmentsTokeniseSeparately()
    {
        var thirtySeconds = new float[480_000];
        var oneSecond = new float[16_000];
        var prompt = PromptBuilder.Chat(Tok, [ChatMessage.User(new AudioItem(thirtySeconds), new TextItem("hi"), new AudioItem(oneSecond)), ChatMessage.AssistantPrompt()]);
        Assert.Equal([2, 1], prompt.Audio!.ChunksPerItem);
        Assert.Equal([313, 63, 13], prompt.Audio.TokenCounts);
        Assert.Equal(3, prompt.Ids.Count(i => i == StepAudioTokenizer.AudioStart));
        Assert.Equal(313 + 63 + 13, prompt.Ids.Count(i => i == StepAudioTokenizer.AudioPatch));
        // "hi" is its own segment, between the second chunk's block of the first item and the second item's block
        var hi = prompt.Segments.Single(s => s.Kind == "text" && s.Source == "hi");
        Assert.Equal(Tok.Encode("hi"), prompt.Ids.Skip(hi.Start).Take(hi.Length));
        Assert.Equal(StepAudioTokenizer.AudioEnd, prompt.Ids[hi.Start - 1]);
        Assert.Equal(StepAudioTokenizer.AudioStart, prompt.Ids[hi.Start + hi.Length]);
    }

    [Fact]
    public void BaseModelFormatHasNoTurnMarkers()
    {
        var prompt = PromptBuilder.Base(Tok, [new TextItem("以自然的语速读出下面的文字。\n"), new TextItem("你好"), new TextItem("<tts_start>")]);
        Assert.DoesNotContain(StepAudioTokenizer.Bot, prompt.Ids);
        Assert.Equal(StepAudioTokenizer.TtsStart, prompt.Ids[^1]);
        Assert.Equal([.. Tok.Encode("以自然的语速读出下面的文字。\n"), .. Tok.Encode("你好"), StepAudioTokenizer.TtsStart], prompt.Ids);
    }

    [Fact]
    public void MultiTurnHistoryWithASpeechReplyReFedAsRawIds()
    {
        int[] reply = [151693, 100, 151700, 151701, 151702, 151703, 151694];
        var prompt = PromptBuilder.Chat(Tok, [
            ChatMessage.System("You are a helpful assistant."),
            ChatMessage.User("Hello"),
            new ChatMessage("assistant", null, [new TextItem("<tts_start>"), new TokenItem(reply[1..])]),
            ChatMessage.User("Again"),
            ChatMessage.AssistantPrompt()]);
        int[] expected = [.. Tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"), .. Tok.Encode("<|BOT|>human\nHello<|EOT|>"),
            .. Tok.Encode("<|BOT|>assistant\n"), 151693, .. reply[1..], 151665, .. Tok.Encode("<|BOT|>human\nAgain<|EOT|>"), .. Tok.Encode("<|BOT|>assistant\n")];
        Assert.Equal(expected, prompt.Ids);
    }
}
