using System.Text.Json;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>The <c>&lt;tool_call&gt;function\nNAME\nJSON&lt;/tool_call&gt;</c> format of docs/model.md §6.8 on hand-written replies.</summary>
public sealed class ToolCallParserTests
{

    [Fact]
    public void OneCallWithoutText()
    {
        var r = ToolCallParser.Parse("<tool_call>function\nsearch\n{\"query\": \"weather in Shanghai\"}</tool_call>");
        var call = Assert.Single(r.Calls);
        Assert.Equal(0, call.Index);
        Assert.Equal("search", call.Name);
        Assert.Equal("weather in Shanghai", call.Arguments.GetProperty("query").GetString());
        Assert.Equal("{\"query\": \"weather in Shanghai\"}", call.ArgumentsJson);
        Assert.Equal("", r.Content);
        Assert.Empty(r.Errors);
        Assert.True(r.HasToolActivity);
    }

    [Fact]
    public void PlainTextHasNoCalls()
    {
        var r = ToolCallParser.Parse("It is sunny today.\n");
        Assert.Equal("It is sunny today.\n", r.Content);
        Assert.Empty(r.Calls);
        Assert.Empty(r.Errors);
        Assert.False(r.HasToolActivity);
    }

    [Fact]
    public void SeveralCallsAfterTextKeepOrderAndContent()
    {
        // the vLLM parser's own example reply: text, two calls, trailing text
        const string reply = "xxxyyy<tool_call>function\nforecast_weather\n{\"location\": \"shanghai\"}</tool_call>" +
                             "<tool_call>function\nforecast_temperature\n{\"location\": \"beijing\"}</tool_call>zzz";
        var r = ToolCallParser.Parse(reply);
        Assert.Equal(["forecast_weather", "forecast_temperature"], r.Calls.Select(c => c.Name));
        Assert.Equal([0, 1], r.Calls.Select(c => c.Index));
        Assert.Equal(["shanghai", "beijing"], r.Calls.Select(c => c.Arguments.GetProperty("location").GetString()));
        Assert.Equal("xxxyyyzzz", r.Content); // same as vLLM: prefix + suffix, untrimmed
        Assert.Empty(r.Errors);
    }

    [Fact]
    public void TextBetweenBlocksIsKeptInOrder()
    {
        var r = ToolCallParser.Parse("Let me check.\n<tool_call>function\na\n{}</tool_call>\nand\n<tool_call>function\nb\n[1,2]</tool_call>\n");
        Assert.Equal("Let me check.\n\nand\n\n", r.Content);
        Assert.Equal(JsonValueKind.Object, r.Calls[0].Arguments.ValueKind);
        Assert.Equal(2, r.Calls[1].Arguments.GetArrayLength());
    }

    [Fact]
    public void MalformedJsonIsReportedWithIndexAndMessageAndOtherCallsSurvive()
    {
        const string bad = "<tool_call>function\nsearch\n{\"query\": \"oops}</tool_call>";
        var r = ToolCallParser.Parse("A<tool_call>function\nsearch\n{\"query\": \"one\"}</tool_call>B" + bad +
                                     "<tool_call>function\nsearch\n{\"query\": \"three\"}</tool_call>");
        Assert.Equal([0, 2], r.Calls.Select(c => c.Index));
        Assert.Equal(["one", "three"], r.Calls.Select(c => c.Arguments.GetProperty("query").GetString()));
        var e = Assert.Single(r.Errors);
        Assert.Equal(1, e.Index);
        Assert.Equal(ToolCallErrorKind.MalformedJson, e.Kind);
        Assert.Equal(bad, e.Raw);
        Assert.Equal("A<tool_call>function\nsearch\n{\"query\": \"one\"}</tool_call>B".Length, e.Offset);
        Assert.Contains("block 1", e.Message);
        Assert.Contains("'search'", e.Message);
        // the System.Text.Json message itself (it names the position of the fault)
        Assert.Contains("LineNumber", e.Message);
        Assert.Equal("AB", r.Content);
    }

    [Fact]
    public void EmptyArgumentsAreMalformedJson()
    {
        var e = Assert.Single(ToolCallParser.Parse("<tool_call>function\nsearch\n</tool_call>").Errors);
        Assert.Equal(ToolCallErrorKind.MalformedJson, e.Kind);
    }

    [Theory]
    [InlineData("<tool_call>search\n{\"query\": \"x\"}</tool_call>", "found 2 line(s)")]
    [InlineData("<tool_call>method\nsearch\n{}</tool_call>", "first line is 'method'")]
    [InlineData("<tool_call>function\n  \n{}</tool_call>", "empty function name")]
    public void WrongBlockShapeIsReported(string reply, string expected)
    {
        var r = ToolCallParser.Parse(reply);
        Assert.Empty(r.Calls);
        var e = Assert.Single(r.Errors);
        Assert.Equal(ToolCallErrorKind.MalformedBlock, e.Kind);
        Assert.Contains(expected, e.Message);
        Assert.Equal(reply, e.Raw);
    }

    [Fact]
    public void UnclosedBlockIsReportedAndEarlierCallsKept()
    {
        const string tail = "<tool_call>function\nsearch\n{\"query\": \"cut off by the length li";
        var r = ToolCallParser.Parse("Sure.<tool_call>function\nsearch\n{\"query\": \"a\"}</tool_call>" + tail);
        Assert.Equal("a", Assert.Single(r.Calls).Arguments.GetProperty("query").GetString());
        var e = Assert.Single(r.Errors);
        Assert.Equal(ToolCallErrorKind.Unclosed, e.Kind);
        Assert.Equal(1, e.Index);
        Assert.Equal(tail, e.Raw);
        Assert.Equal("Sure.", r.Content);
    }

    [Fact]
    public void NestedBlockIsReportedAsOneMalformedBlock()
    {
        const string nested = "<tool_call>function\nouter\n<tool_call>function\ninner\n{}</tool_call>{}</tool_call>";
        var r = ToolCallParser.Parse("x" + nested + "y<tool_call>function\nok\n{}</tool_call>");
        var e = Assert.Single(r.Errors);
        Assert.Equal(ToolCallErrorKind.Nested, e.Kind);
        Assert.Equal(0, e.Index);
        Assert.Equal(nested, e.Raw);
        Assert.Equal(1, Assert.Single(r.Calls).Index);
        Assert.Equal("ok", r.Calls[0].Name);
        Assert.Equal("xy", r.Content);
    }

    [Fact]
    public void StrayCloseIsReportedAndNotContent()
    {
        var r = ToolCallParser.Parse("done</tool_call> really");
        var e = Assert.Single(r.Errors);
        Assert.Equal(ToolCallErrorKind.StrayClose, e.Kind);
        Assert.Equal(-1, e.Index);
        Assert.Equal(4, e.Offset);
        Assert.Equal("done really", r.Content);
    }

    [Fact]
    public void UnicodeAndEscapedNewlinesInArguments()
    {
        // JSON escapes \n and \u00e9 in the text, plus literal CJK and an emoji (surrogate pair)
        const string args = "{\"query\": \"上海 天气\\n明天 caf\\u00e9 🌧\", \"n\": 3}";
        var r = ToolCallParser.Parse("好的，我查一下。\n<tool_call>function\nsearch\n" + args + "</tool_call>");
        var call = Assert.Single(r.Calls);
        Assert.Equal("上海 天气\n明天 café 🌧", call.Arguments.GetProperty("query").GetString());
        Assert.Equal(3, call.Arguments.GetProperty("n").GetInt32());
        Assert.Equal(args, call.ArgumentsJson);
        Assert.Equal("好的，我查一下。\n", r.Content);
    }

    [Fact]
    public void DecodedTokensFromTheRealTokenizerParse()
    {
        var tok = SharedTokenizer.Value;
        const string reply = "我来搜索一下。\n<tool_call>function\nsearch\n{\"query\": \"Step-Audio 2 发布时间\"}</tool_call>" +
                             "<tool_call>function\nsearch\n{\"query\": \"StepFun\"}</tool_call>";
        int[] ids = tok.Encode(reply);
        // the markers are single added tokens, not BPE pieces
        Assert.Equal(2, ids.Count(i => i == StepAudioTokenizer.ToolCallStart));
        Assert.Equal(2, ids.Count(i => i == StepAudioTokenizer.ToolCallEnd));
        Assert.Equal(151657, StepAudioTokenizer.ToolCallStart);
        Assert.Equal(151658, StepAudioTokenizer.ToolCallEnd);
        Assert.Equal("<tool_call>", tok.Decode([151657]));
        Assert.Equal("</tool_call>", tok.Decode([151658]));

        string decoded = tok.Decode(ids);
        var r = ToolCallParser.Parse(decoded);
        Assert.Empty(r.Errors);
        Assert.Equal(["Step-Audio 2 发布时间", "StepFun"], r.Calls.Select(c => c.Arguments.GetProperty("query").GetString()));
        Assert.Equal("我来搜索一下。\n", r.Content);
    }
}
