using System.Text;
using System.Text.Json;

namespace StepAudio2.Lab.Tools;

/// <summary>
/// Parses Step-Audio 2 tool calls, <c>&lt;tool_call&gt;function\nNAME\nJSON&lt;/tool_call&gt;</c> (StepFun's vLLM
/// <c>step_audio_2</c> tool parser format, docs/model.md §6.8), from a decoded reply. The markers are ordinary added tokens
/// 151657/151658 that decode to exactly these strings.
/// </summary>
/// <remarks>
/// Differences from the vLLM parser, on purpose:
/// <list type="bullet">
/// <item>vLLM's content is the text before the first block plus the text after the last one, untrimmed; text
/// between blocks is dropped. Here <see cref="ToolCallParseResult.Content"/> is all text outside blocks, in order,
/// also untrimmed (so for the usual "text, then blocks" reply both agree character for character).</item>
/// <item>vLLM silently skips blocks whose JSON fails and blocks with fewer than three lines, and returns the whole
/// reply as content when no call survives. Here every such block is reported in
/// <see cref="ToolCallParseResult.Errors"/> and never appears in the content.</item>
/// <item>vLLM ignores the first line; here it must be <c>function</c>. Names are trimmed (vLLM keeps them verbatim).</item>
/// <item>vLLM filters names against the request's tool list; here that is the tool loop's job (an unknown name
/// becomes an error result the model can read).</item>
/// </list>
/// </remarks>
public static class ToolCallParser
{
    public const string OpenMarker = "<tool_call>";
    public const string CloseMarker = "</tool_call>";

    /// <summary>Parses every block of <paramref name="reply"/>; never throws on malformed input.</summary>
    public static ToolCallParseResult Parse(string reply)
    {
        ArgumentNullException.ThrowIfNull(reply);
        var content = new StringBuilder(reply.Length);
        var calls = new List<ToolCall>();
        var errors = new List<ToolCallError>();
        int pos = 0, block = 0;
        while (pos < reply.Length)
        {
            int open = reply.IndexOf(OpenMarker, pos, StringComparison.Ordinal);
            int stray = reply.IndexOf(CloseMarker, pos, StringComparison.Ordinal);
            if (stray >= 0 && (open < 0 || stray < open))
            {
                content.Append(reply, pos, stray - pos);
                errors.Add(new ToolCallError(-1, ToolCallErrorKind.StrayClose, stray, CloseMarker,
                    $"'{CloseMarker}' at offset {stray} has no matching '{OpenMarker}'"));
                pos = stray + CloseMarker.Length;
                continue;
            }
            if (open < 0)
            {
                content.Append(reply, pos, reply.Length - pos);
                break;
            }
            content.Append(reply, pos, open - pos);

            // Find the close that matches this open, counting nested opens, so that a nested block is reported as
            // one malformed outer block instead of leaving its tail behind as content with a stray close.
            int depth = 1, scan = open + OpenMarker.Length, end = -1;
            bool nested = false;
            while (true)
            {
                int o = reply.IndexOf(OpenMarker, scan, StringComparison.Ordinal);
                int c = reply.IndexOf(CloseMarker, scan, StringComparison.Ordinal);
                if (c < 0) break;
                if (o >= 0 && o < c) { depth++; nested = true; scan = o + OpenMarker.Length; continue; }
                scan = c + CloseMarker.Length;
                if (--depth == 0) { end = c; break; }
            }
            if (end < 0)
            {
                errors.Add(new ToolCallError(block, ToolCallErrorKind.Unclosed, open, reply[open..],
                    $"block {block} at offset {open}: '{OpenMarker}' is never closed by '{CloseMarker}'"));
                break;
            }
            string raw = reply[open..(end + CloseMarker.Length)];
            if (nested)
                errors.Add(new ToolCallError(block, ToolCallErrorKind.Nested, open, raw,
                    $"block {block} at offset {open}: '{OpenMarker}' nested inside another block"));
            else
                ParseBody(reply[(open + OpenMarker.Length)..end], block, open, raw, calls, errors);
            block++;
            pos = end + CloseMarker.Length;
        }
        return new ToolCallParseResult(content.ToString(), calls, errors);
    }

    private static void ParseBody(string body, int block, int offset, string raw, List<ToolCall> calls, List<ToolCallError> errors)
    {
        var parts = body.Split('\n', 3);
        if (parts.Length < 3)
        {
            errors.Add(new ToolCallError(block, ToolCallErrorKind.MalformedBlock, offset, raw,
                $"block {block} at offset {offset}: expected 'function\\nNAME\\nJSON', found {parts.Length} line(s)"));
            return;
        }
        string type = parts[0].Trim(), name = parts[1].Trim(), args = parts[2].Trim();
        if (type != "function")
        {
            errors.Add(new ToolCallError(block, ToolCallErrorKind.MalformedBlock, offset, raw,
                $"block {block} at offset {offset}: first line is '{type}', expected 'function'"));
            return;
        }
        if (name.Length == 0)
        {
            errors.Add(new ToolCallError(block, ToolCallErrorKind.MalformedBlock, offset, raw,
                $"block {block} at offset {offset}: empty function name"));
            return;
        }
        try
        {
            using var doc = JsonDocument.Parse(args);
            calls.Add(new ToolCall(block, name, doc.RootElement.Clone(), args));
        }
        catch (JsonException ex)
        {
            errors.Add(new ToolCallError(block, ToolCallErrorKind.MalformedJson, offset, raw,
                $"block {block} at offset {offset}: arguments of '{name}' are not valid JSON: {ex.Message}"));
        }
    }
}
