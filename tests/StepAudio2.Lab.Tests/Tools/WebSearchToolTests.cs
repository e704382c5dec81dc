using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary><see cref="WebSearchTool"/> against a loopback SearxNG stand-in: results, failures as text, nothing sent unless configured.</summary>
public sealed class WebSearchToolTests
{
    private static readonly HttpClient s_http = new();

    private static JsonElement Args(string query) => JsonDocument.Parse(JsonSerializer.Serialize(new { query })).RootElement.Clone();

    private static WebSearchTool Tool(Uri? baseUrl, TimeSpan? timeout = null, int max = 2, string? key = null, string header = "Authorization") =>
        new(new WebSearchOptions(baseUrl, key, timeout ?? TimeSpan.FromSeconds(10), max, header), s_http);

    private const string SearxBody = """
        {"query":"step audio","number_of_results":3,"results":[
          {"title":"Step-Audio 2 Technical Report","url":"https://arxiv.org/abs/2507.16632","content":"An end-to-end\nmulti-modal LLM.","engine":"google"},
          {"title":"stepfun-ai/Step-Audio2","url":"https://github.com/stepfun-ai/Step-Audio2","content":"Official code."},
          {"title":"Third","url":"https://example.org/3","content":"Not shown with MaxResults=2."}]}
        """;

    [Fact]
    public async Task NormalResultIsCompactTextOfTheTopN()
    {
        using var server = LoopbackServer.Fixed(200, SearxBody);
        string text = await Tool(server.BaseUrl, key: "k123").InvokeAsync(Args("step audio 2 & mini"), CancellationToken.None);
        Assert.Equal("""
            web results for "step audio 2 & mini":
            1. Step-Audio 2 Technical Report
               https://arxiv.org/abs/2507.16632
               An end-to-end multi-modal LLM.
            2. stepfun-ai/Step-Audio2
               https://github.com/stepfun-ai/Step-Audio2
               Official code.
            """.ReplaceLineEndings("\n"), text);
        var req = Assert.Single(server.Requests);
        Assert.Equal("/search?q=step%20audio%202%20%26%20mini&format=json", req.PathAndQuery);
        Assert.Equal("Bearer k123", req.Authorization);
    }

    [Fact]
    public async Task CustomApiKeyHeaderAndBasePath()
    {
        using var server = LoopbackServer.Fixed(200, SearxBody);
        var baseWithPath = new Uri(server.BaseUrl, "searx/");
        await Tool(baseWithPath, key: "abc", header: "X-Api-Key").InvokeAsync(Args("x"), CancellationToken.None);
        var req = Assert.Single(server.Requests);
        Assert.Equal("/searx/search?q=x&format=json", req.PathAndQuery);
        Assert.Equal("abc", req.ApiKey);
        Assert.Null(req.Authorization);
    }

    [Fact]
    public async Task Http500IsAnErrorText()
    {
        using var server = LoopbackServer.Fixed(500, "boom", "text/plain");
        string text = await Tool(server.BaseUrl).InvokeAsync(Args("q"), CancellationToken.None);
        Assert.StartsWith("web search failed: HTTP 500 (Internal Server Error)", text);
        Assert.Equal(1, server.RequestCount);
    }

    [Fact]
    public async Task SlowServerTimesOut()
    {
        using var server = new LoopbackServer(async (ctx, ct) =>
        {
            await Task.Delay(TimeSpan.FromSeconds(5), ct);
            await LoopbackServer.WriteAsync(ctx, 200, SearxBody, "application/json", ct);
        });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        string text = await Tool(server.BaseUrl, TimeSpan.FromMilliseconds(300)).InvokeAsync(Args("q"), CancellationToken.None);
        Assert.Equal("web search timed out after 0.3 s", text);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(4), $"took {sw.Elapsed}");
    }

    [Fact]
    public async Task NonJsonBodyIsAnErrorText()
    {
        using var server = LoopbackServer.Fixed(200, "<html>captcha</html>", "text/html");
        string text = await Tool(server.BaseUrl).InvokeAsync(Args("q"), CancellationToken.None);
        Assert.StartsWith("web search failed: response is not JSON (", text);
    }

    [Fact]
    public async Task JsonWithoutResultsIsAnErrorTextAndEmptyResultsSaySo()
    {
        using var server1 = LoopbackServer.Fixed(200, """{"error":"rate limited"}""");
        Assert.Equal("web search failed: response has no \"results\" array",
            await Tool(server1.BaseUrl).InvokeAsync(Args("q"), CancellationToken.None));
        using var server2 = LoopbackServer.Fixed(200, """{"results":[]}""");
        Assert.Equal("no web results for \"q\"", await Tool(server2.BaseUrl).InvokeAsync(Args("q"), CancellationToken.None));
    }

    [Fact]
    public async Task ConnectionRefusedIsAnErrorText()
    {
        // a port that was just free and has nothing listening
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        string text = await Tool(new Uri($"http://127.0.0.1:{port}/")).InvokeAsync(Args("q"), CancellationToken.None);
        Assert.StartsWith($"web search failed: could not reach http://127.0.0.1:{port}:", text);
    }

    [Fact]
    public async Task NotConfiguredSendsNothing()
    {
        using var server = LoopbackServer.Fixed(200, SearxBody);
        string text = await Tool(null).InvokeAsync(Args("q"), CancellationToken.None);
        Assert.StartsWith("web search is not configured", text);
        await Task.Delay(100);
        Assert.Equal(0, server.RequestCount);
    }

    [Fact]
    public async Task BadArgumentsAreAnErrorTextWithoutARequest()
    {
        using var server = LoopbackServer.Fixed(200, SearxBody);
        var tool = Tool(server.BaseUrl);
        Assert.StartsWith("error: search needs", await tool.InvokeAsync(JsonDocument.Parse("""{"q":"x"}""").RootElement, CancellationToken.None));
        Assert.StartsWith("error: search needs", await tool.InvokeAsync(JsonDocument.Parse("""{"query":3}""").RootElement, CancellationToken.None));
        Assert.Equal("error: search query is empty", await tool.InvokeAsync(Args("  "), CancellationToken.None));
        Assert.Equal(0, server.RequestCount);
    }

    [Fact]
    public void LongSnippetsAreClippedWithoutSplittingASurrogatePair()
    {
        string snippet = new string('a', 399) + "🌧" + new string('b', 50); // the emoji straddles the 400-char limit
        string body = JsonSerializer.Serialize(new { results = new[] { new { title = "T", url = "u", content = snippet } } });
        string text = WebSearchTool.Format("q", System.Text.Encoding.UTF8.GetBytes(body), 5);
        Assert.Equal("web results for \"q\":\n1. T\n   u\n   " + new string('a', 399) + "…", text);
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new WebSearchTool(new WebSearchOptions(null, null, TimeSpan.FromSeconds(1), 0), s_http));
        Assert.Throws<ArgumentOutOfRangeException>(() => new WebSearchTool(new WebSearchOptions(null, null, TimeSpan.Zero, 3), s_http));
    }
}
