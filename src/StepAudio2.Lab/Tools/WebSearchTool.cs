using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;

namespace StepAudio2.Lab.Tools;

/// <summary>Configuration of <see cref="WebSearchTool"/>. Without <paramref name="BaseUrl"/> nothing is ever contacted.</summary>
/// <param name="BaseUrl">Root of a SearxNG-style service; the tool requests <c>{BaseUrl}/search?q=…&amp;format=json</c>.</param>
/// <param name="ApiKey">Optional key, sent in <paramref name="ApiKeyHeader"/> (as <c>Bearer KEY</c> when that header is <c>Authorization</c>).</param>
/// <param name="Timeout">Limit for the whole request, body included.</param>
/// <param name="MaxResults">How many results are put into the text for the model.</param>
public sealed record WebSearchOptions(Uri? BaseUrl, string? ApiKey, TimeSpan Timeout, int MaxResults, string ApiKeyHeader = "Authorization")
{
    /// <summary>Not configured: the tool answers "not configured" and sends nothing.</summary>
    public static WebSearchOptions Unconfigured { get; } = new(null, null, TimeSpan.FromSeconds(10), 5);
}

/// <summary>
/// The official example's <c>search</c> tool (one required string parameter <c>query</c>), backed by a SearxNG-style JSON API.
/// Every failure (not configured, bad arguments, timeout, connection refused, HTTP error, non-JSON body) is returned as
/// readable text for the model rather than thrown.
/// </summary>
public sealed class WebSearchTool : ITool
{
    private readonly WebSearchOptions options;
    private readonly HttpClient http;

    /// <param name="http">Injected so tests (and hosts with proxies or handlers) control the transport.</param>
    public WebSearchTool(WebSearchOptions options, HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(http);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxResults, 1, nameof(options.MaxResults));
        if (options.Timeout <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(options), options.Timeout, "Timeout must be positive");
        this.options = options;
        this.http = http;
    }

    // A search response larger than this is not something to feed a model; refuse instead of buffering it.
    private const int MaxBodyBytes = 4 << 20;
    private const int MaxSnippetChars = 400;

    private static readonly JsonElement s_parameters = JsonDocument.Parse(
        """{"type":"object","properties":{"query":{"type":"string","description":"The search query."}},"required":["query"]}""").RootElement.Clone();

    public string Name => "search";
    public string Description => "Search the web and return the top results (title, URL, snippet).";
    public JsonElement Parameters => s_parameters;
    public WebSearchOptions Options => options;

    public async Task<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        if (options.BaseUrl is null) return "web search is not configured (no base URL set); no search was made";
        if (arguments.ValueKind != JsonValueKind.Object || !arguments.TryGetProperty("query", out var q) || q.ValueKind != JsonValueKind.String)
            return "error: search needs an object argument with a string \"query\"";
        string query = q.GetString()!;
        if (string.IsNullOrWhiteSpace(query)) return "error: search query is empty";

        var uri = new Uri(options.BaseUrl.AbsoluteUri.TrimEnd('/') + "/search?q=" + Uri.EscapeDataString(query) + "&format=json");
        using var request = new HttpRequestMessage(HttpMethod.Get, uri);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (!string.IsNullOrEmpty(options.ApiKey))
        {
            if (options.ApiKeyHeader.Equals("Authorization", StringComparison.OrdinalIgnoreCase))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", options.ApiKey);
            else
                request.Headers.TryAddWithoutValidation(options.ApiKeyHeader, options.ApiKey);
        }

        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(options.Timeout);
        byte[] body;
        try
        {
            using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cts.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
                return $"web search failed: HTTP {(int)response.StatusCode} ({response.ReasonPhrase}) from {uri.GetLeftPart(UriPartial.Path)}";
            if (response.Content.Headers.ContentLength > MaxBodyBytes)
                return $"web search failed: response of {response.Content.Headers.ContentLength} bytes exceeds the {MaxBodyBytes}-byte limit";
            body = await ReadBoundedAsync(response.Content, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            return $"web search timed out after {options.Timeout.TotalSeconds:0.###} s";
        }
        catch (HttpRequestException ex)
        {
            return $"web search failed: could not reach {uri.GetLeftPart(UriPartial.Authority)}: {ex.Message}";
        }
        catch (InvalidDataException ex)
        {
            return "web search failed: " + ex.Message;
        }
        return Format(query, body, options.MaxResults);
    }

    private static async Task<byte[]> ReadBoundedAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        using var buffer = new MemoryStream();
        var chunk = new byte[81920];
        int n;
        while ((n = await stream.ReadAsync(chunk, ct).ConfigureAwait(false)) > 0)
        {
            if (buffer.Length + n > MaxBodyBytes) throw new InvalidDataException($"response exceeds the {MaxBodyBytes}-byte limit");
            buffer.Write(chunk, 0, n);
        }
        return buffer.ToArray();
    }

    /// <summary>Turns a SearxNG JSON body into numbered <c>title / url / snippet</c> entries, at most <paramref name="maxResults"/>.</summary>
    internal static string Format(string query, ReadOnlySpan<byte> body, int maxResults)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(body.ToArray()); }
        catch (JsonException ex) { return $"web search failed: response is not JSON ({ex.Message})"; }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("results", out var results)
                || results.ValueKind != JsonValueKind.Array)
                return "web search failed: response has no \"results\" array";
            var sb = new StringBuilder();
            int k = 0;
            foreach (var r in results.EnumerateArray())
            {
                if (k >= maxResults) break;
                if (r.ValueKind != JsonValueKind.Object) continue;
                string title = Str(r, "title"), url = Str(r, "url"), snippet = Str(r, "content");
                if (title.Length == 0 && url.Length == 0 && snippet.Length == 0) continue;
                k++;
                sb.Append(k).Append(". ").Append(title.Length > 0 ? title : "(untitled)").Append('\n');
                if (url.Length > 0) sb.Append("   ").Append(url).Append('\n');
                if (snippet.Length > 0)
                    sb.Append("   ").Append(Clip(snippet)).Append('\n');
            }
            if (k == 0) return $"no web results for \"{query}\"";
            return $"web results for \"{query}\":\n" + sb.ToString().TrimEnd('\n');
        }
    }

    private static string Clip(string s)
    {
        if (s.Length <= MaxSnippetChars) return s;
        int n = char.IsHighSurrogate(s[MaxSnippetChars - 1]) ? MaxSnippetChars - 1 : MaxSnippetChars; // never split a surrogate pair
        return s[..n] + "…";
    }

    private static string Str(JsonElement o, string key) =>
        o.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? OneLine(v.GetString()!) : "";

    private static string OneLine(string s) => string.Join(' ', s.Split((char[])['\r', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries)).Trim();
}
