using System.Net;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>
/// The token stream view as a reader sees it: every token shown (chips, chosen column, top-k alternatives) reads as the
/// tokenizer decodes it, with its id; no byte-level BPE strings (<c>Ġseptember</c>) in one column only; no empty lines.
/// </summary>
public sealed class TokenStreamViewTests
{
    private static readonly Lazy<StepAudioTokenizer> Tok = new(() => StepAudioTokenizer.Load(TestPaths.SharedModel));

    /// <summary>What a reader must see for <paramref name="id"/>, from the tokenizer's own decoding (not from the view).</summary>
    internal static string Expected(StepAudioTokenizer tok, int id)
    {
        if (id >= StepAudioTokenizer.AudioCodeBase) return $"s{id - StepAudioTokenizer.AudioCodeBase}";
        if (id >= StepAudioTokenizer.EndOfText) return tok.IdToToken(id);
        string text = tok.Decode([id]);
        return text.Contains('\uFFFD') ? tok.IdToToken(id) : text.Replace("\n", "↵");
    }

    /// <summary>Every (id, shown text) of the alternatives table: chosen and alternative cells.</summary>
    internal static List<(int Id, string Text)> TableTokens(string html) =>
        Regex.Matches(html, "<span class=\"(?:alt|chosen)\" data-id=\"(\\d+)\"><q>(.*?)</q> \\((\\d+)\\)")
            .Select(m =>
            {
                Assert.Equal(m.Groups[1].Value, m.Groups[3].Value); // the id printed next to the text is the token's id
                return (int.Parse(m.Groups[1].Value), WebUtility.HtmlDecode(m.Groups[2].Value));
            }).ToList();

    [Fact]
    public void AlternativesAreDecodedLikeTheChosenTokenWithTheirIds()
    {
        var tok = Tok.Value;
        int september = tok.Encode(" september").Single();
        Assert.StartsWith("Ġ", tok.IdToToken(september)); // the raw byte-level form the view must not show
        int newline = tok.Encode("\n").Single();
        int you = tok.Encode(" you").Single();
        int code = StepAudioTokenizer.AudioCodeBase + 17;
        int[] alternatives = [september, newline, StepAudioTokenizer.Eot, code, 126537 /* part of a UTF-8 character */];
        var step = new StepAlternatives(you, 0.5f, alternatives, [0.2f, 0.1f, 0.1f, 0.05f, 0.05f]);
        var stream = TokenStream.Build(tok, tok.Encode("Hi"), [you], [step]);

        Assert.Equal(alternatives.Select(id => Expected(tok, id)), stream.Tokens[^1].AlternativeTokens);
        foreach (var html in new[] { TokenStreamView.Render(stream), TokenStreamView.Render(stream, tok) })
        {
            var shown = TableTokens(html);
            Assert.Equal([you, .. alternatives], shown.Select(s => s.Id));
            foreach (var (id, text) in shown) Assert.Equal(Expected(tok, id), text);
            Assert.Contains("<q> september</q> (" + september + ")", html);
            Assert.DoesNotContain("Ġseptember", html);
            // the chips' hover titles list the same decoded alternatives
            Assert.Contains(WebUtility.HtmlEncode($"\n september ({september}) p="), html.Replace("&#10;", "\n"));
        }
        // a stream built elsewhere (no decoded alternatives) still decodes them when the renderer has the tokenizer
        var bare = new TokenStream([new TokenEntry(you, " you", TokenClass.Text, true, step)], " you");
        foreach (var (id, text) in TableTokens(TokenStreamView.Render(bare, tok))) Assert.Equal(Expected(tok, id), text);
    }

    [Fact]
    public void EveryChipShowsTheDecodedToken()
    {
        var tok = Tok.Value;
        var prompt = tok.Encode("<|BOT|>system\nYou are a helpful assistant. 今天天气很好<|EOT|>");
        int[] generated = [.. tok.Encode("Hello, world"), StepAudioTokenizer.AudioCodeBase + 3, StepAudioTokenizer.Eot];
        var html = TokenStreamView.Render(TokenStream.Build(tok, prompt, generated));
        var chips = Regex.Matches(html, "<span class=\"tok (?:text|special|speech)[^\"]*\" data-id=\"(\\d+)\" title=\"[^\"]*\">(.*?)</span>")
            .Select(m => (Id: int.Parse(m.Groups[1].Value), Text: WebUtility.HtmlDecode(m.Groups[2].Value))).ToList();
        Assert.Equal([.. prompt, .. generated], chips.Select(c => c.Id));
        foreach (var (id, text) in chips) Assert.Equal(Expected(tok, id), text);
    }

    [Fact]
    public void APromptOnlyStreamPrintsNoEmptyLines()
    {
        var tok = Tok.Value;
        var html = TokenStreamView.Render(TokenStream.Build(tok, tok.Encode("Hi"), []));
        Assert.Contains("prompt ids:", html);
        Assert.DoesNotContain("generated ids:", html);
        Assert.DoesNotContain("decoded text:", html);
        var empty = TokenStreamView.Render(TokenStream.Build(tok, [], [StepAudioTokenizer.AudioCodeBase]));
        Assert.DoesNotContain("prompt ids:", empty);
        Assert.Contains("generated ids: <code class=\"generated-ids\">" + StepAudioTokenizer.AudioCodeBase + "</code>", empty);
        Assert.DoesNotContain("decoded text:", empty); // speech codes only: no text
    }
}
