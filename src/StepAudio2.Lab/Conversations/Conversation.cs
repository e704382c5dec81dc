using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Conversations;

/// <summary>One reply of a <see cref="Conversation"/>: the generation and how much of the prompt was actually prefilled.</summary>
/// <param name="PrefillLogits">float32 logits after the prompt (before the first generated token).</param>
public sealed record ConversationReply(GenerationResult Generation, string Text, Prompt Prompt, int ReusedTokens, int PrefilledTokens, float[] PrefillLogits);

/// <summary>
/// A multi-turn conversation that keeps the decoder's KV cache between turns: each turn renders the whole history in
/// the official format (spec §6.6), finds the longest prefix already in the cache, truncates the cache there and
/// prefills only the new tokens. Text replies go back into the history as text; speech replies as
/// <c>&lt;tts_start&gt;</c> + the raw generated ids, as the official runner re-feeds them.
/// Audio: only the chunks after the reused prefix are encoded, batched per turn; the official runner re-encodes every
/// chunk of the history in one batch each time, which differs only where a longer batch changes a short chunk's
/// padding parity (spec §2.7). Set <see cref="ReuseCache"/> false to recompute everything as the official runner does.
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
        var generationPrompt = speechReply ? ChatMessage.AssistantSpeechPrompt() : ChatMessage.AssistantPrompt();
        var prompt = PromptBuilder.Chat(_tokenizer, [.. _messages, user, generationPrompt]);
        if (!ReuseCache) _source.Reset();
        _source.Pending = prompt;
        var result = new Generator(_source).Generate(prompt.Ids, options ?? SamplingOptions.Chat, null,
            new DelegateTokenDecoder(ids => _tokenizer.Decode(ids.ToArray())), onToken, cancellationToken);
        string text = result.Text ?? _tokenizer.Decode(result.TextIds);
        _messages.Add(user);
        var kept = result.GeneratedIds.Where(id => !(options ?? SamplingOptions.Chat).StopTokenIds.Contains(id)).ToArray();
        _messages.Add(speechReply
            ? new ChatMessage("assistant", null, [new TextItem("<tts_start>"), new TokenItem(kept)])
            : ChatMessage.Assistant(text));
        return new ConversationReply(result, text, prompt, _source.LastReused, _source.LastPrefilled, _source.LastPrefillLogits);
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
