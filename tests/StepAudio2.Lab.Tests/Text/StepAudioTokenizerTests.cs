using System.Text;
using StepAudio2.Lab.Text;
using Xunit.Abstractions;
using static StepAudio2.Lab.Tests.Text.TokenizerFixtures;

namespace StepAudio2.Lab.Tests.Text;

/// <summary>The real Step-Audio 2 mini tokenizer against ids and texts produced by HF tokenizers (the oracle).</summary>
public sealed class StepAudioTokenizerTests(ITestOutputHelper output)
{
    private static StepAudioTokenizer T => Tokenizer;

    [Fact]
    public void LoadsTheRealCheckpointFiles()
    {
        output.WriteLine($"load time {LoadTime.TotalMilliseconds:F0} ms");
        Assert.Equal(158_352, T.VocabSize);
        Assert.Equal(6_709, T.AddedTokens.Count);
        Assert.Equal(151_643, T.AddedTokens[0].Id);
        Assert.Equal(158_351, T.AddedTokens[^1].Id);
        Assert.Equal(45, T.AddedTokens.Count(a => a.Special));
        Assert.True(LoadTime < TimeSpan.FromSeconds(10), $"loading took {LoadTime}");
    }

    [Fact]
    public void EveryFixtureStringEncodesToTheOracleIds()
    {
        Assert.True(Encode.Count >= 1000, $"only {Encode.Count} cases");
        var failures = new List<string>();
        foreach (var c in Encode)
        {
            var ids = T.Encode(c.Text);
            if (!ids.AsSpan().SequenceEqual(c.Ids))
                failures.Add($"{Show(c.Text)}\n    expected [{string.Join(' ', c.Ids)}]\n    actual   [{string.Join(' ', ids)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {Encode.Count} mismatches:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void DecodeOfEncodeIsTheNfcText()
    {
        var failures = new List<string>();
        var exceptions = 0;
        foreach (var c in Encode)
        {
            var back = T.Decode(T.Encode(c.Text));
            if (back != c.RoundTrip) failures.Add($"{Show(c.Text)} -> {Show(back)}, HF round trip {Show(c.RoundTrip)}");
            // decode(encode(s)) == NFC(s), except where HF itself keeps an added token from composing with a following mark.
            if (c.RoundTrip != c.Nfc) exceptions++;
            else if (back != c.Nfc) failures.Add($"{Show(c.Text)} -> {Show(back)}, NFC {Show(c.Nfc)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
        Assert.InRange(exceptions, 0, 5);
    }

    [Fact]
    public void DecodeCasesEqualTheOracle()
    {
        Assert.Contains(Decode, c => c.Text.Contains('\uFFFD'));
        var failures = new List<string>();
        foreach (var c in Decode)
        {
            var text = T.Decode(c.Ids);
            if (text != c.Text) failures.Add($"[{string.Join(' ', c.Ids)}]\n    expected {Show(c.Text)}\n    actual   {Show(text)}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {Decode.Count} mismatches:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void NfcEqualsHfNormalizer()
    {
        Assert.True(Nfc.Count > 4000);
        var failures = Nfc.Where(c => UnicodeTables.Nfc(c.Text) != c.Nfc)
            .Select(c => $"{Show(c.Text)}: expected {Show(c.Nfc)}, actual {Show(UnicodeTables.Nfc(c.Text))}").ToList();
        Assert.True(failures.Count == 0, $"{failures.Count} mismatches:\n" + string.Join("\n", failures));
    }

    [Fact]
    public void EveryAddedTokenStringIsOneId()
    {
        foreach (var a in T.AddedTokens)
        {
            Assert.Equal([a.Id], T.Encode(a.Content));
            Assert.Equal(a.Content, T.Decode([a.Id]));
            Assert.Equal(a.Content, T.IdToToken(a.Id));
            Assert.Equal(a.Id, T.TokenToId(a.Content));
        }
    }

    [Theory]
    [InlineData("\n", 198)]
    [InlineData("system", 8948)]
    [InlineData("human", 25312)]
    [InlineData("assistant", 77091)]
    [InlineData("<", 27)]
    [InlineData(">", 29)]
    [InlineData("</", 522)]
    [InlineData("think", 26865)]
    public void SpecUsefulIds(string text, int id) => Assert.Equal([id], T.Encode(text));

    [Fact]
    public void SpecChatPrefixIsOneSegment()
    {
        Assert.Equal([151666, 8948, 198, 2610, 525, 264, 10950, 17847, 13, 151665],
            T.Encode("<|BOT|>system\nYou are a helpful assistant.<|EOT|>"));
        Assert.Equal([522, 26865, 29], T.Encode("</think>"));
        Assert.Equal([StepAudioTokenizer.Bot, 77091, StepAudioTokenizer.Newline, StepAudioTokenizer.TtsStart],
            T.Encode("<|BOT|>assistant\n<tts_start>"));
    }

    [Fact]
    public void NamedIdsMatchTheirTokens()
    {
        (int Id, string Text, bool Special)[] expected =
        [
            (StepAudioTokenizer.EndOfText, "<|endoftext|>", true), (StepAudioTokenizer.Eot, "<|EOT|>", true),
            (StepAudioTokenizer.Bot, "<|BOT|>", true), (StepAudioTokenizer.AudioStart, "<audio_start>", true),
            (StepAudioTokenizer.AudioEnd, "<audio_end>", true), (StepAudioTokenizer.AudioPatch, "<audio_patch>", true),
            (StepAudioTokenizer.TtsStart, "<tts_start>", true), (StepAudioTokenizer.TtsEnd, "<tts_end>", true),
            (StepAudioTokenizer.TtsPad, "<tts_pad>", true), (StepAudioTokenizer.AudioCodeBase, "<audio_0>", false),
            (StepAudioTokenizer.AudioPad, "<audio_6561>", false), (StepAudioTokenizer.ToolCallStart, "<tool_call>", false),
            (StepAudioTokenizer.ToolCallEnd, "</tool_call>", false), (StepAudioTokenizer.ThinkStart, "<|THINK_START|>", true),
        ];
        foreach (var (id, text, special) in expected)
        {
            Assert.Equal(text, T.IdToToken(id));
            Assert.Equal(special, T.IsSpecial(id));
        }
        Assert.Equal(158_257, StepAudioTokenizer.AudioPad);
        Assert.True(StepAudioTokenizer.IsAudioCode(151_696) && StepAudioTokenizer.IsAudioCode(158_351));
        Assert.False(StepAudioTokenizer.IsAudioCode(151_695) || StepAudioTokenizer.IsAudioCode(158_352));
        Assert.False(T.IsSpecial(198) || T.IsSpecial(-1) || T.IsSpecial(200_000));
        Assert.Equal("Ġhello", T.IdToToken(T.TokenToId("Ġhello")!.Value));
        Assert.Null(T.TokenToId("<audio_6656>"));
        Assert.Throws<ArgumentOutOfRangeException>(() => T.IdToToken(158_352));
        Assert.Throws<ArgumentOutOfRangeException>(() => T.IdToToken(-1));
    }

    [Fact]
    public void DecodeSkipsIdsOutsideTheVocabularyAsHfDoes()
    {
        // The LLM's embedding has 158 720 rows; ids past the tokenizer's 158 352 decode to nothing.
        Assert.Equal("ab", T.Decode([64, 158_400, -5, 65]));
    }

    [Fact]
    public void LoneSurrogatesEncodeAsReplacementCharacter()
    {
        Assert.Equal(T.Encode("a\uFFFDb"), T.Encode("a\uD800b"));
        Assert.Equal(T.Encode("\uFFFD"), T.Encode("\uDC00"));
    }

    [Fact]
    public void IncrementalDecoderMatchesDecodeAtEveryByteBoundary()
    {
        const string text = "语音模型😀👨‍👩‍👧 ok 中文！🇨🇳é";
        var bytes = Encoding.UTF8.GetBytes(text);
        // One byte token per UTF-8 byte: every byte boundary is a token boundary.
        var byteIds = bytes.Select(b => T.TokenToId(ByteLevelChar(b).ToString())!.Value).ToArray();
        Assert.Equal(text, T.Decode(byteIds));
        foreach (var ids in new[] { byteIds, T.Encode(text) })
        {
            var dec = T.CreateIncrementalDecoder();
            var sb = new StringBuilder();
            var decodedPrefix = 0;
            for (var i = 0; i < ids.Length; i++)
            {
                var piece = dec.Push(ids[i]);
                Assert.DoesNotContain('\uFFFD', piece);
                sb.Append(piece);
                // What came out so far is exactly the complete characters of the prefix.
                var prefix = T.Decode(ids.AsSpan(0, i + 1)).TrimEnd('\uFFFD');
                Assert.Equal(prefix, sb.ToString());
                decodedPrefix = sb.Length;
            }
            sb.Append(dec.Flush());
            Assert.Equal(text, sb.ToString());
            Assert.Equal(text.Length, decodedPrefix);
        }
    }

    [Fact]
    public void IncrementalDecoderReplacesInvalidBytesLikeDecode()
    {
        foreach (var c in Decode)
        {
            var dec = T.CreateIncrementalDecoder();
            var sb = new StringBuilder();
            foreach (var id in c.Ids) sb.Append(dec.Push(id));
            sb.Append(dec.Flush());
            Assert.Equal(c.Text, sb.ToString());
        }
    }

    [Fact]
    public void EncodingIsFastEnoughForLongText()
    {
        var cases = Encode.Where(c => c.RoundTrip == c.Nfc).Take(400).ToList();
        var text = string.Concat(Enumerable.Repeat(string.Concat(cases.Select(c => c.Text)), 4));
        var nfc = string.Concat(Enumerable.Repeat(string.Concat(cases.Select(c => c.Nfc)), 4));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var ids = T.Encode(text);
        sw.Stop();
        output.WriteLine($"{text.Length} chars -> {ids.Length} ids in {sw.ElapsedMilliseconds} ms");
        Assert.Equal(nfc, T.Decode(ids));
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
    }

    private static char ByteLevelChar(byte b)
    {
        var printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE;
        if (printable) return (char)b;
        var n = 0;
        for (var x = 0; x < b; x++) if (!(x is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF)) n++;
        return (char)(256 + n);
    }
}
