using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Cli.Commands;
using StepAudio2.Lab.Tests.Tools;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// <c>steplab chat</c> with <c>--think</c> and <c>--tools web-search</c> on the tiny random checkpoint: the prompts it
/// builds (printed by <c>--show-prompt</c>) against hand-built ones from the spec, what it prints, and its exit codes.
/// The tiny model's text is arbitrary, so only structure is asserted about it.
/// </summary>
public sealed class ChatCliTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");

    private static (int Code, string Out, string Err) Chat(string input, params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = StepLabCli.Run(["chat", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--greedy", .. args], o, e, stdin: new StringReader(input));
        return (code, o.ToString().ReplaceLineEndings("\n"), e.ToString().ReplaceLineEndings("\n"));
    }

    private static List<int[]> PromptIds(string stderr) =>
        stderr.Split('\n').Where(l => l.StartsWith("  prompt ids: ", StringComparison.Ordinal))
            .Select(l => l["  prompt ids: ".Length..].Split(' ').Select(int.Parse).ToArray()).ToList();

    private static int[] Enc(string s) => SharedTokenizer.Value.Encode(s);

    private static readonly int[] System = Enc("<|BOT|>system\nYou are a helpful assistant.<|EOT|>");

    [Fact]
    public void ToolTurnPromptIsTheHandBuiltSpecPromptAndNothingIsContactedWithoutACall()
    {
        using var server = LoopbackServer.Fixed(200, """{"results":[]}""");
        var (code, stdout, stderr) = Chat("What is the weather in Shanghai today?\nAnd tomorrow?\n/quit\n",
            "--max-tokens", "3", "--tools", "web-search", "--search-url", server.BaseUrl.AbsoluteUri, "--search-key", "k", "--max-tool-rounds", "2", "--show-prompt");
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains($"tools: search via {server.BaseUrl.AbsoluteUri}; up to 2 rounds per turn.", stderr);

        // docs/model.md §6.8: the tool_json_schemas turn right after the system turn; docs/model.md §6.2: one segment per string turn
        string schemas = new ToolRegistry().Register(new WebSearchTool(WebSearchOptions.Unconfigured, new HttpClient())).RenderSchemasJson();
        int[] head = [.. System, .. Enc("<|BOT|>tool_json_schemas\n" + schemas + "<|EOT|>")];
        var prompts = PromptIds(stderr);
        Assert.Equal(2, prompts.Count); // one generation per turn: the random model writes no tool call
        Assert.Equal([.. head, .. Enc("<|BOT|>human\nWhat is the weather in Shanghai today?<|EOT|>"), .. Enc("<|BOT|>assistant\n")], prompts[0]);
        // turn 2 keeps the schema turn and the first exchange, then the new human turn and the generation prompt
        int[] tail = [.. Enc("<|BOT|>human\nAnd tomorrow?<|EOT|>"), .. Enc("<|BOT|>assistant\n")];
        Assert.Equal(prompts[0][..^Enc("<|BOT|>assistant\n").Length], prompts[1][..(prompts[0].Length - Enc("<|BOT|>assistant\n").Length)]);
        Assert.Equal(tail, prompts[1][^tail.Length..]);

        Assert.Equal(2, stdout.Split("assistant> ").Length - 1);
        Assert.DoesNotContain("[tool call]", stdout);
        Assert.Equal(0, server.RequestCount);
        Assert.Equal(2, stderr.Split("(round 1: 3 tokens").Length - 1);
    }

    [Fact]
    public void ThinkModeStreamsTheMarkedThoughtThenTheAnswerAndKeepsTheThoughtOutOfTheHistory()
    {
        var (code, stdout, stderr) = Chat("Why is the sky blue?\nThanks.\n", "--think", "--think-max-tokens", "4", "--max-tokens", "3", "--show-prompt");
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains("think mode: thinking up to 4 tokens, answering up to 3.", stderr);

        // stdout: thinking> T1 \n assistant> A1 \n thinking> T2 \n assistant> A2 \n
        var (t1, a1, rest) = Cut(stdout);
        var (t2, a2, end) = Cut(rest);
        Assert.Equal("", end);
        Assert.DoesNotContain("</think>", t1); // the 4-token budget ends the random model's thought

        int[] human1 = Enc("<|BOT|>human\nWhy is the sky blue?<|EOT|>");
        int[] human2 = Enc("<|BOT|>human\nThanks.<|EOT|>");
        var prompts = PromptIds(stderr);
        Assert.Equal(4, prompts.Count);
        Assert.Equal([.. System, .. human1, .. Enc("<|BOT|>assistant\n\n<think>\n")], prompts[0]);
        Assert.Equal([.. System, .. human1, .. Enc("<|BOT|>assistant\n\n<think>\n" + t1 + "</think>\n\n")], prompts[1]);
        // docs/model.md §6.7: afterwards only the answer is in the history
        int[] history = [.. System, .. human1, .. Enc("<|BOT|>assistant\n" + a1 + "<|EOT|>"), .. human2];
        Assert.Equal([.. history, .. Enc("<|BOT|>assistant\n\n<think>\n")], prompts[2]);
        Assert.Equal([.. history, .. Enc("<|BOT|>assistant\n\n<think>\n" + t2 + "</think>\n\n")], prompts[3]);
        Assert.NotNull(a2);

        Assert.Equal(2, stderr.Split("(thinking: 4 tokens").Length - 1);
        Assert.Equal(2, stderr.Split("(answer: ").Length - 1);
    }

    /// <summary>Splits off one "thinking&gt; T\nassistant&gt; A\n" exchange.</summary>
    private static (string Thought, string Answer, string Remainder) Cut(string s)
    {
        Assert.StartsWith("thinking> ", s);
        int a = s.IndexOf("\nassistant> ", StringComparison.Ordinal);
        int next = s.IndexOf("\nthinking> ", a, StringComparison.Ordinal);
        int stop = next < 0 ? s.Length - 1 : next;
        Assert.Equal('\n', s[stop]);
        return (s["thinking> ".Length..a], s[(a + "\nassistant> ".Length)..stop], s[(stop + 1)..]);
    }

    [Theory]
    [InlineData("not a url", "--search-url 'not a url' is not an absolute http:// or https:// URL")]
    [InlineData("ftp://search.example/", "--search-url 'ftp://search.example/' is not an absolute http:// or https:// URL")]
    [InlineData("http://search.example/search?q=x", "must be the service root without a query or fragment")]
    public void MalformedSearchUrlIsExit2WithAMessage(string url, string message)
    {
        var (code, _, stderr) = Chat("", "--tools", "web-search", "--search-url", url);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(message, stderr);
    }

    [Theory]
    [InlineData("--search-url and --search-key need --tools web-search", "--search-url", "http://127.0.0.1:9/")]
    [InlineData("--max-tool-rounds must be ≥ 1, got 0", "--tools", "web-search", "--max-tool-rounds", "0")]
    [InlineData("--think-max-tokens must be ≥ 1, got 0", "--think", "--think-max-tokens", "0")]
    [InlineData("'calculator'", "--tools", "calculator")]
    public void UnusableSwitchesAreExit2WithAMessage(string message, params string[] args)
    {
        var (code, stdout, stderr) = Chat("hello\n", args);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(message, stderr);
        Assert.Equal("", stdout); // rejected before anything ran
    }

    [Fact]
    public void SearchEndpointComesFromTheEnvironmentWhenNotGiven()
    {
        var env = new Dictionary<string, string?> { [ChatSettings.SearchUrlVariable] = "https://searx.example/base/", [ChatSettings.SearchKeyVariable] = "env-key" };
        var (url, key) = ChatSettings.ResolveSearch(null, null, n => env.GetValueOrDefault(n));
        Assert.Equal(new Uri("https://searx.example/base/"), url);
        Assert.Equal("env-key", key);

        (url, key) = ChatSettings.ResolveSearch("http://127.0.0.1:8888", "cli-key", n => env.GetValueOrDefault(n));
        Assert.Equal(new Uri("http://127.0.0.1:8888/"), url);
        Assert.Equal("cli-key", key);

        Assert.Equal((null, null), ChatSettings.ResolveSearch(null, "", _ => null)); // not configured: nothing to contact
        env[ChatSettings.SearchUrlVariable] = "searx.example";
        var e = Assert.Throws<ArgumentException>(() => ChatSettings.ResolveSearch(null, null, n => env.GetValueOrDefault(n)));
        Assert.Contains($"{ChatSettings.SearchUrlVariable} 'searx.example' is not an absolute", e.Message);
    }

    [Fact]
    public void ToolsWithoutASearchUrlSayTheSearchIsNotConfigured()
    {
        var (code, _, stderr) = Chat("hi\n", "--max-tokens", "2", "--tools", "web-search");
        Assert.True(code == StepLabCli.Ok, stderr);
        Assert.Contains("tools: search (not configured: set --search-url or $STEPLAB_SEARCH_URL; nothing will be contacted)", stderr);
    }
}
