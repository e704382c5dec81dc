using System.Text;
using System.Text.Json;
using StepAudio2.Lab.Prompting;

namespace StepAudio2.Lab.Tools;

/// <summary>The outcome of one call (or of one failed block), as text for the model.</summary>
/// <param name="Index">Block index in the reply (<see cref="ToolCall.Index"/>), −1 for a stray end marker.</param>
/// <param name="Name">The tool name, or null when the block could not be parsed far enough to have one.</param>
public sealed record ToolResult(int Index, string? Name, string Content, bool IsError);

/// <summary>How a tool loop ended.</summary>
public enum ToolLoopStop
{
    /// <summary>The last reply had no tool blocks: it is the answer.</summary>
    FinalAnswer,
    /// <summary>The reply of the last allowed round still asked for tools; they were not run.</summary>
    MaxRoundsReached,
}

/// <summary>A finished loop: the whole history (input, every assistant reply and input turn), the last reply, the rounds used.</summary>
public sealed record ToolLoopResult(IReadOnlyList<ChatMessage> History, string FinalReply, ToolCallParseResult FinalParse, int Rounds, ToolLoopStop Stop);

/// <summary>Something the tool loop did, reported as it happens (for printing or live views).</summary>
/// <param name="Round">1-based generation round the event belongs to.</param>
public abstract record ToolLoopEvent(int Round);

/// <summary>A reply asked for tools: its parse, before any tool runs. Not raised for the final answer.</summary>
public sealed record ToolRoundStarted(int Round, string Reply, ToolCallParseResult Parse) : ToolLoopEvent(Round);

/// <summary>A well-formed call is about to run.</summary>
public sealed record ToolCallStarting(int Round, ToolCall Call) : ToolLoopEvent(Round);

/// <summary>A result is ready: a finished call, or the error result of a block that could not be parsed.</summary>
public sealed record ToolResultReady(int Round, ToolResult Result) : ToolLoopEvent(Round);

/// <summary>Settings of the tool loop.</summary>
/// <param name="ToolTimeout">Per-call limit; a tool still running after it yields an error result.</param>
/// <param name="ResultInstruction">Optional text appended to the <c>input</c> turn after the results (the official HF example
/// follows the search text with an instruction to summarise colloquially); null for none.</param>
public sealed record ToolLoopOptions(TimeSpan ToolTimeout, string? ResultInstruction = null)
{
    public static ToolLoopOptions Default { get; } = new(TimeSpan.FromSeconds(30));
}

/// <summary>
/// Tool calling as pure steps (docs/model.md §6.8): run the calls of a parsed reply, render the results as an <c>input</c> turn,
/// and <see cref="RunAsync"/> to alternate generation and tool rounds through a caller-supplied generator.
/// </summary>
public static class ToolLoop
{
    /// <summary>Role of the turn that carries tool results back to the model (official HF runner).</summary>
    public const string ResultRole = "input";

    /// <summary>
    /// Runs every call of <paramref name="parsed"/> in block order, one at a time (tools may share state), and turns each parse
    /// error into an error result too, so the model learns its block was unusable. Unknown names, exceptions and timeouts
    /// become error results; only cancellation of <paramref name="cancellationToken"/> propagates.
    /// </summary>
    public static async Task<IReadOnlyList<ToolResult>> InvokeAsync(ToolRegistry registry, ToolCallParseResult parsed, ToolLoopOptions options,
        CancellationToken cancellationToken = default) =>
        await InvokeAsync(registry, parsed, options, round: 1, onEvent: null, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// As <see cref="InvokeAsync(ToolRegistry, ToolCallParseResult, ToolLoopOptions, CancellationToken)"/>, in block order,
    /// reporting each call as it starts and each result as it is ready through <paramref name="onEvent"/>.
    /// </summary>
    public static async Task<IReadOnlyList<ToolResult>> InvokeAsync(ToolRegistry registry, ToolCallParseResult parsed, ToolLoopOptions options,
        int round, Action<ToolLoopEvent>? onEvent, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentNullException.ThrowIfNull(parsed);
        ArgumentNullException.ThrowIfNull(options);
        // errors and calls share one block numbering (stray closes are −1): walk them in that order
        var blocks = parsed.Errors.Select(e => (e.Index, Error: (ToolCallError?)e, Call: (ToolCall?)null))
            .Concat(parsed.Calls.Select(c => (c.Index, Error: (ToolCallError?)null, Call: (ToolCall?)c)))
            .OrderBy(b => b.Index);
        var results = new List<ToolResult>();
        foreach (var (_, error, call) in blocks)
        {
            ToolResult result;
            if (call is null)
                result = new ToolResult(error!.Index, null, "error: " + error.Message, true);
            else
            {
                onEvent?.Invoke(new ToolCallStarting(round, call));
                result = await InvokeOneAsync(registry, call, options.ToolTimeout, cancellationToken).ConfigureAwait(false);
            }
            results.Add(result);
            onEvent?.Invoke(new ToolResultReady(round, result));
        }
        return results;
    }

    private static async Task<ToolResult> InvokeOneAsync(ToolRegistry registry, ToolCall call, TimeSpan timeout, CancellationToken ct)
    {
        if (!registry.TryGet(call.Name, out var tool))
        {
            string known = registry.Tools.Count == 0 ? "none" : string.Join(", ", registry.Tools.Select(t => t.Name));
            return new ToolResult(call.Index, call.Name, $"error: unknown tool '{call.Name}' (available: {known})", true);
        }
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        try
        {
            // WaitAsync bounds the wait even for a tool that ignores its token.
            string text = await tool.InvokeAsync(call.Arguments, cts.Token).WaitAsync(timeout, ct).ConfigureAwait(false);
            return new ToolResult(call.Index, call.Name, text ?? "", false);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            return new ToolResult(call.Index, call.Name, $"error: tool '{call.Name}' timed out after {timeout.TotalSeconds:0.###} s", true);
        }
        catch (Exception ex)
        {
            return new ToolResult(call.Index, call.Name, $"error: tool '{call.Name}' failed: {ex.GetType().Name}: {ex.Message}", true);
        }
    }

    /// <summary>
    /// The content of the <c>input</c> turn. One result: its text verbatim (as the official example feeds the search text).
    /// Several: one block per result in block order, separated by a blank line, each headed
    /// <c>[k] NAME ARGUMENTS_JSON</c> (k = 1-based position in this turn; NAME <c>?</c> for a block without a usable name)
    /// so the model can pair results with its calls. <paramref name="instruction"/>, if any, follows after a blank line.
    /// </summary>
    public static string RenderResults(IReadOnlyList<ToolResult> results, ToolCallParseResult? parsed = null, string? instruction = null)
    {
        var sb = new StringBuilder();
        if (results.Count == 1)
            sb.Append(results[0].Content);
        else
            for (int k = 0; k < results.Count; k++)
            {
                var r = results[k];
                if (k > 0) sb.Append("\n\n");
                sb.Append('[').Append(k + 1).Append("] ").Append(r.Name ?? "?");
                var call = parsed?.Calls.FirstOrDefault(c => c.Index == r.Index);
                if (call is not null) sb.Append(' ').Append(call.ArgumentsJson);
                sb.Append('\n').Append(r.Content);
            }
        if (!string.IsNullOrEmpty(instruction)) sb.Append(sb.Length > 0 ? "\n\n" : "").Append(instruction);
        return sb.ToString();
    }

    /// <summary>The turns that follow a tool-calling reply: the assistant turn with the raw reply, then the <c>input</c> turn with the results.</summary>
    public static IReadOnlyList<ChatMessage> FollowUp(string rawReply, IReadOnlyList<ToolResult> results, ToolCallParseResult? parsed = null, string? instruction = null) =>
        [ChatMessage.Assistant(rawReply), new ChatMessage(ResultRole, RenderResults(results, parsed, instruction), null)];

    /// <summary>
    /// Alternates generation and tool rounds. <paramref name="history"/> is the conversation without a generation prompt
    /// (system, <c>tool_json_schemas</c>, human, …); each call of <paramref name="generate"/> receives the history plus
    /// <see cref="ChatMessage.AssistantPrompt"/> and returns the decoded reply text. A reply without tool blocks ends the
    /// loop. <paramref name="maxRounds"/> bounds the number of generations: if the last allowed reply still calls tools,
    /// they are not run and the loop stops with <see cref="ToolLoopStop.MaxRoundsReached"/>.
    /// </summary>
    /// <param name="onEvent">sees each tool round as it happens: the parsed reply, each call starting, each result.</param>
    public static async Task<ToolLoopResult> RunAsync(Func<IReadOnlyList<ChatMessage>, Task<string>> generate, IReadOnlyList<ChatMessage> history,
        int maxRounds, ToolRegistry registry, ToolLoopOptions? options = null, Action<ToolLoopEvent>? onEvent = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(generate);
        ArgumentNullException.ThrowIfNull(history);
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxRounds, 1);
        if (history.Count > 0 && history[^1] is { Text: null, Items: null })
            throw new ArgumentException("history must not end with a generation prompt; RunAsync appends it", nameof(history));
        options ??= ToolLoopOptions.Default;

        var messages = new List<ChatMessage>(history);
        for (int round = 1; ; round++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            string reply = await generate([.. messages, ChatMessage.AssistantPrompt()]).ConfigureAwait(false);
            var parsed = ToolCallParser.Parse(reply);
            if (!parsed.HasToolActivity)
            {
                messages.Add(ChatMessage.Assistant(reply));
                return new ToolLoopResult(messages, reply, parsed, round, ToolLoopStop.FinalAnswer);
            }
            if (round >= maxRounds)
            {
                messages.Add(ChatMessage.Assistant(reply));
                return new ToolLoopResult(messages, reply, parsed, round, ToolLoopStop.MaxRoundsReached);
            }
            onEvent?.Invoke(new ToolRoundStarted(round, reply, parsed));
            var results = await InvokeAsync(registry, parsed, options, round, onEvent, cancellationToken).ConfigureAwait(false);
            messages.AddRange(FollowUp(reply, results, parsed, options.ResultInstruction));
        }
    }
}
