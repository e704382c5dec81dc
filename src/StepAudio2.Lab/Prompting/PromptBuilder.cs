using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Prompting;

/// <summary>One tokenised segment of a prompt, for display and debugging.</summary>
/// <param name="Kind">"text", "audio" (an &lt;audio_start&gt;…&lt;audio_end&gt; block), "tokens" or "eot".</param>
public sealed record PromptSegment(int Start, int Length, string Kind, string Source);

/// <summary>A rendered prompt: ids, the audio they reference (all chunks of the request, batched) and the segments.</summary>
public sealed record Prompt(int[] Ids, PreparedAudio? Audio, IReadOnlyList<PromptSegment> Segments);

/// <summary>
/// Renders messages into ids exactly as the official runner (docs/model.md §6.2): segment-wise tokenisation (each segment is
/// encoded separately and the id lists concatenated, which matters at BPE boundaries), audio items chunked at 25 s into
/// <c>&lt;audio_start&gt;&lt;audio_patch&gt;×n&lt;audio_end&gt;</c> blocks, token items appended raw. All audio chunks
/// of the request are batched in order of appearance (docs/model.md §2.7).
/// </summary>
public sealed class PromptBuilder(StepAudioTokenizer tokenizer)
{
    private readonly List<int> _ids = [];
    private readonly List<PromptSegment> _segments = [];
    private readonly List<float[]> _audio = [];
    private readonly List<string> _audioSources = [];

    /// <summary>Chat format: <c>&lt;|BOT|&gt;role\n…&lt;|EOT|&gt;</c> turns (the official <c>StepAudio2</c> class).</summary>
    public static Prompt Chat(StepAudioTokenizer tokenizer, IEnumerable<ChatMessage> messages)
    {
        var b = new PromptBuilder(tokenizer);
        foreach (var m in messages) b.Add(m);
        return b.Build();
    }

    /// <summary>Base-model format (the official <c>StepAudio2Base</c>): no turn markers; text verbatim, audio blocks, tokens.</summary>
    public static Prompt Base(StepAudioTokenizer tokenizer, IEnumerable<ContentItem> items)
    {
        var b = new PromptBuilder(tokenizer);
        foreach (var item in items) b.AddItem(item);
        return b.Build();
    }

    public PromptBuilder Add(ChatMessage message)
    {
        string head = $"<|BOT|>{message.RenderedRole}\n";
        if (message.Items is null && message.PlainText && message.Text is not null)
        {
            // Same ids as the one-segment form for ordinary text (added tokens split it at the same places), but the
            // user's text cannot contain control tokens.
            string body = message.RenderedRole + "\n" + message.Text;
            int[] ids = [.. tokenizer.Encode("<|BOT|>"), .. tokenizer.EncodePlain(body), .. message.Eot ? tokenizer.Encode("<|EOT|>") : []];
            Append(ids, "text", head + message.Text + (message.Eot ? "<|EOT|>" : ""));
            return this;
        }
        if (message.Items is null)
        {
            // string content: one segment holding the turn header, the text and the EOT
            string text = head + (message.Text ?? "") + (message.Text is not null && message.Eot ? "<|EOT|>" : "");
            AddText(text, "text");
            return this;
        }
        AddText(head, "text");
        foreach (var item in message.Items)
        {
            if (message.PlainText && item is TextItem t) { if (t.Text.Length > 0) Append(tokenizer.EncodePlain(t.Text), "text", t.Text); }
            else AddItem(item);
        }
        if (message.Eot) AddText("<|EOT|>", "eot");
        return this;
    }

    public PromptBuilder AddItem(ContentItem item)
    {
        switch (item)
        {
            case TextItem t: AddText(t.Text, "text"); break;
            case TokenItem t: Append(t.Ids, "tokens", $"{t.Ids.Count} raw ids"); break;
            case AudioItem a:
                _audio.Add(a.Samples16k);
                _audioSources.Add(a.Source ?? $"audio {_audio.Count - 1}");
                Append([], "audio-item", _audioSources[^1]); // placeholder: blocks are written in Build, once chunk mels exist
                break;
            default: throw new ArgumentException($"unknown content item {item.GetType().Name}");
        }
        return this;
    }

    private void AddText(string text, string kind)
    {
        if (text.Length == 0) return;
        Append(tokenizer.Encode(text), kind, text);
    }

    private void Append(IReadOnlyList<int> ids, string kind, string source)
    {
        _segments.Add(new PromptSegment(_ids.Count, ids.Count, kind, source));
        _ids.AddRange(ids);
    }

    public Prompt Build()
    {
        var prepared = _audio.Count == 0 ? null : AudioInput.Prepare(_audio);
        var ids = new List<int>(_ids.Count);
        var segments = new List<PromptSegment>();
        int item = 0, chunk = 0;
        foreach (var s in _segments)
        {
            if (s.Kind != "audio-item")
            {
                segments.Add(s with { Start = ids.Count });
                ids.AddRange(_ids.Skip(s.Start).Take(s.Length));
                continue;
            }
            for (int c = 0; c < prepared!.ChunksPerItem[item]; c++, chunk++)
            {
                int n = prepared.TokenCounts[chunk];
                segments.Add(new PromptSegment(ids.Count, n + 2, "audio", $"{s.Source} chunk {c} ({n} patches)"));
                ids.Add(StepAudioTokenizer.AudioStart);
                ids.AddRange(Enumerable.Repeat(StepAudioTokenizer.AudioPatch, n));
                ids.Add(StepAudioTokenizer.AudioEnd);
            }
            item++;
        }
        return new Prompt(ids.ToArray(), prepared, segments);
    }
}
