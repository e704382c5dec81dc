using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Cli.Commands;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>
/// A whole tool round on recorded model replies: the reply's <c>search</c> call goes to the loopback SearxNG stand-in, the
/// result (or the failure: HTTP 500, timeout) comes back as the <c>input</c> turn, events arrive in order and the chat
/// printer shows them as they happen.
/// </summary>
public sealed class WebSearchRoundTripTests
{
    private static readonly HttpClient s_http = new();

    private const string Body = """{"results":[{"title":"Shanghai weather","url":"https://weather.example/sh","content":"Sunny, 31 °C."}]}""";

    // recorded reply in the format of StepFun's vLLM step_audio_2 tool parser (docs/model.md §6.8)
    private const string CallReply = "I will look it up.<tool_call>function\nsearch\n{\"query\": \"上海 天气\"}</tool_call>";
    private const string FinalReply = "It is sunny in Shanghai.";

    private static (ToolRegistry Registry, List<ChatMessage> History) Setup(Uri url, TimeSpan timeout)
    {
        var reg = new ToolRegistry().Register(new WebSearchTool(new WebSearchOptions(url, "key-1", timeout, 3), s_http));
        return (reg, [ChatMessage.System("You are a helpful assistant."), reg.ToolSchemasMessage(), ChatMessage.User("What is the weather in Shanghai?")]);
    }

    private static Func<IReadOnlyList<ChatMessage>, Task<string>> Recorded(List<IReadOnlyList<ChatMessage>> prompts, params string[] replies) =>
        prompts2 => { prompts.Add(prompts2); return Task.FromResult(replies[Math.Min(prompts.Count - 1, replies.Length - 1)]); };

    [Fact]
    public async Task SearchResultIsFedBackAndEventsComeInOrder()
    {
        using var server = LoopbackServer.Fixed(200, Body);
        var (reg, history) = Setup(server.BaseUrl, TimeSpan.FromSeconds(10));
        var prompts = new List<IReadOnlyList<ChatMessage>>();
        var events = new List<ToolLoopEvent>();
        var result = await ToolLoop.RunAsync(Recorded(prompts, CallReply, FinalReply), history, 3, reg, onEvent: events.Add);

        Assert.Equal(ToolLoopStop.FinalAnswer, result.Stop);
        Assert.Equal(2, result.Rounds);
        var req = Assert.Single(server.Requests);
        Assert.Equal("/search?q=%E4%B8%8A%E6%B5%B7%20%E5%A4%A9%E6%B0%94&format=json", req.PathAndQuery);
        Assert.Equal("Bearer key-1", req.Authorization);
        const string searchText = "web results for \"上海 天气\":\n1. Shanghai weather\n   https://weather.example/sh\n   Sunny, 31 °C.";
        Assert.Equal([.. history, ChatMessage.Assistant(CallReply), new ChatMessage("input", searchText, null), ChatMessage.Assistant(FinalReply)], result.History);
        Assert.Equal([.. history, ChatMessage.Assistant(CallReply), new ChatMessage("input", searchText, null), ChatMessage.AssistantPrompt()], prompts[1]);

        Assert.Equal(3, events.Count);
        var started = Assert.IsType<ToolRoundStarted>(events[0]);
        Assert.Equal(CallReply, started.Reply);
        Assert.Equal("I will look it up.", started.Parse.Content);
        Assert.Equal("search", Assert.IsType<ToolCallStarting>(events[1]).Call.Name);
        var ready = Assert.IsType<ToolResultReady>(events[2]);
        Assert.Equal(new ToolResult(0, "search", searchText, false), ready.Result);
        Assert.All(events, e => Assert.Equal(1, e.Round));

        // the second prompt as ids: the raw reply turn (tool-call markers as their added tokens), then the input turn
        var tok = SharedTokenizer.Value;
        int[] ids = PromptBuilder.Chat(tok, prompts[1]).Ids;
        int[] tail = [.. tok.Encode("<|BOT|>assistant\n" + CallReply + "<|EOT|>"), .. tok.Encode("<|BOT|>input\n" + searchText + "<|EOT|>"), .. tok.Encode("<|BOT|>assistant\n")];
        Assert.Equal(tail, ids[^tail.Length..]);
    }

    [Fact]
    public async Task Http500BecomesAnInputTurnTheModelReads()
    {
        using var server = LoopbackServer.Fixed(500, "internal error", "text/plain");
        var (reg, history) = Setup(server.BaseUrl, TimeSpan.FromSeconds(10));
        var result = await ToolLoop.RunAsync(Recorded([], CallReply, "Sorry, search is down."), history, 3, reg);
        Assert.Equal(ToolLoopStop.FinalAnswer, result.Stop);
        Assert.Equal(1, server.RequestCount);
        Assert.Equal($"web search failed: HTTP 500 (Internal Server Error) from {server.BaseUrl}search", result.History[^2].Text);
        Assert.Equal("input", result.History[^2].Role);
    }

    [Fact]
    public async Task TimeoutBecomesAnInputTurnAndTheLoopGoesOn()
    {
        using var server = new LoopbackServer(async (ctx, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(5), ct);
            await LoopbackServer.WriteAsync(ctx, 200, Body, "application/json", ct);
        });
        var (reg, history) = Setup(server.BaseUrl, TimeSpan.FromMilliseconds(300));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var result = await ToolLoop.RunAsync(Recorded([], CallReply, "Search took too long."), history, 3, reg);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"took {sw.Elapsed}");
        Assert.Equal("web search timed out after 0.3 s", result.History[^2].Text);
        Assert.Equal(ChatMessage.Assistant("Search took too long."), result.History[^1]);
    }

    [Fact]
    public async Task ChatPrinterShowsCallsAndResultsAsTheyHappen()
    {
        using var server = LoopbackServer.Fixed(200, Body);
        var (reg, history) = Setup(server.BaseUrl, TimeSpan.FromSeconds(10));
        var o = new StringWriter();
        var printer = new ChatPrinter(new CliOutput(o, new StringWriter(), false));
        const string twoBlocks = "Checking.<tool_call>function\nsearch\n{\"query\": \"sh\"}</tool_call><tool_call>function\nsearch\n{\"query\":</tool_call>";
        string[] replies = [twoBlocks, FinalReply];
        int round = 0;
        Task<string> Generate(IReadOnlyList<ChatMessage> _)
        {
            // stream the recorded reply as one token, as the CLI's onToken does for each generated token
            string reply = replies[round++];
            printer.Token("assistant> ", new StepAudio2.Lab.Generation.TokenGenerated(0, 1, StepAudio2.Lab.Generation.TokenKind.Text, reply, null, null));
            return Task.FromResult(reply);
        }
        await ToolLoop.RunAsync(Generate, history, 3, reg, onEvent: printer.ToolEvent);
        printer.EndLine();

        Assert.Equal(
            "assistant> " + twoBlocks + "\n" +
            "[tool call] search {\"query\": \"sh\"}\n" +
            "[tool result] search: web results for \"sh\":\n" +
            "  1. Shanghai weather\n" +
            "     https://weather.example/sh\n" +
            "     Sunny, 31 °C.\n" +
            "[tool error] (unparsed block): error: block 1 at offset " + twoBlocks.IndexOf("<tool_call>", 20, StringComparison.Ordinal) +
            ": arguments of 'search' are not valid JSON: " + MalformedJsonMessage("{\"query\":") + "\n" +
            "assistant> " + FinalReply + "\n", o.ToString().ReplaceLineEndings("\n"));
    }

    private static string MalformedJsonMessage(string json)
    {
        try { System.Text.Json.JsonDocument.Parse(json); }
        catch (System.Text.Json.JsonException e) { return e.Message; }
        throw new InvalidOperationException("expected malformed JSON");
    }
}
