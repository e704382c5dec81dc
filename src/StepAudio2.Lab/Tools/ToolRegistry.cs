using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using StepAudio2.Lab.Prompting;

namespace StepAudio2.Lab.Tools;

/// <summary>The tools offered to the model, in registration order, and the <c>tool_json_schemas</c> turn that announces them (docs/model.md §6.8).</summary>
public sealed class ToolRegistry
{
    private readonly List<ITool> _tools = [];

    public IReadOnlyList<ITool> Tools => _tools;

    /// <summary>Adds a tool; names must be unique (the model addresses tools by name only).</summary>
    public ToolRegistry Register(ITool tool)
    {
        ArgumentNullException.ThrowIfNull(tool);
        if (string.IsNullOrWhiteSpace(tool.Name)) throw new ArgumentException("tool name is empty", nameof(tool));
        if (_tools.Any(t => t.Name == tool.Name)) throw new ArgumentException($"a tool named '{tool.Name}' is already registered", nameof(tool));
        if (tool.Parameters.ValueKind != JsonValueKind.Object)
            throw new ArgumentException($"tool '{tool.Name}': parameters schema must be a JSON object, not {tool.Parameters.ValueKind}", nameof(tool));
        _tools.Add(tool);
        return this;
    }

    public bool TryGet(string name, out ITool tool)
    {
        tool = _tools.FirstOrDefault(t => t.Name == name)!;
        return tool is not null;
    }

    /// <summary>
    /// The <c>tool_json_schemas</c> content: <c>[{"type":"function","function":{"name":…,"description":…,"parameters":{…}}},…]</c>,
    /// compact (no whitespace), non-ASCII text written as-is rather than <c>\uXXXX</c>-escaped, keys in that order and the
    /// parameters schema in the tool's own key order. The official example's exact byte layout is not published beyond
    /// "a JSON array of OpenAI-style function specs"; compact UTF-8 keeps the prompt short and the tokenisation stable.
    /// </summary>
    public string RenderSchemasJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartArray();
            foreach (var tool in _tools)
            {
                w.WriteStartObject();
                w.WriteString("type", "function");
                w.WriteStartObject("function");
                w.WriteString("name", tool.Name);
                w.WriteString("description", tool.Description);
                w.WritePropertyName("parameters");
                tool.Parameters.WriteTo(w);
                w.WriteEndObject();
                w.WriteEndObject();
            }
            w.WriteEndArray();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The turn placed right after the system turn: <c>&lt;|BOT|&gt;tool_json_schemas\n[…]&lt;|EOT|&gt;</c>.</summary>
    public ChatMessage ToolSchemasMessage() => new("tool_json_schemas", RenderSchemasJson(), null);

    /// <summary>
    /// <paramref name="history"/> with <see cref="ToolSchemasMessage"/> right after its leading system turn (docs/model.md §6.8), or
    /// first when it has none.
    /// </summary>
    public IReadOnlyList<ChatMessage> WithSchemas(IReadOnlyList<ChatMessage> history)
    {
        ArgumentNullException.ThrowIfNull(history);
        int at = history.Count > 0 && history[0].Role == "system" ? 1 : 0;
        return [.. history.Take(at), ToolSchemasMessage(), .. history.Skip(at)];
    }
}
