using System.Text.Json;

namespace StepAudio2.Lab.Tools;

/// <summary>One well-formed tool call: <c>&lt;tool_call&gt;function\nNAME\nJSON&lt;/tool_call&gt;</c>.</summary>
/// <param name="Index">Position of its block among all <c>&lt;tool_call&gt;</c> blocks of the reply (malformed ones count too),
/// so calls and errors share one numbering.</param>
/// <param name="Name">The function name (second line of the block, surrounding whitespace removed).</param>
/// <param name="Arguments">The parsed arguments (a detached clone: no document to dispose).</param>
/// <param name="ArgumentsJson">The argument text as the model wrote it, surrounding whitespace removed.</param>
public sealed record ToolCall(int Index, string Name, JsonElement Arguments, string ArgumentsJson);

/// <summary>What went wrong with a block (or a stray end marker).</summary>
public enum ToolCallErrorKind
{
    /// <summary>The argument text is not valid JSON.</summary>
    MalformedJson,
    /// <summary>The block is not <c>function\nNAME\nJSON</c> (missing lines, other type word, empty name).</summary>
    MalformedBlock,
    /// <summary>A <c>&lt;tool_call&gt;</c> without its <c>&lt;/tool_call&gt;</c> (e.g. generation hit the length limit).</summary>
    Unclosed,
    /// <summary>A <c>&lt;tool_call&gt;</c> opened inside another block.</summary>
    Nested,
    /// <summary>A <c>&lt;/tool_call&gt;</c> with no open block.</summary>
    StrayClose,
}

/// <summary>A block the parser could not turn into a <see cref="ToolCall"/>; never silently dropped.</summary>
/// <param name="Index">Block index as in <see cref="ToolCall.Index"/>; −1 for <see cref="ToolCallErrorKind.StrayClose"/>.</param>
/// <param name="Offset">Character offset of the block (or stray marker) in the reply.</param>
/// <param name="Raw">The block's raw text including its markers (to the end of the reply when unclosed).</param>
/// <param name="Message">Human-readable cause; for JSON errors the System.Text.Json message (line/byte position).</param>
public sealed record ToolCallError(int Index, ToolCallErrorKind Kind, int Offset, string Raw, string Message);

/// <summary>A parsed model reply: the text outside the blocks, the calls, and the blocks that failed.</summary>
public sealed record ToolCallParseResult(string Content, IReadOnlyList<ToolCall> Calls, IReadOnlyList<ToolCallError> Errors)
{
    /// <summary>True when the reply asks for tool work: at least one call, or a failed block the model should hear about.</summary>
    public bool HasToolActivity => Calls.Count > 0 || Errors.Count > 0;
}
