using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Conversations;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab chat --model &lt;dir&gt;</c>: an interactive conversation on standard input. A line of text is a user
/// turn; <c>/audio PATH [text]</c> sends an audio file (with optional text before it); <c>/reset</c> clears the history;
/// <c>/quit</c> or end of input stops. Replies stream as they are generated; the KV cache of the unchanged history is
/// reused between turns, so each turn prefills only its new tokens. <c>--think</c> shows the thought (streamed, marked
/// <c>thinking&gt;</c>, kept out of the history); <c>--tools web-search</c> lets the model search, printing each call
/// and result as it happens.
/// </summary>
public static class ChatCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => StepAudio2Pipeline.DefaultSystemPrompt };
        var maxTokens = new Option<int>("--max-tokens") { Description = "generation limit per reply (the answer, in think mode)", DefaultValueFactory = _ => 256 };
        var greedy = new Option<bool>("--greedy") { Description = "greedy decoding instead of the official chat sampling (T 0.7, top-p 0.9, rep 1.05)" };
        var seed = new Option<int?>("--seed") { Description = "seed for sampling" };
        var think = new Option<bool>("--think") { Description = "think mode (Step-Audio-2-mini-Think): a thinking call up to </think>, then the answer; the thought is shown but kept out of the history" };
        var thinkMaxTokens = new Option<int>("--think-max-tokens") { Description = "generation limit of each thinking call", DefaultValueFactory = _ => 1024 };
        var tools = new Option<string[]>("--tools") { Description = "tools the model may call", AllowMultipleArgumentsPerToken = true };
        tools.AcceptOnlyFromAmong(ChatSettings.WebSearchTool);
        var searchUrl = new Option<string?>("--search-url") { Description = $"root of a SearxNG-style JSON search service (default: ${ChatSettings.SearchUrlVariable}); without it nothing is contacted" };
        var searchKey = new Option<string?>("--search-key") { Description = $"API key for the search service, sent as a Bearer token (default: ${ChatSettings.SearchKeyVariable})" };
        var searchTimeout = new Option<double>("--search-timeout") { Description = "seconds a search may take", DefaultValueFactory = _ => 10 };
        var maxToolRounds = new Option<int>("--max-tool-rounds") { Description = "most generations per turn when tools are on", DefaultValueFactory = _ => 4 };
        var showPrompt = new Option<bool>("--show-prompt") { Description = "print each generation's prompt ids" };
        var specialTokens = new Option<bool>("--special-tokens") { Description = "recognise special tokens such as <|EOT|> in typed lines, as the official runner does (default: typed text is plain text)" };
        var cmd = new Command("chat", "Chat with Step-Audio 2 (text and audio files), streaming the replies; optional think mode and web search.")
        {
            model, tokenizer, system, maxTokens, greedy, seed, think, thinkMaxTokens, tools, searchUrl, searchKey, searchTimeout, maxToolRounds, showPrompt,
            specialTokens,
        };
        cmd.SetAction(p =>
        {
            string[] toolNames = p.GetValue(tools) ?? [];
            string? url = p.GetValue(searchUrl), key = p.GetValue(searchKey);
            if ((url is not null || key is not null) && !toolNames.Contains(ChatSettings.WebSearchTool))
                throw new ArgumentException($"--search-url and --search-key need --tools {ChatSettings.WebSearchTool}");
            var (resolvedUrl, resolvedKey) = ChatSettings.ResolveSearch(url, key, Environment.GetEnvironmentVariable);
            var settings = new ChatSettings(p.GetValue(model)!, p.GetValue(tokenizer), p.GetValue(system)!, p.GetValue(maxTokens), p.GetValue(greedy), p.GetValue(seed))
            {
                Think = p.GetValue(think),
                ThinkMaxTokens = p.GetValue(thinkMaxTokens),
                Tools = toolNames,
                SearchUrl = toolNames.Contains(ChatSettings.WebSearchTool) ? resolvedUrl : null,
                SearchKey = toolNames.Contains(ChatSettings.WebSearchTool) ? resolvedKey : null,
                SearchTimeout = TimeSpan.FromSeconds(p.GetValue(searchTimeout)),
                MaxToolRounds = p.GetValue(maxToolRounds),
                ShowPrompt = p.GetValue(showPrompt),
                ParseSpecialTokens = p.GetValue(specialTokens),
            };
            return Run(settings, ui.In, ui);
        });
        return cmd;
    }

    /// <summary>The plain chat of earlier versions: no think mode, no tools.</summary>
    public static int Run(string modelDir, string? tokenizer, string system, int maxTokens, bool greedy, int? seed, TextReader input, CliOutput ui) =>
        Run(new ChatSettings(modelDir, tokenizer, system, maxTokens, greedy, seed), input, ui);

    /// <summary>Runs a session over <paramref name="input"/> lines. Settings are checked before the model is loaded.</summary>
    public static int Run(ChatSettings settings, TextReader input, CliOutput ui)
    {
        ArgumentNullException.ThrowIfNull(settings);
        settings.Validate();
        var sampling = settings.Greedy ? SamplingOptions.Greedy : SamplingOptions.Chat;
        var answerOptions = sampling with { MaxNewTokens = settings.MaxTokens, Seed = settings.Seed };
        var thinkOptions = settings.Think ? sampling with { MaxNewTokens = settings.ThinkMaxTokens, Seed = settings.Seed } : null;

        using var http = new HttpClient();
        ToolRegistry? registry = null;
        if (settings.Tools.Count > 0)
        {
            registry = new ToolRegistry();
            if (settings.Tools.Contains(ChatSettings.WebSearchTool))
                registry.Register(new WebSearchTool(new WebSearchOptions(settings.SearchUrl, settings.SearchKey, settings.SearchTimeout, 5), http));
        }

        using var pipeline = StepAudio2Pipeline.Load(settings.ModelDir, settings.Tokenizer);
        Conversation NewConversation()
        {
            var c = new Conversation(pipeline.Model, pipeline.Tokenizer, settings.System);
            if (registry is not null) c.Add(registry.ToolSchemasMessage()); // docs/model.md §6.8: right after the system turn
            return c;
        }
        var conversation = NewConversation();
        var printer = new ChatPrinter(ui);
        ui.Error.WriteLine($"loaded {settings.ModelDir} in {pipeline.LoadTime.TotalSeconds:F1} s. Type a message, '/audio PATH [text]', '/reset' or '/quit'.");
        if (settings.Think) ui.Error.WriteLine($"think mode: thinking up to {settings.ThinkMaxTokens} tokens, answering up to {settings.MaxTokens}.");
        if (registry is not null)
            ui.Error.WriteLine(settings.SearchUrl is null
                ? $"tools: search (not configured: set --search-url or ${ChatSettings.SearchUrlVariable}; nothing will be contacted); up to {settings.MaxToolRounds} rounds per turn."
                : $"tools: search via {settings.SearchUrl.GetLeftPart(UriPartial.Path)}; up to {settings.MaxToolRounds} rounds per turn.");

        using var cancelKey = ui.Interactive ? new CancelKeyTurns(ui) : null;
        while (true)
        {
            if (ui.Interactive) ui.Out.Write("you> ");
            string? line = input.ReadLine();
            if (line is null || line.Trim() == "/quit") break;
            if (line.Trim().Length == 0) continue;
            if (line.Trim() == "/reset")
            {
                conversation = NewConversation();
                ui.Out.WriteLine("(history cleared)");
                continue;
            }
            ChatMessage user;
            try
            {
                user = ParseUserLine(line) with { PlainText = !settings.ParseSpecialTokens };
            }
            catch (Exception e) when (e is LabDataException or IOException or UnauthorizedAccessException or ArgumentException)
            {
                // A mistyped /audio path must not end the session and lose its history.
                ui.Out.WriteLine($"(not sent: {e.Message}; the history is unchanged)");
                continue;
            }
            var ct = cancelKey?.BeginTurn() ?? CancellationToken.None;
            try
            {
                if (registry is not null)
                {
                    var r = conversation.SendWithToolsAsync(user, registry, settings.MaxToolRounds, answerOptions, null,
                        onToken: t => printer.Token("assistant> ", t), onToolEvent: printer.ToolEvent,
                        thinkOptions: thinkOptions, onThought: t => printer.Token("thinking> ", t), cancellationToken: ct).GetAwaiter().GetResult();
                    printer.EndLine();
                    if (r.Loop.Stop == ToolLoopStop.MaxRoundsReached)
                        ui.Out.WriteLine($"(stopped after {r.Loop.Rounds} rounds: the last reply still calls tools, which were not run)");
                    for (int k = 0; k < r.Generations.Count; k++)
                        Stats(ui, settings, Label(r, k), r.Generations[k]);
                }
                else if (thinkOptions is not null)
                {
                    var r = conversation.Think(user, thinkOptions, answerOptions, speechReply: false,
                        onThought: t => printer.Token("thinking> ", t), onAnswer: t => printer.Token("assistant> ", t), cancellationToken: ct);
                    printer.EndLine();
                    Stats(ui, settings, "thinking: ", r.ThinkCall);
                    Stats(ui, settings, "answer: ", r.Answer);
                }
                else
                {
                    var reply = conversation.Send(user, answerOptions, onToken: t => printer.Token("assistant> ", t), cancellationToken: ct);
                    printer.EndLine();
                    Stats(ui, settings, "", reply);
                }
            }
            catch (ContextLengthException e)
            {
                ui.Out.WriteLine($"(not sent: {e.Message}; the history is unchanged)");
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                printer.EndLine();
                ui.Out.WriteLine("(reply cancelled; the turn was not added to the history)");
            }
        }
        return StepLabCli.Ok;
    }

    private static ChatMessage ParseUserLine(string line)
    {
        if (line.Trim() == "/audio") throw new ArgumentException("/audio needs a file: /audio PATH [text]");
        if (!line.StartsWith("/audio ", StringComparison.Ordinal)) return ChatMessage.User(line);
        var parts = line[7..].Trim().Split(' ', 2);
        if (parts[0].Length == 0) throw new ArgumentException("/audio needs a file: /audio PATH [text]");
        var items = new List<ContentItem>();
        if (parts.Length > 1) items.Add(new TextItem(parts[1]));
        items.Add(new AudioItem(AudioInput.Load16k(parts[0]), parts[0]));
        return ChatMessage.User([.. items]);
    }

    private static string Label(ConversationToolReply r, int k)
    {
        int perRound = r.Thoughts.Count > 0 ? 2 : 1;
        string call = perRound == 2 ? (k % 2 == 0 ? " thinking" : " answer") : "";
        return $"round {k / perRound + 1}{call}: ";
    }

    private static void Stats(CliOutput ui, ChatSettings settings, string label, ConversationReply reply)
    {
        var g = reply.Generation;
        ui.Error.WriteLine($"  ({label}{g.GeneratedIds.Length} tokens, {g.DecodeTokensPerSecond:F1} tok/s, stop: {g.StopReason}; " +
            $"prefilled {reply.PrefilledTokens} new tokens, reused {reply.ReusedTokens} from the cache)");
        if (settings.ShowPrompt) ui.Error.WriteLine($"  prompt ids: {string.Join(' ', reply.Prompt.Ids)}");
    }

    /// <summary>Ctrl+C on a terminal cancels the reply being generated instead of ending the session.</summary>
    private sealed class CancelKeyTurns : IDisposable
    {
        private readonly ConsoleCancelEventHandler _handler;
        private CancellationTokenSource? _turn;

        public CancelKeyTurns(CliOutput ui)
        {
            _handler = (_, e) =>
            {
                var turn = Volatile.Read(ref _turn);
                if (turn is null || turn.IsCancellationRequested) return; // a second Ctrl+C ends the program as usual
                e.Cancel = true;
                try { turn.Cancel(); } catch (ObjectDisposedException) { } // the turn ended meanwhile
            };
            Console.CancelKeyPress += _handler;
        }

        public CancellationToken BeginTurn()
        {
            var next = new CancellationTokenSource();
            Interlocked.Exchange(ref _turn, next)?.Dispose();
            return next.Token;
        }

        public void Dispose()
        {
            Console.CancelKeyPress -= _handler;
            _turn?.Dispose();
        }
    }
}
