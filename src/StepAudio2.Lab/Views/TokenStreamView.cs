using System.Text;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Views;

/// <summary>What a token id is, for colouring.</summary>
public enum TokenClass
{
    Text,
    /// <summary>Added/control tokens (&lt;|BOT|&gt;, &lt;|EOT|&gt;, &lt;audio_start&gt;, &lt;tts_start&gt;, …).</summary>
    Special,
    AudioPatch,
    SpeechCode,
}

/// <summary>One token of the stream: id, its vocabulary string, class, whether generated, and the step's alternatives.</summary>
public sealed record TokenEntry(int Id, string Token, TokenClass Class, bool Generated, StepAlternatives? Alternatives);

/// <summary>Prompt plus generated ids with their decoded text.</summary>
public sealed record TokenStream(IReadOnlyList<TokenEntry> Tokens, string GeneratedText)
{
    /// <summary>Classifies an id by the Step-Audio 2 ranges (spec §6.4).</summary>
    public static TokenClass Classify(int id) => id switch
    {
        StepAudioTokenizer.AudioPatch => TokenClass.AudioPatch,
        >= StepAudioTokenizer.AudioCodeBase => TokenClass.SpeechCode,
        >= StepAudioTokenizer.EndOfText => TokenClass.Special,
        _ => TokenClass.Text,
    };

    /// <summary>
    /// A token as a reader wants to see it: BPE text tokens decoded (byte-level "Ġyou" shows as " you", a newline as ↵),
    /// added tokens by name; a token that is only part of a UTF-8 character keeps its byte-level form.
    /// </summary>
    public static string Display(StepAudioTokenizer tokenizer, int id)
    {
        string raw = tokenizer.IdToToken(id);
        if (id >= StepAudioTokenizer.EndOfText) return raw;
        string text = tokenizer.Decode([id]);
        return text.Contains('\uFFFD') ? raw : text.Replace("\n", "↵");
    }

    /// <summary>Builds the stream from the prompt and generated ids; <paramref name="alternatives"/> align with the generated ids.</summary>
    public static TokenStream Build(StepAudioTokenizer tokenizer, IReadOnlyList<int> promptIds, IReadOnlyList<int> generatedIds,
        IReadOnlyList<StepAlternatives>? alternatives = null)
    {
        var tokens = new List<TokenEntry>(promptIds.Count + generatedIds.Count);
        foreach (var id in promptIds) tokens.Add(new TokenEntry(id, Display(tokenizer, id), Classify(id), false, null));
        for (int i = 0; i < generatedIds.Count; i++)
            tokens.Add(new TokenEntry(generatedIds[i], Display(tokenizer, generatedIds[i]), Classify(generatedIds[i]), true,
                alternatives is not null && i < alternatives.Count ? alternatives[i] : null));
        var textIds = generatedIds.Where(i => i < StepAudioTokenizer.AudioStart && i != StepAudioTokenizer.Eot).ToArray();
        return new TokenStream(tokens, tokenizer.Decode(textIds));
    }
}

/// <summary>Renders a <see cref="TokenStream"/> as coloured spans; runs of &lt;audio_patch&gt; collapse into one chip.</summary>
public static class TokenStreamView
{
    public static string Render(TokenStream s, StepAudioTokenizer? tokenizer = null)
    {
        var sb = new StringBuilder("<div class=\"tokens\">");
        for (int i = 0; i < s.Tokens.Count; i++)
        {
            var t = s.Tokens[i];
            if (t.Class == TokenClass.AudioPatch)
            {
                int j = i;
                while (j + 1 < s.Tokens.Count && s.Tokens[j + 1].Class == TokenClass.AudioPatch && s.Tokens[j + 1].Generated == t.Generated) j++;
                sb.Append($"<span class=\"tok audio_patch\" data-id=\"{t.Id}\" data-count=\"{j - i + 1}\" title=\"{t.Id} × {j - i + 1}\">&lt;audio_patch&gt;×{j - i + 1}</span>");
                i = j;
                continue;
            }
            string cls = t.Class switch { TokenClass.Special => "special", TokenClass.SpeechCode => "speech", _ => "text" };
            string title = $"id {t.Id}";
            if (t.Alternatives is { } a)
                title += "\n" + string.Join("\n", a.Ids.Zip(a.Probabilities, (id, p) => $"{(tokenizer is null ? id.ToString(System.Globalization.CultureInfo.InvariantCulture) : tokenizer.IdToToken(id))} ({id}) p={Html.Num(p)}"));
            string shown = t.Class == TokenClass.SpeechCode ? $"s{t.Id - StepAudioTokenizer.AudioCodeBase}" : t.Token;
            sb.Append($"<span class=\"tok {cls}{(t.Generated ? " gen" : "")}\" data-id=\"{t.Id}\" title=\"{Html.Esc(title)}\">{Html.Esc(shown)}</span>");
        }
        sb.Append("</div>\n");
        sb.Append($"<p>prompt ids: <code class=\"prompt-ids\">{string.Join(" ", s.Tokens.Where(t => !t.Generated).Select(t => t.Id))}</code></p>\n");
        sb.Append($"<p>generated ids: <code class=\"generated-ids\">{string.Join(" ", s.Tokens.Where(t => t.Generated).Select(t => t.Id))}</code></p>\n");
        sb.Append($"<p>decoded text: <q class=\"generated-text\">{Html.Esc(s.GeneratedText)}</q></p>\n");
        var alts = s.Tokens.Where(t => t.Generated && t.Alternatives is not null).ToList();
        if (alts.Count > 0)
        {
            sb.Append("<table class=\"alts\"><tr><th>step</th><th>chosen</th><th>p</th><th>top alternatives</th></tr>");
            for (int i = 0; i < alts.Count; i++)
            {
                var a = alts[i].Alternatives!;
                var list = string.Join(", ", a.Ids.Zip(a.Probabilities, (id, p) => $"{Html.Esc(tokenizer?.IdToToken(id) ?? "")} ({id}) {Html.Num(p)}"));
                sb.Append($"<tr><td>{i}</td><td>{Html.Esc(alts[i].Token)} ({a.ChosenId})</td><td>{Html.Num(a.ChosenProbability)}</td><td>{list}</td></tr>");
            }
            sb.Append("</table>\n");
        }
        return sb.ToString();
    }
}
