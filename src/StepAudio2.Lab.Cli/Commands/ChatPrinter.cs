using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// What <c>steplab chat</c> prints as a turn happens: each generation's text under its marker (<c>thinking&gt;</c>,
/// <c>assistant&gt;</c>) from its first token, then tool calls and results on lines of their own, in the order they occur.
/// </summary>
public sealed class ChatPrinter(CliOutput ui)
{
    private bool _lineOpen;

    /// <summary>Streams one token; the first token of a generation (index 0) starts a new line with <paramref name="marker"/>.</summary>
    public void Token(string marker, TokenGenerated token)
    {
        ArgumentNullException.ThrowIfNull(token);
        if (token.Index == 0)
        {
            EndLine();
            ui.Out.Write(marker);
            _lineOpen = true;
        }
        if (token.TextDelta.Length > 0) ui.Out.Write(token.TextDelta);
        ui.Out.Flush();
    }

    /// <summary>Prints a tool call as it starts and a result as it is ready; the reply that asked for them was streamed already.</summary>
    public void ToolEvent(ToolLoopEvent e)
    {
        switch (e)
        {
            case ToolCallStarting s:
                EndLine();
                ui.Out.WriteLine($"[tool call] {s.Call.Name} {s.Call.ArgumentsJson}");
                break;
            case ToolResultReady r:
                EndLine();
                string head = r.Result.IsError ? "[tool error]" : "[tool result]";
                var lines = r.Result.Content.ReplaceLineEndings("\n").Split('\n');
                ui.Out.WriteLine($"{head} {r.Result.Name ?? "(unparsed block)"}: {lines[0]}");
                foreach (var line in lines.Skip(1)) ui.Out.WriteLine("  " + line);
                break;
        }
        ui.Out.Flush();
    }

    /// <summary>Ends the streamed line, if one is open.</summary>
    public void EndLine()
    {
        if (!_lineOpen) return;
        ui.Out.WriteLine();
        _lineOpen = false;
    }
}
