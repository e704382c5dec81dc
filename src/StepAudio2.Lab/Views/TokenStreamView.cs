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

/// <summary>
/// One token of the stream: id, its display text (<see cref="TokenStream.Display"/>), class, whether generated, the step's
/// alternatives and the text shown for each (same order as <see cref="StepAlternatives.Ids"/>, decoded the same way as the
/// chosen token, speech codes as <c>sN</c>, so that a reader never meets raw byte-level BPE strings such as
/// <c>Ġseptember</c> in one column only).
/// </summary>
public sealed record TokenEntry(int Id, string Token, TokenClass Class, bool Generated, StepAlternatives? Alternatives,
    IReadOnlyList<string>? AlternativeTokens = null)
{
    /// <summary>What a view prints for this token: speech codes as <c>sN</c>, everything else as <see cref="Token"/>.</summary>
    public string Shown => TokenStream.Shown(Id, Token);
}

/// <summary>Prompt plus generated ids with their decoded text.</summary>
public sealed record TokenStream(IReadOnlyList<TokenEntry> Tokens, string GeneratedText)
{
    /// <summary>Classifies an id by the Step-Audio 2 ranges (docs/model.md §6.4).</summary>
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

    /// <summary>A speech code (id ≥ <see cref="StepAudioTokenizer.AudioCodeBase"/>) as <c>sN</c>; any other token as its display text.</summary>
    public static string Shown(int id, string display) =>
        Classify(id) == TokenClass.SpeechCode ? $"s{id - StepAudioTokenizer.AudioCodeBase}" : display;

    /// <summary>Builds the stream from the prompt and generated ids; <paramref name="alternatives"/> align with the generated ids.</summary>
    public static TokenStream Build(StepAudioTokenizer tokenizer, IReadOnlyList<int> promptIds, IReadOnlyList<int> generatedIds,
        IReadOnlyList<StepAlternatives>? alternatives = null)
    {
        var tokens = new List<TokenEntry>(promptIds.Count + generatedIds.Count);
        foreach (var id in promptIds) tokens.Add(new TokenEntry(id, Display(tokenizer, id), Classify(id), false, null));
        for (int i = 0; i < generatedIds.Count; i++)
        {
            var alt = alternatives is not null && i < alternatives.Count ? alternatives[i] : null;
            tokens.Add(new TokenEntry(generatedIds[i], Display(tokenizer, generatedIds[i]), Classify(generatedIds[i]), true, alt,
                alt?.Ids.Select(id => Shown(id, Display(tokenizer, id))).ToArray()));
        }
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
                title += "\n" + string.Join("\n", a.Ids.Select((id, k) => $"{AlternativeText(t, k, tokenizer)} ({id}) p={Html.Num(a.Probabilities[k])}"));
            sb.Append($"<span class=\"tok {cls}{(t.Generated ? " gen" : "")}\" data-id=\"{t.Id}\" title=\"{Html.Esc(title)}\">{Html.Esc(t.Shown)}</span>");
        }
        sb.Append("</div>\n");
        // Lines with nothing to show are left out (a prompt-only stream has no generated ids and no decoded text).
        var promptIds = s.Tokens.Where(t => !t.Generated).Select(t => t.Id).ToList();
        var generatedIds = s.Tokens.Where(t => t.Generated).Select(t => t.Id).ToList();
        if (promptIds.Count > 0) sb.Append($"<p>prompt ids: <code class=\"prompt-ids\">{string.Join(" ", promptIds)}</code></p>\n");
        if (generatedIds.Count > 0) sb.Append($"<p>generated ids: <code class=\"generated-ids\">{string.Join(" ", generatedIds)}</code></p>\n");
        if (s.GeneratedText.Length > 0) sb.Append($"<p>decoded text: <q class=\"generated-text\">{Html.Esc(s.GeneratedText)}</q></p>\n");
        var alts = s.Tokens.Where(t => t.Generated && t.Alternatives is not null).ToList();
        if (alts.Count > 0)
        {
            sb.Append("<table class=\"alts\"><tr><th>step</th><th>chosen</th><th>p</th><th>top alternatives</th></tr>");
            for (int i = 0; i < alts.Count; i++)
            {
                var a = alts[i].Alternatives!;
                var list = string.Join(", ", a.Ids.Select((id, k) =>
                    $"<span class=\"alt\" data-id=\"{id}\"><q>{Html.Esc(AlternativeText(alts[i], k, tokenizer))}</q> ({id}) {Html.Num(a.Probabilities[k])}</span>"));
                sb.Append($"<tr><td>{i}</td><td><span class=\"chosen\" data-id=\"{a.ChosenId}\"><q>{Html.Esc(alts[i].Shown)}</q> ({a.ChosenId})</span></td><td>{Html.Num(a.ChosenProbability)}</td><td>{list}</td></tr>");
            }
            sb.Append("</table>\n");
        }
        return sb.ToString();
    }

    /// <summary>
    /// The k-th alternative of a step, decoded like the chosen token: from the stream (built with a tokenizer), else from
    /// <paramref name="tokenizer"/>, else its id alone.
    /// </summary>
    private static string AlternativeText(TokenEntry t, int k, StepAudioTokenizer? tokenizer)
    {
        int id = t.Alternatives!.Ids[k];
        if (t.AlternativeTokens is { } names && k < names.Count) return names[k];
        return tokenizer is null ? $"#{id}" : TokenStream.Shown(id, TokenStream.Display(tokenizer, id));
    }
}
