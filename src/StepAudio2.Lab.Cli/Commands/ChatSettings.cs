using StepAudio2.Lab.Pipeline;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>The settings of one <c>steplab chat</c> session, as the command line gives them.</summary>
/// <param name="MaxTokens">answer budget per generation (<c>--max-tokens</c>).</param>
public sealed record ChatSettings(string ModelDir, string? Tokenizer = null, string System = StepAudio2Pipeline.DefaultSystemPrompt,
    int MaxTokens = 256, bool Greedy = false, int? Seed = null)
{
    /// <summary>
    /// Recognise special tokens (<c>&lt;|EOT|&gt;</c>, <c>&lt;|BOT|&gt;</c>, …) in typed lines, as the official runner
    /// does (<c>--special-tokens</c>). Off by default: typed text is plain text, so a line cannot forge a turn.
    /// </summary>
    public bool ParseSpecialTokens { get; init; }

    /// <summary>Environment variable read when <c>--search-url</c> is not given.</summary>
    public const string SearchUrlVariable = "STEPLAB_SEARCH_URL";

    /// <summary>Environment variable read when <c>--search-key</c> is not given.</summary>
    public const string SearchKeyVariable = "STEPLAB_SEARCH_KEY";

    /// <summary>The one tool the CLI offers so far.</summary>
    public const string WebSearchTool = "web-search";

    /// <summary>Think mode (docs/model.md §6.7): each turn is a thinking call then an answering call.</summary>
    public bool Think { get; init; }

    /// <summary>Budget of the thinking call, separate from <see cref="MaxTokens"/>.</summary>
    public int ThinkMaxTokens { get; init; } = 1024;

    /// <summary>Tools offered to the model (<c>--tools</c>); empty: plain chat.</summary>
    public IReadOnlyList<string> Tools { get; init; } = [];

    /// <summary>SearxNG-style service root; null: the search tool answers "not configured" and nothing is contacted.</summary>
    public Uri? SearchUrl { get; init; }

    public string? SearchKey { get; init; }

    public TimeSpan SearchTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Most generations per user turn when tools are on.</summary>
    public int MaxToolRounds { get; init; } = 4;

    /// <summary>Print every generation's prompt ids (for checking prompts against the spec).</summary>
    public bool ShowPrompt { get; init; }

    /// <summary>
    /// The search endpoint and key: the command-line values, else <see cref="SearchUrlVariable"/> and
    /// <see cref="SearchKeyVariable"/> from <paramref name="environment"/>. A URL that is not absolute http(s) is an
    /// <see cref="ArgumentException"/> naming where it came from; an empty value counts as not given.
    /// </summary>
    public static (Uri? Url, string? Key) ResolveSearch(string? url, string? key, Func<string, string?> environment)
    {
        ArgumentNullException.ThrowIfNull(environment);
        string from = "--search-url";
        if (string.IsNullOrWhiteSpace(url))
        {
            url = environment(SearchUrlVariable);
            from = SearchUrlVariable;
        }
        if (string.IsNullOrWhiteSpace(key)) key = environment(SearchKeyVariable);
        if (string.IsNullOrWhiteSpace(url)) return (null, string.IsNullOrWhiteSpace(key) ? null : key);
        if (!Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps)
            || string.IsNullOrEmpty(uri.Host))
            throw new ArgumentException($"{from} '{url}' is not an absolute http:// or https:// URL");
        if (!string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
            throw new ArgumentException($"{from} '{url}' must be the service root without a query or fragment (the tool appends /search?q=…&format=json)");
        return (uri, string.IsNullOrWhiteSpace(key) ? null : key);
    }

    /// <summary>Throws <see cref="ArgumentException"/> naming the first setting that cannot work.</summary>
    public void Validate()
    {
        if (MaxTokens < 1) throw new ArgumentException($"--max-tokens must be ≥ 1, got {MaxTokens}");
        if (ThinkMaxTokens < 1) throw new ArgumentException($"--think-max-tokens must be ≥ 1, got {ThinkMaxTokens}");
        if (MaxToolRounds < 1) throw new ArgumentException($"--max-tool-rounds must be ≥ 1, got {MaxToolRounds}");
        if (SearchTimeout <= TimeSpan.Zero) throw new ArgumentException($"--search-timeout must be > 0 seconds, got {SearchTimeout.TotalSeconds}");
        foreach (var t in Tools)
            if (t != WebSearchTool) throw new ArgumentException($"--tools: unknown tool '{t}' (available: {WebSearchTool})");
    }
}
