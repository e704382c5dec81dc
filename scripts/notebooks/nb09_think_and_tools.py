CELLS = [
("md", r"""
# 09 · Think mode, tool calls, multi-turn and streaming

The interactive behaviours of Step-Audio 2 on top of the LLM (spec §6.4–6.8):

1. **streaming**: a reply arrives token by token and the view below the cell redraws as it comes;
2. **think mode** (Step-Audio-2-mini-Think): two generation calls per turn, the thought kept out of the history;
3. the **stop string** `</think>`, which is three ordinary tokens, so it is matched on decoded text across token boundaries;
4. **tool calls**: a `tool_json_schemas` turn announces the tools, the model answers with `<tool_call>` blocks, the results
   go back as an `input` turn, and the loop repeats until a reply calls nothing;
5. **KV-cache reuse** between turns: each generation prefills only the tokens its cache does not hold yet.

**What is live and what is recorded.** With a real checkpoint folder in the parameter cell, the think turn and the tool
round trip run live on the model. The bundled tiny checkpoint has the official architecture but **random weights**: it
runs every call for real (prompts, prefill, cache, sampling, streaming), but what it generates is noise: it never
closes a thought with `</think>` and never writes a tool call. So, on any checkpoint, the stop-string detection and the
tool loop are also shown on **recorded replies**: fixed texts in the model's documented output format, replayed id by
id through the real generator. Cells that use them say so.
"""),
("md", r"""
## Parameters

The one cell to edit. The tiny checkpoint has no tokenizer files, so the real ones from `../shared/models/step-audio-2-mini`
are used with it; a real checkpoint folder carries its own. `searchUrl` is the root of a SearxNG-style service
(`{searchUrl}/search?q=…&format=json`); **empty means nothing is contacted**: the search tool then answers "not
configured" and the model reads that instead. The budgets are separate for thinking and answering, as in the official
example; with the tiny checkpoint the notebook caps them so that it runs in seconds.
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                   // or e.g. "/models/Step-Audio-2-mini-Think"
string searchUrl = "";                                 // e.g. "http://localhost:8888"; empty: no network access at all
string searchKey = null;                               // sent as "Authorization: Bearer …" when set
int thinkBudget = 1024, answerBudget = 512, seed = 1234;
var systemPrompt = "You are a helpful assistant.";
"""),
("code", r"""
using System.IO;
using System.Net.Http;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Conversations;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;
using StepAudio2.Lab.Views;
using Microsoft.DotNet.Interactive;             // for LiveView below (FormattedValue moved namespace between kernel versions)
using Microsoft.DotNet.Interactive.Events;
using Microsoft.DotNet.Interactive.Formatting;

// A folder laid out like the published checkpoint (four safetensors shards of the full-size model) is taken to hold
// trained weights and runs the live parts with the full budgets; anything else (the tiny checkpoint) is labelled random.
var config = StepAudio2Config.Load(checkpoint);
int shards = Directory.GetFiles(checkpoint, "model-*-of-*.safetensors").Length;
bool realWeights = shards == 4 && config.Text.HiddenSize == 3584;
if (!realWeights) (thinkBudget, answerBudget) = (Math.Min(thinkBudget, 12), Math.Min(answerBudget, 6));
var tokenizerDir = File.Exists(Path.Combine(checkpoint, "vocab.json")) ? checkpoint : Path.Combine(Lab.Shared, "models", "step-audio-2-mini");
var pipeline = StepAudio2Pipeline.Load(checkpoint, tokenizerDir);
var tok = pipeline.Tokenizer;
var model = pipeline.Model;
Console.WriteLine($"{(realWeights ? "REAL checkpoint: live think turn and tool round trip" : "TINY RANDOM checkpoint: live calls generate noise; think stop and tools shown on recorded replies")}");
Console.WriteLine($"{checkpoint}: {shards} shard(s), {config.Text.NumHiddenLayers} layers of width {config.Text.HiddenSize}, vocab {config.Text.VocabSize}; " +
                  $"loaded in {pipeline.LoadTime.TotalSeconds:F1} s; tokenizer from {tokenizerDir}");
Console.WriteLine($"budgets: think {thinkBudget}, answer {answerBudget} tokens; web search: {(string.IsNullOrEmpty(searchUrl) ? "not configured (nothing is contacted)" : searchUrl)}");

// An output that redraws in place while a cell runs. The kernel's own display(x).Update(y) is not used: dotnet-interactive
// 1.0.712001 sends the update under a different display id than the output it displayed, so Jupyter never applies it.
// This publishes the output and its updates under one id of its own.
sealed class LiveView
{
    private readonly KernelInvocationContext _context = KernelInvocationContext.Current;
    private readonly string _id = "steplab-live-" + Guid.NewGuid().ToString("N");
    public LiveView(object value) =>
        _context.Publish(new DisplayedValueProduced(value, _context.Command, FormattedValue.CreateManyFromObject(value, "text/html"), _id));
    public void Update(object value) =>
        _context.Publish(new DisplayedValueUpdated(value, _id, _context.Command, FormattedValue.CreateManyFromObject(value, "text/html")));
}

// Token streams coloured by kind (text, special/control, <audio_patch>, speech codes); generated ids are outlined.
TokenStream Tokens(IReadOnlyList<int> promptIds, IReadOnlyList<int> generatedIds = null) => TokenStream.Build(tok, promptIds, generatedIds ?? []);
string Ids(IEnumerable<int> ids) => string.Join(" ", ids);
HtmlView Turns(IEnumerable<ChatMessage> messages) =>
    Lab.Table(["turn", "role", "content"], messages.Select((m, i) => new object[] { i, m.RenderedRole, Short(m.Text, 140) }));
string Short(string s, int n = 90) => s is null ? "(null: generation prompt)" : (s.Length > n ? s[..n] + "…" : s).Replace("\n", "↵");
"""),
("md", r"""
## 1 · A live token stream

`Conversation.SendStreamingAsync` yields a `TokenGenerated` per id (with its text delta, its kind and, for speech, its
code) and finally a `GenerationCompleted`; each step runs on the thread pool and the enumeration can be cancelled. The
cell displays the token view once and updates that output for every token (a display id and `update_display_data`
messages), so in Jupyter the view grows in place while the model generates. This is also the conversation's **first turn**: the cache is empty, so the whole prompt is prefilled.

**Tiny checkpoint: the tokens are random** (sampled with the official chat settings from a near-uniform distribution
over 158 720 ids).
"""),
("code", r"""
var conversation = new Conversation(model, tok, systemPrompt);
var chat = SamplingOptions.Chat with { Seed = seed, MaxNewTokens = answerBudget };
var user1 = ChatMessage.User("Why is the sky blue?");
var prompt1 = PromptBuilder.Chat(tok, [.. conversation.Messages, user1, ChatMessage.AssistantPrompt()]).Ids;
var streamed = new List<int>();
var deltas = new List<string>();
var live = new LiveView(Tokens(prompt1));
await foreach (var e in conversation.SendStreamingAsync(user1, chat))
{
    if (e is TokenGenerated t)
    {
        streamed.Add(t.Id);
        deltas.Add(t.TextDelta);
        live.Update(Tokens(prompt1, streamed));
    }
}
var turn1 = conversation.LastReply;
Console.WriteLine($"{streamed.Count} tokens streamed, stop: {turn1.Generation.StopReason}; the text deltas concatenate to the reply: {string.Concat(deltas) == turn1.Text}");
Console.WriteLine($"prompt as rendered by the conversation = the prompt shown: {turn1.Prompt.Ids.SequenceEqual(prompt1)}; prefilled {turn1.PrefilledTokens} of {prompt1.Length} ids (reused {turn1.ReusedTokens})");
"""),
("md", r"""
## 2 · Think mode: two calls per turn

The official `examples-think.py` (spec §6.7) answers in two generation calls:

1. **Think.** The prompt ends with the assistant turn pre-filled with `\n<think>\n` and *no* `<|EOT|>`, so the model
   continues inside the thought. Generation stops when the decoded text reaches `</think>` (its own budget,
   `thinkBudget`).
2. **Answer.** The same history, now ending in `\n<think>\n` + thought + `</think>\n\n` (plus `<tts_start>` for a spoken
   reply), and the model writes the answer (budget `answerBudget`).

Afterwards **only the answer joins the history**; the thought is dropped, as the official example does. The thought is
scaffolding for this one answer: keeping it would make every later prompt longer (each thought can be hundreds of
tokens), and the model was not trained on histories full of old thoughts, so the next turn would see an unfamiliar
prompt. The plain-text tags matter: the tokenizer has `<|THINK_START|>`/`<|THINK_END|>` ids (151669/151670), but the
official flow does not use them.

The prompt of call 1, built by `ThinkMode.ThinkPrompt()`: the last ids are the pre-filled `\n<think>\n`.
"""),
("code", r"""
var user2 = ChatMessage.User("Then why are sunsets red?");
var thinkPrompt = PromptBuilder.Chat(tok, [.. conversation.Messages, user2, ThinkMode.ThinkPrompt()]);
display(Tokens(thinkPrompt.Ids));
var openIds = tok.Encode("<|BOT|>assistant\n" + ThinkMode.Open);
Console.WriteLine($"the generation prompt of call 1, \"<|BOT|>assistant\\n\\n<think>\\n\": {Ids(openIds)} = {string.Join(" | ", openIds.Select(i => TokenStream.Display(tok, i)))}");
Console.WriteLine($"prompt ends with it: {thinkPrompt.Ids.AsSpan(thinkPrompt.Ids.Length - openIds.Length).SequenceEqual(openIds)}; no <|EOT|> after it: {thinkPrompt.Ids[^1] != StepAudioTokenizer.Eot}");
"""),
("md", r"""
The turn itself, `Conversation.Think`: the thought streams into the first view as it is generated (the `onThought`
callback), the answer into the second. **Tiny checkpoint: the thought is random** and never reaches `</think>`, so
call 1 ends on its budget and the whole (random) text counts as the thought, which is what the official runner feeds
on in that case too.
"""),
("code", r"""
var thoughtIds = new List<int>();
var answerIds = new List<int>();
var thoughtView = new LiveView(Tokens([], []));
var answerView = new LiveView(Tokens([], []));
var thinkOptions = SamplingOptions.Chat with { Seed = seed + 1, MaxNewTokens = thinkBudget };
var answerOptions = SamplingOptions.Chat with { Seed = seed + 2, MaxNewTokens = answerBudget };
var turn2 = conversation.Think(user2, thinkOptions, answerOptions,
    onThought: t => { thoughtIds.Add(t.Id); thoughtView.Update(Tokens([], thoughtIds)); },
    onAnswer: t => { answerIds.Add(t.Id); answerView.Update(Tokens([], answerIds)); });
Console.WriteLine($"call 1 (think): {turn2.ThinkCall.Generation.GeneratedIds.Length} tokens, stop: {turn2.ThinkCall.Generation.StopReason}" +
                  (turn2.ThinkCall.Generation.MatchedStopString is { } m ? $" on \"{m}\"" : ""));
Console.WriteLine($"thought ({turn2.Thinking.Length} chars): \"{Short(turn2.Thinking)}\"");
Console.WriteLine($"call 2 (answer): {turn2.Answer.Generation.GeneratedIds.Length} tokens, stop: {turn2.Answer.Generation.StopReason}; answer: \"{Short(turn2.Answer.Text)}\"");
"""),
("md", r"""
The prompt of call 2: the history, then the assistant turn pre-filled with the thought and the closing tag. Below it,
only the ids call 2 actually **prefilled**: the cache still holds call 1's prompt and its generated thought, so the
conversation truncates the cache at the longest common prefix and computes just the rest (the closing tag, and whatever
ids re-tokenising the decoded thought changed).
"""),
("code", r"""
var answerPrompt = turn2.Answer.Prompt.Ids;
display(Tokens(answerPrompt));
display(Tokens(answerPrompt[turn2.Answer.ReusedTokens..]));
var expected = PromptBuilder.Chat(tok, [.. conversation.Messages.Take(conversation.Messages.Count - 2), user2, ThinkMode.AnswerPrompt(turn2.Thinking, speechReply: false)]).Ids;
Console.WriteLine($"call 2 prompt = history + \"\\n<think>\\n\" + thought + \"</think>\\n\\n\": {answerPrompt.SequenceEqual(expected)}");
Console.WriteLine($"call 1 prefilled {turn2.ThinkCall.PrefilledTokens} of {turn2.ThinkCall.Prompt.Ids.Length} ids; call 2 prefilled {turn2.Answer.PrefilledTokens} of {answerPrompt.Length} (reused {turn2.Answer.ReusedTokens})");
"""),
("md", r"""
The history after the turn: the human turn and the answer, **no thought**.
"""),
("code", r"""
display(Turns(conversation.Messages));
bool thoughtInHistory = conversation.Messages.Any(m => m.Text is not null && (m.Text.Contains("<think>") || (turn2.Thinking.Length > 0 && m.Text.Contains(turn2.Thinking))));
Console.WriteLine($"thought in the history: {thoughtInHistory}; last turn = the answer: {conversation.Messages[^1].Text == turn2.Answer.Text}");
"""),
("md", r"""
## 3 · The stop string `</think>` across token boundaries

There is no `</think>` token: the tokenizer spells it with ordinary BPE pieces (`</`, `think`, `>`: 522, 26865, 29),
and after a thought the `>` often merges with the newlines that follow into one token. A stop *id* cannot catch that, so
the generator decodes the generated ids after every step and stops when the decoded text contains the stop string and the
match ends inside the text the newest token added (HF `stop_strings` semantics). The tokens that spell the string are
kept; `ThinkMode.Thought` cuts the text before it.

**Recorded reply** (a fixed text in the format of the Think model's first call, not generated here): it is tokenised,
and a stand-in logits source puts all probability on the next recorded id, so the **real generator** (greedy, stop
string `</think>`) replays it step by step. The recording goes on past the tag; the table shows where generation stops.
"""),
("code", r"""
/// <summary>Replays recorded ids: the logits of each step put all the mass on the next id (a stand-in for the model).</summary>
sealed class ReplaySource(int vocabSize, IReadOnlyList<int> recorded) : ILogitsSource
{
    private int _next;
    public int VocabSize => vocabSize;
    public float[] Prefill(IReadOnlyList<int> promptIds, PromptAudio audio) { _next = 0; return Next(); }
    public float[] Step(int id) => Next();
    private float[] Next()
    {
        var logits = new float[vocabSize];
        logits[recorded[Math.Min(_next++, recorded.Count - 1)]] = 1f;
        return logits;
    }
}

var recordedThought = "The sunlight crosses more air at sunset, so the blue is scattered away and red remains.</think>\n\nAt sunset the light travels";
var recordedIds = tok.Encode(recordedThought);
Console.WriteLine($"\"</think>\" = {Ids(tok.Encode(ThinkMode.Close))} ({string.Join(" | ", tok.Encode(ThinkMode.Close).Select(i => TokenStream.Display(tok, i)))}); " +
                  $"<|THINK_END|> = {StepAudioTokenizer.ThinkEnd} is a different, unused id");
var steps = new List<object[]>();
var replayed = new Generator(new ReplaySource(config.Text.VocabSize, recordedIds)).Generate(thinkPrompt.Ids,
    ThinkMode.WithStop(SamplingOptions.Greedy with { MaxNewTokens = recordedIds.Length }), null, pipeline.Decoder,
    t => steps.Add([t.Index, t.Id, TokenStream.Display(tok, t.Id), t.TextDelta.Replace("\n", "↵")]));
display(Lab.Table(["step", "id", "token", "text delta"], steps.Skip(Math.Max(0, steps.Count - 6))));
display(Tokens([], replayed.GeneratedIds));
Console.WriteLine($"stop: {replayed.StopReason} on \"{replayed.MatchedStopString}\" after {replayed.GeneratedIds.Length} of {recordedIds.Length} recorded ids; " +
                  $"last token {replayed.GeneratedIds[^1]} = \"{TokenStream.Display(tok, replayed.GeneratedIds[^1])}\"");
Console.WriteLine($"thought cut from the reply: \"{Short(ThinkMode.Thought(replayed.Text))}\"");
"""),
("md", r"""
## 4 · Tool calls

**Announcing the tools.** A turn with role `tool_json_schemas` right after the system turn holds a JSON array of
OpenAI-style function specs (spec §6.8; the official example offers one function, `search`, with a string `query`).
Here two tools are registered: `get_weather`, a **fake defined in this notebook** (a fixed table, no network; a city it
does not know makes it throw), and `search`, the real web-search tool, which contacts `searchUrl` only when it is set.
"""),
("code", r"""
/// <summary>An in-notebook fake tool: weather from a fixed table, no network; unknown cities throw.</summary>
sealed class FakeWeather : ITool
{
    public string Name => "get_weather";
    public string Description => "Current weather for a city.";
    public JsonElement Parameters { get; } = JsonDocument.Parse(
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\",\"description\":\"City name\"}},\"required\":[\"city\"]}").RootElement.Clone();
    public List<string> Calls { get; } = [];
    public Task<string> InvokeAsync(JsonElement arguments, CancellationToken cancellationToken)
    {
        var city = arguments.GetProperty("city").GetString();
        Calls.Add(city);
        return Task.FromResult(city switch
        {
            "Shanghai" => "Shanghai: 24 °C, light rain, wind 12 km/h",
            "Beijing" => "Beijing: 18 °C, clear",
            _ => throw new ArgumentException($"no weather data for '{city}'"),
        });
    }
}

var weather = new FakeWeather();
var search = new WebSearchTool(new WebSearchOptions(string.IsNullOrEmpty(searchUrl) ? null : new Uri(searchUrl), searchKey, TimeSpan.FromSeconds(10), 5), new HttpClient());
var registry = new ToolRegistry().Register(weather).Register(search);
Console.WriteLine(registry.RenderSchemasJson());
var toolHistory = registry.WithSchemas([ChatMessage.System(systemPrompt), ChatMessage.User("What's the weather in Shanghai and in Atlantis? Any news about Shanghai?")]);
var schemaPrompt = PromptBuilder.Chat(tok, [.. toolHistory, ChatMessage.AssistantPrompt()]);
display(Tokens(schemaPrompt.Ids));
display(Lab.Table(["start", "length", "kind", "source"], schemaPrompt.Segments.Select(s => new object[] { s.Start, s.Length, s.Kind, Short(s.Source, 70) })));
"""),
("md", r"""
**The model's answer format** (StepFun's vLLM `step_audio_2` tool parser): any text, then one or more blocks

```
<tool_call>function
NAME
{JSON arguments}</tool_call>
```

`<tool_call>` and `</tool_call>` are single ids (151657/151658) that decode to exactly these strings. `ToolCallParser`
reads every block: well-formed ones become calls, and a block that cannot be used (malformed JSON, missing lines,
unclosed, nested) becomes an error that is **reported, not silently dropped**: the loop sends it back to the model as an
error result, so the model can correct itself.

**Recorded reply** (fixed text in the documented format, not generated here): text before the blocks, two well-formed
calls and one whose JSON is cut off.
"""),
("code", r"""
var recordedCalls = "Let me look up both cities.<tool_call>function\nget_weather\n{\"city\": \"Shanghai\"}</tool_call>" +
                    "<tool_call>function\nget_weather\n{\"city\": \"Beijing\"}</tool_call>" +
                    "<tool_call>function\nsearch\n{\"query\": \"Shanghai news\"</tool_call>";
var recordedCallIds = tok.Encode(recordedCalls);
display(Tokens([], recordedCallIds));
var parsed = ToolCallParser.Parse(recordedCalls);
Console.WriteLine($"content outside the blocks: \"{parsed.Content}\"");
display(Lab.Table(["block", "call", "arguments"], parsed.Calls.Select(c => new object[] { c.Index, c.Name, c.ArgumentsJson })));
display(Lab.Table(["block", "error", "offset", "message"], parsed.Errors.Select(e => new object[] { e.Index, e.Kind.ToString(), e.Offset, e.Message })));
"""),
("md", r"""
### A round trip through the tool loop

`ToolLoop.RunAsync` alternates generation and tool rounds: each reply is parsed; its calls run one at a time in block
order (unknown names, exceptions and timeouts become error results); the assistant turn with the raw reply and an
`input` turn with the results join the history; and the next generation starts. A reply without blocks ends the loop,
and `maxRounds` bounds it.

**Recorded replies, replayed through the real generator**: round 1 asks for three things (one the fake tool cannot
answer, one web search), round 2 is the final answer. Everything else is real: the prompts, the generator with the
`<|EOT|>` stop, the parser, the tools, the `input` turn.
"""),
("code", r"""
string[] recordedRounds =
[
    "I'll check.<tool_call>function\nget_weather\n{\"city\": \"Shanghai\"}</tool_call><tool_call>function\nget_weather\n{\"city\": \"Atlantis\"}</tool_call>" +
    "<tool_call>function\nsearch\n{\"query\": \"Shanghai news today\"}</tool_call>",
    "Shanghai has 24 °C with light rain. I have no weather data for Atlantis, and web search is not available right now.",
];
var roundPrompts = new List<int[]>();
var events = new List<string>();
Task<string> Replay(IReadOnlyList<ChatMessage> messages)
{
    var prompt = PromptBuilder.Chat(tok, messages).Ids;
    roundPrompts.Add(prompt);
    int[] reply = [.. tok.Encode(recordedRounds[roundPrompts.Count - 1]), StepAudioTokenizer.Eot];
    var generation = new Generator(new ReplaySource(config.Text.VocabSize, reply)).Generate(prompt, SamplingOptions.Greedy, null, pipeline.Decoder);
    return Task.FromResult(generation.Text);
}
var loop = await ToolLoop.RunAsync(Replay, toolHistory, maxRounds: 4, registry, ToolLoopOptions.Default, e => events.Add(e switch
{
    ToolRoundStarted r => $"round {r.Round}: reply with {r.Parse.Calls.Count} call(s), {r.Parse.Errors.Count} unusable block(s)",
    ToolCallStarting c => $"round {c.Round}: calling {c.Call.Name} {c.Call.ArgumentsJson}",
    ToolResultReady r => $"round {r.Round}: result of block {r.Result.Index}{(r.Result.IsError ? " (error)" : "")}: {r.Result.Content.Replace("\n", " ")}",
    _ => e.ToString(),
}));
foreach (var line in events) Console.WriteLine(line);
Console.WriteLine($"loop ended: {loop.Stop} after {loop.Rounds} round(s); the fake tool was called for {string.Join(", ", weather.Calls)}");
"""),
("md", r"""
The history after the loop: the schema turn, the question, the assistant turn with its raw tool calls, the `input` turn
with the three results (several results are numbered and headed with the call they answer), and the final answer.
Below, the `input` turn as the model reads it in round 2.
"""),
("code", r"""
display(Turns(loop.History));
var inputTurn = loop.History.Single(m => m.Role == ToolLoop.ResultRole);
var inputIds = PromptBuilder.Chat(tok, [inputTurn]).Ids;
display(Tokens(inputIds));
int at = roundPrompts[1].AsSpan().IndexOf(inputIds);
Console.WriteLine($"round 2 prompt ({roundPrompts[1].Length} ids) holds the input turn at position {at}, followed by the generation prompt: " +
                  $"{roundPrompts[1].AsSpan(at + inputIds.Length).SequenceEqual(tok.Encode("<|BOT|>assistant\n"))}");
"""),
("md", r"""
### Live: the model with the tools

The same loop with the model generating, through `Conversation.SendWithToolsAsync` (the schema turn added once after
the system turn; every round reuses the KV cache). With a real checkpoint this is the live round trip. **Tiny
checkpoint: the reply is random**, it contains no `<tool_call>` block, so the loop ends after one round with that reply
as its "answer".
"""),
("code", r"""
var toolConversation = new Conversation(model, tok, systemPrompt);
toolConversation.Add(registry.ToolSchemasMessage());
var liveIds = new List<int>();
var liveView = new LiveView(Tokens([], []));
var liveTools = await toolConversation.SendWithToolsAsync(ChatMessage.User("What's the weather in Shanghai right now?"), registry, maxRounds: 3,
    SamplingOptions.Chat with { Seed = seed + 3, MaxNewTokens = answerBudget },
    onToken: t => { liveIds.Add(t.Id); liveView.Update(Tokens([], liveIds)); },
    onToolEvent: e => Console.WriteLine(e is ToolResultReady r ? $"round {r.Round}: {r.Result.Name} → {r.Result.Content}" : e.ToString()));
Console.WriteLine($"{(realWeights ? "live" : "tiny random model")}: {liveTools.Loop.Stop} after {liveTools.Loop.Rounds} round(s); final reply: \"{Short(liveTools.Loop.FinalReply)}\"");
display(Turns(toolConversation.Messages));
"""),
("md", r"""
## 5 · KV-cache reuse between turns

A `Conversation` renders the whole history in the official format for every generation, but keeps the decoder's KV
cache: it finds the longest prefix of the new prompt that the cache already holds (prompt and generated ids of the last
call), truncates the cache there and prefills only the rest. The official runner recomputes everything each time.

A third turn makes the figures complete. Dropping the thought has a price here: the cache of turn 2 ends with the
thought and the answer, while the history has only the answer, so turn 3 reuses the cache up to turn 2's
`<|BOT|>assistant\n` and prefills the answer turn again, plus the new question.
"""),
("code", r"""
var turn3 = conversation.Send(ChatMessage.User("Thanks. One word to sum it up?"), chat);
var calls = new (string Call, ConversationReply Reply)[]
{
    ("turn 1 (streamed)", turn1), ("turn 2, call 1 (think)", turn2.ThinkCall), ("turn 2, call 2 (answer)", turn2.Answer), ("turn 3", turn3),
};
display(Lab.Table(["call", "prompt ids", "reused from cache", "prefilled", "generated", "prefill ms"], calls.Select(c => new object[] {
    c.Call, c.Reply.Prompt.Ids.Length, c.Reply.ReusedTokens, c.Reply.PrefilledTokens, c.Reply.Generation.GeneratedIds.Length, c.Reply.Generation.Prefill.TotalMilliseconds })));
"""),
("md", r"""
Reuse must not change the numbers: the logits after turn 3's prompt, computed from the cache plus the prefilled suffix,
against one forward pass over the whole prompt without a cache.
"""),
("code", r"""
var full = model.LastLogits(model.EmbedPrompt(turn3.Prompt.Ids, null, []), 0, null).ToFloatArray();
double maxDiff = full.Zip(turn3.PrefillLogits, (a, b) => (double)Math.Abs(a - b)).Max();
Console.WriteLine($"turn 3: prefilled {turn3.PrefilledTokens} of {turn3.Prompt.Ids.Length} ids; max |logit(cached) − logit(recomputed)| = {maxDiff:E2} (bound 1e-5: {(maxDiff <= 1e-5 ? "ok" : "EXCEEDED")})");
pipeline.Dispose();
"""),
]
