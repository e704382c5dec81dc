using System.Runtime.CompilerServices;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tools;

namespace StepAudio2.Lab.Conversations;

/// <summary>One reply of a <see cref="Conversation"/>: the generation and how much of the prompt was actually prefilled.</summary>
/// <param name="PrefillLogits">float32 logits after the prompt (before the first generated token).</param>
public sealed record ConversationReply(GenerationResult Generation, string Text, Prompt Prompt, int ReusedTokens, int PrefilledTokens, float[] PrefillLogits);

/// <summary>A think-mode turn: the thought (kept out of the history) and the two generations.</summary>
public sealed record ConversationThinkReply(string Thinking, ConversationReply ThinkCall, ConversationReply Answer);

/// <summary>A tool-using turn: the loop's outcome, every generation in order (think calls included) and the thoughts, if thinking.</summary>
public sealed record ConversationToolReply(ToolLoopResult Loop, IReadOnlyList<ConversationReply> Generations, IReadOnlyList<ConversationThinkReply> Thoughts);

/// <summary>
/// A multi-turn conversation that keeps the decoder's KV cache between turns: each turn renders the whole history in
/// the official format (docs/model.md §6.6), finds the longest prefix already in the cache, truncates the cache there and
/// prefills only the new tokens. Text replies go back into the history as text; speech replies as
/// <c>&lt;tts_start&gt;</c> + the raw generated ids, as the official runner re-feeds them.
/// Audio: only the chunks after the reused prefix are encoded, batched per turn; the official runner re-encodes every
/// chunk of the history in one batch each time, which differs only where a longer batch changes a short chunk's
/// padding parity (docs/model.md §2.7). Set <see cref="ReuseCache"/> false to recompute everything as the official runner does.
/// </summary>
public sealed class Conversation
{
    private readonly StepAudio2Model _model;
    private readonly StepAudioTokenizer _tokenizer;
    private readonly List<ChatMessage> _messages = [];
    private readonly CachedLogitsSource _source;

    public Conversation(StepAudio2Model model, StepAudioTokenizer tokenizer, string? systemPrompt = "You are a helpful assistant.")
    {
        _model = model;
        _tokenizer = tokenizer;
        _source = new CachedLogitsSource(model);
        if (systemPrompt is not null) _messages.Add(ChatMessage.System(systemPrompt));
    }

    public IReadOnlyList<ChatMessage> Messages => _messages;

    /// <summary>Ids currently held in the KV cache.</summary>
    public IReadOnlyList<int> CachedIds => _source.Ids;

    /// <summary>Reuse the KV cache of the unchanged prefix (default) or recompute the whole history every turn.</summary>
    public bool ReuseCache { get; set; } = true;

    /// <summary>Adds a message without generating (e.g. a tool result turn or an edited history).</summary>
    public void Add(ChatMessage message) => _messages.Add(message);

    /// <summary>Sends <paramref name="user"/> and generates the assistant's reply, which joins the history.</summary>
    public ConversationReply Send(ChatMessage user, SamplingOptions? options = null, bool speechReply = false,
        Action<TokenGenerated>? onToken = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        options ??= SamplingOptions.Chat;
        var generationPrompt = speechReply ? ChatMessage.AssistantSpeechPrompt() : ChatMessage.AssistantPrompt();
        var reply = Generate([.. _messages, user, generationPrompt], options, onToken, cancellationToken);
        _messages.Add(user);
        _messages.Add(ReplyMessage(reply, options, speechReply));
        return reply;
    }

    /// <summary>
    /// A think-mode turn (docs/model.md §6.7): call 1 thinks under <paramref name="thinkOptions"/> (its own budget) until the decoded
    /// text reaches <c>&lt;/think&gt;</c>; call 2 answers under <paramref name="answerOptions"/> with the thought pre-filled.
    /// Only <paramref name="user"/> and the answer join the history: the thought is dropped, as the official example does.
    /// Both calls reuse the cache: call 2 prefills little more than the closing tag.
    /// </summary>
    public ConversationThinkReply Think(ChatMessage user, SamplingOptions? thinkOptions = null, SamplingOptions? answerOptions = null,
        bool speechReply = false, Action<TokenGenerated>? onThought = null, Action<TokenGenerated>? onAnswer = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        answerOptions ??= SamplingOptions.Chat;
        var turn = ThinkTwoCalls([.. _messages, user], thinkOptions ?? SamplingOptions.Chat, answerOptions, speechReply, onThought, onAnswer, cancellationToken);
        _messages.Add(user);
        _messages.Add(ReplyMessage(turn.Answer, answerOptions, speechReply));
        return turn;
    }

    /// <summary>
    /// A tool-using turn (docs/model.md §6.8) through <see cref="ToolLoop.RunAsync"/>: text replies, each parsed for tool calls whose
    /// results come back as <c>input</c> turns, until a reply calls no tool or <paramref name="maxRounds"/> generations
    /// were made. The tools are announced by a <c>tool_json_schemas</c> turn the caller adds once (e.g.
    /// <c>Add(registry.ToolSchemasMessage())</c> right after the system turn). Every generation reuses the cache.
    /// With <paramref name="thinkOptions"/> each round is a think two-call whose thought stays out of the history.
    /// All the turns the loop made (replies with their tool calls, <c>input</c> turns, the final answer) join the history.
    /// </summary>
    public async Task<ConversationToolReply> SendWithToolsAsync(ChatMessage user, ToolRegistry registry, int maxRounds = 4,
        SamplingOptions? options = null, ToolLoopOptions? toolOptions = null, Action<TokenGenerated>? onToken = null,
        Action<ToolLoopEvent>? onToolEvent = null, SamplingOptions? thinkOptions = null, Action<TokenGenerated>? onThought = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(registry);
        options ??= SamplingOptions.Chat;
        var generations = new List<ConversationReply>();
        var thoughts = new List<ConversationThinkReply>();
        Task<string> GenerateRound(IReadOnlyList<ChatMessage> prompt)
        {
            if (thinkOptions is null)
            {
                var reply = Generate(prompt, options, onToken, cancellationToken);
                generations.Add(reply);
                return Task.FromResult(reply.Text);
            }
            // the loop hands over history + text generation prompt; think mode replaces that prompt with its own two
            var turn = ThinkTwoCalls(prompt.Take(prompt.Count - 1).ToList(), thinkOptions, options, false, onThought, onToken, cancellationToken);
            thoughts.Add(turn);
            generations.Add(turn.ThinkCall);
            generations.Add(turn.Answer);
            return Task.FromResult(turn.Answer.Text);
        }
        var result = await ToolLoop.RunAsync(GenerateRound, [.. _messages, user], maxRounds, registry, toolOptions, onToolEvent, cancellationToken)
            .ConfigureAwait(false);
        _messages.Clear();
        _messages.AddRange(result.History);
        return new ConversationToolReply(result, generations, thoughts);
    }

    private ConversationThinkReply ThinkTwoCalls(IReadOnlyList<ChatMessage> history, SamplingOptions thinkOptions, SamplingOptions answerOptions,
        bool speechReply, Action<TokenGenerated>? onThought, Action<TokenGenerated>? onAnswer, CancellationToken ct)
    {
        var thinkCall = Generate([.. history, ThinkMode.ThinkPrompt()], ThinkMode.WithStop(thinkOptions), onThought, ct);
        string thought = ThinkMode.Thought(thinkCall.Text);
        var answer = Generate([.. history, ThinkMode.AnswerPrompt(thought, speechReply)], answerOptions, onAnswer, ct);
        return new ConversationThinkReply(thought, thinkCall, answer);
    }

    /// <summary>
    /// <see cref="Send"/> as a stream: a <see cref="TokenGenerated"/> per id as it is generated (each step on the thread
    /// pool), then the <see cref="GenerationCompleted"/>; by then the turn is in <see cref="Messages"/> and its reuse
    /// figures in <see cref="LastReply"/>. Cancelling (or abandoning the enumeration) leaves the history unchanged.
    /// </summary>
    public async IAsyncEnumerable<GenerationEvent> SendStreamingAsync(ChatMessage user, SamplingOptions? options = null, bool speechReply = false,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        options ??= SamplingOptions.Chat;
        var generationPrompt = speechReply ? ChatMessage.AssistantSpeechPrompt() : ChatMessage.AssistantPrompt();
        var prompt = Prepare([.. _messages, user, generationPrompt]);
        await foreach (var e in new Generator(_source).GenerateStreamingAsync(prompt.Ids, options, null, Decoder, cancellationToken).ConfigureAwait(false))
        {
            if (e is GenerationCompleted done)
            {
                var reply = Finish(prompt, done.Result);
                _messages.Add(user);
                _messages.Add(ReplyMessage(reply, options, speechReply));
            }
            yield return e;
        }
    }

    /// <summary>The most recent generation of this conversation (any method), with its cache reuse figures.</summary>
    public ConversationReply? LastReply { get; private set; }

    /// <summary>Renders <paramref name="promptMessages"/> (ending in a generation prompt) and generates, reusing the cached prefix.</summary>
    private ConversationReply Generate(IReadOnlyList<ChatMessage> promptMessages, SamplingOptions options, Action<TokenGenerated>? onToken, CancellationToken ct)
    {
        var prompt = Prepare(promptMessages);
        return Finish(prompt, new Generator(_source).Generate(prompt.Ids, options, null, Decoder, onToken, ct));
    }

    private Prompt Prepare(IReadOnlyList<ChatMessage> promptMessages)
    {
        var prompt = PromptBuilder.Chat(_tokenizer, promptMessages);
        if (!ReuseCache) _source.Reset();
        _source.Pending = prompt;
        return prompt;
    }

    private ConversationReply Finish(Prompt prompt, GenerationResult result)
    {
        string text = result.Text ?? _tokenizer.Decode(result.TextIds);
        return LastReply = new ConversationReply(result, text, prompt, _source.LastReused, _source.LastPrefilled, _source.LastPrefillLogits);
    }

    private DelegateTokenDecoder Decoder => new(ids => _tokenizer.Decode(ids.ToArray()));

    /// <summary>The history turn of a reply: its text, or for speech <c>&lt;tts_start&gt;</c> + the raw ids as the official runner re-feeds them.</summary>
    private static ChatMessage ReplyMessage(ConversationReply reply, SamplingOptions options, bool speechReply)
    {
        if (!speechReply) return ChatMessage.Assistant(reply.Text);
        var kept = reply.Generation.GeneratedIds.Where(id => !options.StopTokenIds.Contains(id)).ToArray();
        return new ChatMessage("assistant", null, [new TextItem("<tts_start>"), new TokenItem(kept)]);
    }

    /// <summary>An <see cref="ILogitsSource"/> whose cache outlives one generation.</summary>
    private sealed class CachedLogitsSource(StepAudio2Model model) : ILogitsSource
    {
        private KvCache _cache = new(model.Config.Text);
        public List<int> Ids { get; } = [];
        public Prompt? Pending { get; set; }
        public int LastReused { get; private set; }
        public int LastPrefilled { get; private set; }
        public float[] LastPrefillLogits { get; private set; } = [];
        public int VocabSize => model.Config.Text.VocabSize;
        public int? ContextLength => model.Config.Text.MaxPositionEmbeddings;

        public void Reset()
        {
            _cache = new KvCache(model.Config.Text);
            Ids.Clear();
        }

        public float[] Prefill(IReadOnlyList<int> promptIds, PromptAudio? audio)
        {
            var prompt = Pending ?? throw new InvalidOperationException("no pending prompt");
            var ids = prompt.Ids;
            int common = 0;
            while (common < Ids.Count && common < ids.Length - 1 && Ids[common] == ids[common]) common++;
            // never split an audio block: its features are only meaningful as a whole
            var blocks = AudioBlocks(ids);
            foreach (var (start, end) in blocks)
                if (start < common && common < end) common = start;
            var newChunks = Enumerable.Range(0, blocks.Count).Where(k => blocks[k].Start >= common).ToArray();
            Tensor? features = null;
            int[] lengths = [];
            if (newChunks.Length > 0)
            {
                var batch = LogMelFrontend.Batch(newChunks.Select(k => prompt.Audio!.Mels[k]).ToList());
                (features, lengths) = model.EncodeAudio(batch.Mels, batch.Lengths.ToInt64Array().Select(l => (int)l).ToArray());
            }
            _cache.Truncate(common);
            Ids.RemoveRange(common, Ids.Count - common);
            var suffix = ids.AsSpan(common);
            var logits = model.LastLogits(model.EmbedPrompt(suffix, features, lengths), common, _cache);
            Ids.AddRange(suffix.ToArray());
            LastReused = common;
            LastPrefilled = suffix.Length;
            Pending = null;
            LastPrefillLogits = logits.ToFloatArray();
            return LastPrefillLogits;
        }

        public float[] Step(int id)
        {
            var logits = model.LastLogits(model.EmbedPrompt([id], null, []), Ids.Count, _cache);
            Ids.Add(id);
            return logits.ToFloatArray();
        }

        private static List<(int Start, int End)> AudioBlocks(int[] ids)
        {
            var blocks = new List<(int, int)>();
            for (int i = 0; i < ids.Length; i++)
                if (ids[i] == StepAudioTokenizer.AudioStart)
                {
                    int j = Array.IndexOf(ids, StepAudioTokenizer.AudioEnd, i);
                    blocks.Add((i, j < 0 ? ids.Length : j + 1));
                }
            return blocks;
        }
    }
}
