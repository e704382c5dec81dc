using System.Text.Json;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>The <c>tool_json_schemas</c> turn (docs/model.md §6.8) as JSON and as prompt ids (docs/model.md §6.2).</summary>
public sealed class ToolRegistryTests
{

    private const string SearchSchemaJson =
        """[{"type":"function","function":{"name":"search","description":"Search the web and return the top results (title, URL, snippet).","parameters":{"type":"object","properties":{"query":{"type":"string","description":"The search query."}},"required":["query"]}}}]""";

    private static ToolRegistry SearchOnly() =>
        new ToolRegistry().Register(new WebSearchTool(WebSearchOptions.Unconfigured, new HttpClient()));

    [Fact]
    public void SearchSchemaRendersExactly()
    {
        var message = SearchOnly().ToolSchemasMessage();
        Assert.Equal("tool_json_schemas", message.Role);
        Assert.Equal(SearchSchemaJson, message.Text);
        Assert.Null(message.Items);
        Assert.True(message.Eot);
    }

    [Fact]
    public void SeveralToolsInRegistrationOrderWithNonAsciiKeptAsIs()
    {
        var reg = SearchOnly().Register(new ScriptedTool("天气", "查询城市天气", """{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"""));
        string json = reg.RenderSchemasJson();
        Assert.EndsWith(""",{"type":"function","function":{"name":"天气","description":"查询城市天气","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]""", json);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(["search", "天气"], doc.RootElement.EnumerateArray().Select(e => e.GetProperty("function").GetProperty("name").GetString()));
    }

    [Fact]
    public void DuplicateOrSchemaLessToolsAreRejected()
    {
        var reg = SearchOnly();
        Assert.Throws<ArgumentException>(() => reg.Register(new WebSearchTool(WebSearchOptions.Unconfigured, new HttpClient())));
        Assert.Throws<ArgumentException>(() => reg.Register(new ScriptedTool("x", "d", "[]")));
        Assert.Single(reg.Tools);
    }

    [Fact]
    public void PromptIdsMatchTheHandBuiltTurns()
    {
        var tok = SharedTokenizer.Value;
        var prompt = PromptBuilder.Chat(tok, [
            ChatMessage.System("You are a helpful assistant."),
            SearchOnly().ToolSchemasMessage(),
            ChatMessage.User("What is the weather in Shanghai today?"),
            ChatMessage.AssistantPrompt()]);

        // docs/model.md §6.2: each string turn is one segment, tokenised on its own; §6.8: the schema turn right after system
        int[] system = tok.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>");
        int[] schemas = tok.Encode("<|BOT|>tool_json_schemas\n" + SearchSchemaJson + "<|EOT|>");
        int[] human = tok.Encode("<|BOT|>human\nWhat is the weather in Shanghai today?<|EOT|>");
        int[] gen = tok.Encode("<|BOT|>assistant\n");
        Assert.Equal([.. system, .. schemas, .. human, .. gen], prompt.Ids);

        Assert.Equal(StepAudioTokenizer.Bot, schemas[0]);
        Assert.Equal(StepAudioTokenizer.Eot, schemas[^1]);
        int nl = Array.IndexOf(schemas, StepAudioTokenizer.Newline);
        Assert.Equal("tool_json_schemas", tok.Decode(schemas.AsSpan(1, nl - 1)));
        Assert.Equal(SearchSchemaJson, tok.Decode(schemas.AsSpan(nl + 1, schemas.Length - nl - 2)));
        Assert.DoesNotContain(StepAudioTokenizer.ToolCallStart, prompt.Ids);
    }
}
