using System.Text.Json;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Cli.Commands;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tests.Cli;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Pipeline;

/// <summary>The user-facing pipeline and its CLIs on the tiny checkpoint with the real tokenizer.</summary>
public sealed class PipelineTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string Clip => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");

    [Fact]
    public void ChatWithTheReferencePromptReproducesTheReferenceGreedyIdsAndTraces()
    {
        using var pipeline = StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel);
        using var dump = SafetensorsFile.Open(Path.Combine(Tiny, "dumps", "llm-instruction.safetensors"));
        var trace = new Trace(["adapter", "model.norm", "lm_head.last"]);
        var r = pipeline.Chat([
            ChatMessage.System("You are a helpful assistant."),
            ChatMessage.User(new TextItem("Please repeat what you hear in English:"), new AudioItem(StepAudio2.Lab.Audio.AudioInput.Load16k(Clip))),
            ChatMessage.AssistantPrompt()], SamplingOptions.Greedy with { MaxNewTokens = 8 }, trace);
        Assert.Equal(dump.Get("input.ids").ToInt64Array().Select(i => (int)i), r.Prompt.Ids);
        Assert.Equal(dump.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i), r.Generation.GeneratedIds);
        Assert.Equal(StopReason.MaxNewTokens, r.Generation.StopReason);
        Assert.Equal(r.Generation.GeneratedIds.Where(i => i < StepAudioTokenizer.AudioStart), r.TextIds);
        Assert.Equal(pipeline.Tokenizer.Decode(r.TextIds), r.Text);
        Assert.True(trace.Contains("adapter"));
        Assert.True(r.Timings.Encoder > TimeSpan.Zero && r.Timings.Prefill > TimeSpan.Zero);
    }

    [Fact]
    public void TranscribeUsesTheOfficialAsrPrompt()
    {
        var (code, stdout, err) = InspectCliTests.Run("transcribe", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, Clip, "--max-tokens", "4", "--json");
        Assert.True(code == StepLabCli.Ok, err);
        using var doc = JsonDocument.Parse(stdout);
        var tok = StepAudioTokenizer.Load(TestPaths.SharedModel);
        int expectedPrompt = tok.Encode($"<|BOT|>system\n{StepAudio2Pipeline.AsrSystemPrompt}<|EOT|>").Length + tok.Encode("<|BOT|>human\n").Length
            + (39 + 2) + 1 + tok.Encode("<|BOT|>assistant\n").Length;
        Assert.Equal(expectedPrompt, doc.RootElement.GetProperty("prompt_tokens").GetInt32());
        Assert.Equal(4, doc.RootElement.GetProperty("generated_ids").GetArrayLength());
        Assert.Equal("MaxNewTokens", doc.RootElement.GetProperty("stop_reason").GetString());
        Assert.True(doc.RootElement.GetProperty("peak_rss_bytes").GetInt64() > 0);
    }

    [Fact]
    public void ChatCliStreamsRepliesForTextAndAudioTurns()
    {
        var o = new StringWriter();
        var e = new StringWriter();
        var input = new StringReader($"hello\n/audio {Clip} What is said?\n/reset\n/quit\n");
        int code = ChatCommand.Run(Tiny, TestPaths.SharedModel, "You are a helpful assistant.", 3, greedy: true, seed: null, input, new CliOutput(o, e, false));
        Assert.Equal(StepLabCli.Ok, code);
        var text = o.ToString();
        Assert.Equal(2, text.Split("assistant> ").Length - 1);
        Assert.Contains("(history cleared)", text);
        Assert.Equal(2, e.ToString().Split("3 tokens").Length - 1);
    }
}

public sealed class ProcessMemoryTests
{
    [Theory]
    [InlineData("VmHWM:\t15431408 kB", 15431408L * 1024)]
    [InlineData("VmHWM:\t    1234 kB", 1234L * 1024)]
    public void ParsesStatusLines(string line, long bytes) => Assert.Equal(bytes, StepAudio2.Lab.Diagnostics.ProcessMemory.ParseStatusKb(line));

    [Fact]
    public void PeakIsAtLeastTheCurrentWorkingSetOrder() => Assert.InRange(StepAudio2.Lab.Diagnostics.ProcessMemory.PeakRssBytes(), 1L << 20, 1L << 40);
}

public sealed class ThinkModeTests
{
    [Fact]
    public void TwoCallsWithTheThoughtPrefilledInTheSecond()
    {
        var tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var pipeline = StepAudio2Pipeline.Load(tiny, TestPaths.SharedModel);
        var tok = pipeline.Tokenizer;
        var thoughtTokens = new List<string>();
        ChatMessage[] history = [ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Why is the sky blue?")];
        var r = pipeline.Think(history, speechReply: true,
            thinkOptions: SamplingOptions.Greedy with { MaxNewTokens = 4 }, answerOptions: SamplingOptions.Greedy with { MaxNewTokens = 3 },
            onThought: t => thoughtTokens.Add(t.TextDelta));
        int[] head = [.. tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"), .. tok.Encode("<|BOT|>human\nWhy is the sky blue?<|EOT|>")];
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n")], r.ThinkCall.Prompt.Ids);
        Assert.Equal(string.Concat(thoughtTokens), r.ThinkCall.Text);
        Assert.Equal(r.ThinkCall.Text, r.Thinking); // the random tiny model never closes its thought: the budget ends it
        Assert.Equal(StopReason.MaxNewTokens, r.ThinkCall.Generation.StopReason);
        Assert.Equal([.. head, .. tok.Encode("<|BOT|>assistant\n\n<think>\n" + r.Thinking + "</think>\n\n<tts_start>")], r.AnswerCall.Prompt.Ids);
        Assert.Equal(StepAudioTokenizer.TtsStart, r.AnswerCall.Prompt.Ids[^1]);
        Assert.Equal(3, r.AnswerCall.Generation.GeneratedIds.Length);
    }
}

public sealed class PipelineToolTests
{
    [Fact]
    public async Task ToolSchemasGoRightAfterTheSystemTurnAndAReplyWithoutCallsEndsTheLoop()
    {
        var tiny = Path.Combine(TestPaths.ReferenceData, "tiny");
        using var pipeline = StepAudio2Pipeline.Load(tiny, TestPaths.SharedModel);
        var registry = new StepAudio2.Lab.Tools.ToolRegistry();
        registry.Register(new StepAudio2.Lab.Tools.WebSearchTool(StepAudio2.Lab.Tools.WebSearchOptions.Unconfigured, new HttpClient()));
        var result = await pipeline.ChatWithToolsAsync([ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Search for today's weather.")],
            registry, maxRounds: 2, options: SamplingOptions.Greedy with { MaxNewTokens = 4 });
        Assert.Equal(StepAudio2.Lab.Tools.ToolLoopStop.FinalAnswer, result.Stop); // the random tiny model calls no tool
        Assert.Equal(1, result.Rounds);
        Assert.Equal(["system", "tool_json_schemas", "human"], result.History.Take(3).Select(m => m.Role));
        Assert.Contains("\"name\":\"search\"", result.History[1].Text);
    }
}

public sealed class TokenDisplayTests
{
    [Fact]
    public void TextTokensShowDecodedAndAddedTokensByName()
    {
        var tok = StepAudioTokenizer.Load(TestPaths.SharedModel);
        Assert.Equal("You", StepAudio2.Lab.Views.TokenStream.Display(tok, 2610));
        Assert.Equal(" are", StepAudio2.Lab.Views.TokenStream.Display(tok, 525));
        Assert.Equal("↵", StepAudio2.Lab.Views.TokenStream.Display(tok, 198));
        Assert.Equal("<|BOT|>", StepAudio2.Lab.Views.TokenStream.Display(tok, StepAudioTokenizer.Bot));
        Assert.Equal(tok.IdToToken(126537), StepAudio2.Lab.Views.TokenStream.Display(tok, 126537)); // a partial UTF-8 character
    }
}
