using System.Net;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// 09-think-and-tools on the tiny checkpoint: the live stream grows one token per update, the think prompts are the
/// hand-built ones of docs/model.md §6.7, the thought stays out of the history, the stop string ends the recorded thought where
/// the decoded text first holds it, the parser and the tool loop report what the recorded replies contain, and the
/// conversation's cache reuse is what its prompts imply.
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class ThinkAndToolsNotebookTests
{
    private static readonly Lazy<StepAudioTokenizer> Tok = new(() =>
        StepAudioTokenizer.Load(Path.GetFullPath(Path.Combine(TestPaths.RepoRoot, "..", "shared", "models", "step-audio-2-mini"))));

    [Fact]
    public async Task Think_and_tools_shows_each_step()
    {
        var runs = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, "09-think-and-tools.ipynb"));
        var byId = runs.ToDictionary(r => r.Id);
        Assert.True(byId["think-00"].Skipped && byId["think-01"].Skipped);
        foreach (var r in runs.Where(r => !r.Skipped)) Assert.True(r.Error is null, $"cell '{r.Id}' failed:\n{r.Code}\n{r.Error}");
        var tok = Tok.Value;
        int[] Enc(string s) => tok.Encode(s);

        // parameters + setup: the tiny checkpoint is recognised as random, nothing is contacted
        var setup = Text(byId["think-05"]);
        Assert.Contains("TINY RANDOM checkpoint", setup);
        Assert.Contains("budgets: think 12, answer 6 tokens; web search: not configured (nothing is contacted)", setup);

        // 1 · live stream: the prompt is the hand-built chat prompt (docs/model.md §6.2); one update per token, each a prefix of the last
        var stream = byId["think-07"];
        int[] system = Enc("<|BOT|>system\nYou are a helpful assistant.<|EOT|>");
        int[] prompt1 = [.. system, .. Enc("<|BOT|>human\nWhy is the sky blue?<|EOT|>"), .. Enc("<|BOT|>assistant\n")];
        var views = Streams(stream.Html);
        Assert.Equal(1 + 6, views.Count); // the first display, then an update per token (answer budget 6 on the tiny checkpoint)
        for (int i = 0; i < views.Count; i++)
        {
            Assert.Equal(prompt1, views[i].Prompt);
            Assert.Equal(i, views[i].Generated.Length);
            Assert.Equal(views[^1].Generated[..i], views[i].Generated);
        }
        Assert.Contains("6 tokens streamed, stop: MaxNewTokens; the text deltas concatenate to the reply: True", Text(stream));
        Assert.Contains($"prompt as rendered by the conversation = the prompt shown: True; prefilled {prompt1.Length} of {prompt1.Length} ids (reused 0)", Text(stream));

        // 2 · think: call 1 ends in the pre-filled "\n<think>\n" without <|EOT|> (docs/model.md §6.7)
        var thinkPrompt = Streams(byId["think-09"].Html).Single().Prompt;
        int[] open = Enc("<|BOT|>assistant\n\n<think>\n");
        Assert.Equal(open, thinkPrompt[^open.Length..]);
        Assert.Equal(Enc("<|BOT|>human\nThen why are sunsets red?<|EOT|>"), thinkPrompt[^(open.Length + Enc("<|BOT|>human\nThen why are sunsets red?<|EOT|>").Length)..^open.Length]);
        Assert.Contains("prompt ends with it: True; no <|EOT|> after it: True", Text(byId["think-09"]));

        // the thought streams into the first view, the answer into the second: 1 + 12 and 1 + 6 outputs, the random thought runs to its budget
        var thinkTurn = Streams(byId["think-11"].Html);
        Assert.Equal(2 + 12 + 6, thinkTurn.Count);
        Assert.Equal(12, thinkTurn.Max(v => v.Generated.Length));
        Assert.Contains("call 1 (think): 12 tokens, stop: MaxNewTokens", Text(byId["think-11"]));
        Assert.Contains("call 2 (answer): 6 tokens, stop: MaxNewTokens", Text(byId["think-11"]));

        // call 2: the hand-built answer prompt; the prefilled suffix is short and is the tail of that prompt
        var answer = Streams(byId["think-13"].Html);
        Assert.Equal(2, answer.Count);
        Assert.Contains("call 2 prompt = history + \"\\n<think>\\n\" + thought + \"</think>\\n\\n\": True", Text(byId["think-13"]));
        var m = Regex.Match(Text(byId["think-13"]), @"call 2 prefilled (\d+) of (\d+) \(reused (\d+)\)");
        Assert.True(m.Success);
        int prefilled = int.Parse(m.Groups[1].Value), total = int.Parse(m.Groups[2].Value), reused = int.Parse(m.Groups[3].Value);
        Assert.Equal(total, answer[0].Prompt.Length);
        Assert.Equal(total, prefilled + reused);
        Assert.InRange(prefilled, 3, 8); // at least "</", "think", ">\n\n"; little more than the closing tag
        Assert.Equal(answer[0].Prompt[reused..], answer[1].Prompt);
        Assert.Equal(Enc("think>\n\n")[^2..], answer[0].Prompt[^2..]); // ... "think", ">\n\n"

        // the history after the turn: no thought
        var history = Rows(byId["think-15"].Html);
        Assert.Equal(["system", "human", "assistant", "human", "assistant"], history.Select(r => r[1]));
        Assert.DoesNotContain(history, r => r[2].Contains("<think>") || r[2].Contains("</think>"));
        Assert.Contains("thought in the history: False; last turn = the answer: True", Text(byId["think-15"]));

        // 3 · the stop string: "</think>" is 522 26865 29 (docs/model.md §6.7); generation stops at the first prefix whose text holds it
        var stop = byId["think-17"];
        Assert.Contains("\"</think>\" = 522 26865 29 (</ | think | >)", Text(stop));
        int[] recorded = Enc("The sunlight crosses more air at sunset, so the blue is scattered away and red remains.</think>\n\nAt sunset the light travels");
        int k = Enumerable.Range(1, recorded.Length).First(n => tok.Decode(recorded[..n]).Contains("</think>"));
        Assert.True(k < recorded.Length);
        Assert.Equal(recorded[..k], Streams(stop.Html).Single().Generated);
        Assert.Contains($"stop: StopString on \"</think>\" after {k} of {recorded.Length} recorded ids", Text(stop));
        Assert.Contains("thought cut from the reply: \"The sunlight crosses more air at sunset, so the blue is scattered away and red remains.\"", Text(stop));
        var steps = Rows(stop.Html);
        Assert.Equal(recorded[k - 1].ToString(), steps[^1][1]);
        Assert.StartsWith(">", steps[^1][2]);

        // 4 · tools: the schema turn right after the system turn (docs/model.md §6.8)
        var schemaCell = byId["think-19"];
        var json = Text(schemaCell).Split('\n')[0];
        Assert.StartsWith("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"", json);
        Assert.Contains("{\"name\":\"search\"", json);
        var schemaPrompt = Streams(schemaCell.Html).Single().Prompt;
        int[] schemaTurn = Enc("<|BOT|>tool_json_schemas\n" + json + "<|EOT|>");
        Assert.Equal([.. system, .. schemaTurn], schemaPrompt[..(system.Length + schemaTurn.Length)]);
        Assert.Equal(["text", "text", "text", "text"], Rows(schemaCell.Html).Select(r => r[2]));

        // the parser on the recorded reply: text before, two calls, one malformed block reported
        var parse = byId["think-21"];
        var parsedIds = Streams(parse.Html).Single().Generated;
        Assert.Equal(3, parsedIds.Count(i => i == StepAudioTokenizer.ToolCallStart));
        Assert.Equal(3, parsedIds.Count(i => i == StepAudioTokenizer.ToolCallEnd));
        Assert.Contains("content outside the blocks: \"Let me look up both cities.\"", Text(parse));
        var tables = Regex.Matches(parse.Html, "<table class=\"listing\">.*?</table>", RegexOptions.Singleline).Select(x => Rows(x.Value)).ToList();
        Assert.Equal(2, tables.Count);
        Assert.Equal([["0", "get_weather", "{\"city\": \"Shanghai\"}"], ["1", "get_weather", "{\"city\": \"Beijing\"}"]], tables[0]);
        Assert.Equal(["2", "MalformedJson"], tables[1].Single()[..2]);
        Assert.Contains("arguments of 'search' are not valid JSON", tables[1].Single()[3]);

        // the loop round trip: the fake tool's results, its exception and the unconfigured search become results, then the answer
        var loop = Text(byId["think-23"]);
        Assert.Contains("round 1: reply with 3 call(s), 0 unusable block(s)", loop);
        Assert.Contains("round 1: result of block 0: Shanghai: 24 °C, light rain, wind 12 km/h", loop);
        Assert.Contains("round 1: result of block 1 (error): error: tool 'get_weather' failed: ArgumentException: no weather data for 'Atlantis'", loop);
        Assert.Contains("round 1: result of block 2: web search is not configured (no base URL set); no search was made", loop);
        Assert.Contains("loop ended: FinalAnswer after 2 round(s); the fake tool was called for Shanghai, Atlantis", loop);
        var after = byId["think-25"];
        Assert.Equal(["system", "tool_json_schemas", "human", "assistant", "input", "assistant"], Rows(after.Html).Select(r => r[1]));
        var inputTurn = Streams(after.Html).Single().Prompt;
        Assert.Equal(Enc("<|BOT|>input\n[1] get_weather {\"city\": \"Shanghai\"}\nShanghai: 24 °C, light rain, wind 12 km/h\n\n" +
                         "[2] get_weather {\"city\": \"Atlantis\"}\nerror: tool 'get_weather' failed: ArgumentException: no weather data for 'Atlantis'\n\n" +
                         "[3] search {\"query\": \"Shanghai news today\"}\nweb search is not configured (no base URL set); no search was made<|EOT|>"), inputTurn);
        Assert.Contains("followed by the generation prompt: True", Text(after));

        // live loop on the random model: streamed, no tool call, one round
        var live = byId["think-27"];
        Assert.Equal(1 + 6, Streams(live.Html).Count);
        Assert.Contains("tiny random model: FinalAnswer after 1 round(s)", Text(live));
        Assert.Equal(["system", "tool_json_schemas", "human", "assistant"], Rows(live.Html).Select(r => r[1]));

        // 5 · cache reuse: first call prefills everything, later ones only the part the cache lacks
        var kv = Rows(byId["think-29"].Html);
        Assert.Equal(["turn 1 (streamed)", "turn 2, call 1 (think)", "turn 2, call 2 (answer)", "turn 3"], kv.Select(r => r[0]));
        Assert.Equal([prompt1.Length.ToString(), "0", prompt1.Length.ToString(), "6"], kv[0][1..5]);
        Assert.Equal(thinkPrompt.Length.ToString(), kv[1][1]);
        Assert.Equal([total.ToString(), reused.ToString(), prefilled.ToString()], kv[2][1..4]);
        foreach (var row in kv.Skip(1))
        {
            int p = int.Parse(row[1]), r = int.Parse(row[2]), f = int.Parse(row[3]);
            Assert.Equal(p, r + f);
            Assert.True(r >= prompt1.Length, $"{row[0]} reused only {r} ids");
        }
        var check = Regex.Match(Text(byId["think-31"]), @"max \|logit\(cached\) − logit\(recomputed\)\| = (\S+) \(bound 1e-5: ok\)");
        Assert.True(check.Success, Text(byId["think-31"]));
        Assert.True(double.Parse(check.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) <= 1e-5);

        // nothing loaded from elsewhere
        foreach (var r in runs) Assert.DoesNotMatch("<script[^>]+src=", r.Html);
    }

    private sealed record StreamView(int[] Prompt, int[] Generated);

    private static string Text(CellRun r) => string.Concat(r.Outputs.Where(o => o.MimeType == "text/plain").Select(o => o.Value));

    /// <summary>Every token view in <paramref name="html"/>, in output order: its prompt and generated ids.</summary>
    /// <summary>Each token stream view: its prompt ids and its generated ids (a view prints no line for ids it has none of).</summary>
    private static List<StreamView> Streams(string html) =>
        html.Split("<div class=\"tokens\">").Skip(1).Select(part =>
        {
            var prompt = Regex.Match(part, "<code class=\"prompt-ids\">([^<]*)</code>");
            var generated = Regex.Match(part, "<code class=\"generated-ids\">([^<]*)</code>");
            return new StreamView(prompt.Success ? Ids(prompt.Groups[1].Value) : [], generated.Success ? Ids(generated.Groups[1].Value) : []);
        }).ToList();

    private static int[] Ids(string s) => s.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();

    /// <summary>The data rows of the listing tables in <paramref name="html"/>, cells decoded.</summary>
    private static List<string[]> Rows(string html) =>
        Regex.Matches(html, "<table class=\"listing\">(.*?)</table>", RegexOptions.Singleline)
            .SelectMany(t => Regex.Matches(t.Groups[1].Value, "<tr>(.*?)</tr>", RegexOptions.Singleline))
            .Select(row => Regex.Matches(row.Groups[1].Value, "<td>(.*?)</td>", RegexOptions.Singleline).Select(c => WebUtility.HtmlDecode(c.Groups[1].Value)).ToArray())
            .Where(cells => cells.Length > 0).ToList();
}
