using System.Text.Json;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>The tool loop with a scripted fake model: rounds, result turns, error results, the round limit.</summary>
public sealed class ToolLoopTests
{

    private const string AddSchema = """{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}""";

    private static ScriptedTool Add() => new("add", "Adds two numbers.", AddSchema,
        (args, _) => Task.FromResult((args.GetProperty("a").GetDouble() + args.GetProperty("b").GetDouble()).ToString(System.Globalization.CultureInfo.InvariantCulture)));

    private static ScriptedTool Boom() => new("boom", "Always fails.", """{"type":"object"}""",
        (_, _) => throw new InvalidOperationException("disk on fire"));

    private static ScriptedTool Slow() => new("slow", "Ignores cancellation.", """{"type":"object"}""",
        async (_, _) => { await Task.Delay(TimeSpan.FromSeconds(5)); return "late"; });

    /// <summary>A fake model: returns the scripted replies in order and records every prompt it was given.</summary>
    private sealed class FakeModel(params string[] replies)
    {
        private int _next;
        public List<IReadOnlyList<ChatMessage>> Prompts { get; } = [];

        public Task<string> Generate(IReadOnlyList<ChatMessage> prompt)
        {
            Prompts.Add(prompt);
            return Task.FromResult(replies[Math.Min(_next++, replies.Length - 1)]);
        }
    }

    private static List<ChatMessage> History(ToolRegistry reg) =>
        [ChatMessage.System("You are a helpful assistant."), reg.ToolSchemasMessage(), ChatMessage.User("What is 2 + 3?")];

    [Fact]
    public async Task CallThenResultThenFinalAnswer()
    {
        var add = Add();
        var reg = new ToolRegistry().Register(add);
        const string call = "Let me compute.\n<tool_call>function\nadd\n{\"a\": 2, \"b\": 3}</tool_call>";
        var model = new FakeModel(call, "2 + 3 = 5.");
        var history = History(reg);

        var result = await ToolLoop.RunAsync(model.Generate, history, maxRounds: 4, reg);

        Assert.Equal(ToolLoopStop.FinalAnswer, result.Stop);
        Assert.Equal(2, result.Rounds);
        Assert.Equal("2 + 3 = 5.", result.FinalReply);
        Assert.Equal(["{\"a\": 2, \"b\": 3}"], add.Calls);
        Assert.Equal([.. history, ChatMessage.Assistant(call), new ChatMessage("input", "5", null), ChatMessage.Assistant("2 + 3 = 5.")], result.History);

        // every generation sees the history plus the text-reply generation prompt
        Assert.Equal(2, model.Prompts.Count);
        Assert.Equal([.. history, ChatMessage.AssistantPrompt()], model.Prompts[0]);
        Assert.Equal([.. history, ChatMessage.Assistant(call), new ChatMessage("input", "5", null), ChatMessage.AssistantPrompt()], model.Prompts[1]);

        // and as ids the second prompt ends with the raw reply turn, the input turn and the generation prompt
        var tok = SharedTokenizer.Value;
        int[] ids = PromptBuilder.Chat(tok, model.Prompts[1]).Ids;
        int[] tail = [.. tok.Encode("<|BOT|>assistant\n" + call + "<|EOT|>"), .. tok.Encode("<|BOT|>input\n5<|EOT|>"), .. tok.Encode("<|BOT|>assistant\n")];
        Assert.Equal(tail, ids[^tail.Length..]);
        Assert.Contains(StepAudioTokenizer.ToolCallStart, tail);
    }

    [Fact]
    public async Task UnknownToolBecomesAnErrorResultTheModelReads()
    {
        var reg = new ToolRegistry().Register(Add()).Register(Boom());
        var model = new FakeModel("<tool_call>function\nweather\n{\"city\": \"Paris\"}</tool_call>", "Sorry, I cannot check the weather.");
        var result = await ToolLoop.RunAsync(model.Generate, History(reg), 3, reg);
        Assert.Equal(ToolLoopStop.FinalAnswer, result.Stop);
        Assert.Equal(new ChatMessage("input", "error: unknown tool 'weather' (available: add, boom)", null), result.History[^2]);
    }

    [Fact]
    public async Task MaxRoundsStopsAndDoesNotRunTheLastCalls()
    {
        var add = Add();
        var reg = new ToolRegistry().Register(add);
        const string call = "<tool_call>function\nadd\n{\"a\": 1, \"b\": 1}</tool_call>";
        var model = new FakeModel(call); // never gives a final answer
        var history = History(reg);
        var result = await ToolLoop.RunAsync(model.Generate, history, maxRounds: 3, reg);

        Assert.Equal(ToolLoopStop.MaxRoundsReached, result.Stop);
        Assert.Equal(3, result.Rounds);
        Assert.Equal(3, model.Prompts.Count);
        Assert.Equal(2, add.Calls.Count); // the third reply's call is not run: no generation would read it
        Assert.Equal(2, result.History.Count(m => m.Role == "input"));
        Assert.Equal(history.Count + 5, result.History.Count);
        Assert.Equal(ChatMessage.Assistant(call), result.History[^1]);
        Assert.Single(result.FinalParse.Calls);
    }

    [Fact]
    public async Task SeveralResultsInOneInputTurn()
    {
        var reg = new ToolRegistry().Register(Add()).Register(Boom());
        const string reply = "Working on it.\n" +
            "<tool_call>function\nadd\n{\"a\": 1.5, \"b\": 2}</tool_call>\n" +
            "<tool_call>function\nadd\n{\"a\": 1,</tool_call>\n" +
            "<tool_call>function\nboom\n{}</tool_call>";
        var parsed = ToolCallParser.Parse(reply);
        var results = await ToolLoop.InvokeAsync(reg, parsed, ToolLoopOptions.Default);

        Assert.Equal([0, 1, 2], results.Select(r => r.Index));
        Assert.Equal([false, true, true], results.Select(r => r.IsError));
        Assert.Equal("3.5", results[0].Content);
        Assert.StartsWith("error: block 1 at offset ", results[1].Content);
        Assert.Equal("error: tool 'boom' failed: InvalidOperationException: disk on fire", results[2].Content);

        var follow = ToolLoop.FollowUp(reply, results, parsed, "Answer briefly.");
        Assert.Equal(ChatMessage.Assistant(reply), follow[0]);
        Assert.Equal("input", follow[1].Role);
        Assert.Equal(
            "[1] add {\"a\": 1.5, \"b\": 2}\n3.5\n\n" +
            "[2] ?\n" + results[1].Content + "\n\n" +
            "[3] boom {}\nerror: tool 'boom' failed: InvalidOperationException: disk on fire\n\n" +
            "Answer briefly.", follow[1].Text);
    }

    [Fact]
    public async Task ToolThatIgnoresCancellationTimesOut()
    {
        var reg = new ToolRegistry().Register(Slow());
        var parsed = ToolCallParser.Parse("<tool_call>function\nslow\n{}</tool_call>");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var results = await ToolLoop.InvokeAsync(reg, parsed, new ToolLoopOptions(TimeSpan.FromMilliseconds(200)));
        Assert.Equal("error: tool 'slow' timed out after 0.2 s", Assert.Single(results).Content);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(3), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task WebSearchNotConfiguredFlowsThroughTheLoop()
    {
        var reg = new ToolRegistry().Register(new WebSearchTool(WebSearchOptions.Unconfigured, new HttpClient()));
        var model = new FakeModel("<tool_call>function\nsearch\n{\"query\": \"今天上海天气\"}</tool_call>", "I could not search.");
        var result = await ToolLoop.RunAsync(model.Generate, History(reg), 2, reg,
            new ToolLoopOptions(TimeSpan.FromSeconds(5), "请用口语化的方式总结。"));
        Assert.Equal("web search is not configured (no base URL set); no search was made\n\n请用口语化的方式总结。", result.History[^2].Text);
    }

    [Fact]
    public async Task BadArgumentsAreRejected()
    {
        var reg = new ToolRegistry();
        var model = new FakeModel("x");
        await Assert.ThrowsAsync<ArgumentException>(() => ToolLoop.RunAsync(model.Generate, [ChatMessage.User("hi"), ChatMessage.AssistantPrompt()], 2, reg));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => ToolLoop.RunAsync(model.Generate, [ChatMessage.User("hi")], 0, reg));
        Assert.Empty(model.Prompts);
    }
}
