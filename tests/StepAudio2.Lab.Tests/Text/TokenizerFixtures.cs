using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Tests.Text;

/// <summary>The real tokenizer (loaded once) and the oracle fixtures written by reference-data/tokenizer/make_tokenizer_fixtures.js.</summary>
internal static class TokenizerFixtures
{
    private static readonly Lazy<(StepAudioTokenizer Tokenizer, TimeSpan LoadTime)> Loaded = new(() =>
    {
        var sw = Stopwatch.StartNew();
        var t = StepAudioTokenizer.Load(TestPaths.SharedModel);
        return (t, sw.Elapsed);
    });

    public static StepAudioTokenizer Tokenizer => Loaded.Value.Tokenizer;
    public static TimeSpan LoadTime => Loaded.Value.LoadTime;

    public sealed record EncodeCase(string Text, int[] Ids, string Nfc, string RoundTrip);
    public sealed record DecodeCase(int[] Ids, string Text);
    public sealed record NfcCase(string Text, string Nfc);

    public static IReadOnlyList<EncodeCase> Encode { get; } = ReadLines("encode.jsonl", e => new EncodeCase(Str(e, "text"), Ints(e, "ids"), Str(e, "nfc"), Str(e, "roundtrip")));
    public static IReadOnlyList<DecodeCase> Decode { get; } = ReadLines("decode.jsonl", e => new DecodeCase(Ints(e, "ids"), Str(e, "text")));
    public static IReadOnlyList<NfcCase> Nfc { get; } = ReadLines("nfc.jsonl", e => new NfcCase(Str(e, "text"), Str(e, "nfc")));

    public static List<T> ReadLines<T>(string name, Func<JsonElement, T> map)
    {
        var list = new List<T>();
        foreach (var line in File.ReadLines(TestPaths.Fixture("tokenizer", name)))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            list.Add(map(doc.RootElement));
        }
        return list;
    }

    public static string Str(JsonElement e, string name) => e.GetProperty(name).GetString()!;
    public static int[] Ints(JsonElement e, string name) => [.. e.GetProperty(name).EnumerateArray().Select(x => x.GetInt32())];

    /// <summary>A printable form of a string: non-ASCII and control characters as \uXXXX / \U{X}.</summary>
    public static string Show(string s)
    {
        var sb = new System.Text.StringBuilder();
        foreach (var r in s.EnumerateRunes())
            sb.Append(r.Value is >= 0x20 and < 0x7F ? ((char)r.Value).ToString() : r.IsBmp ? $"\\u{r.Value:X4}" : $"\\U{{{r.Value:X}}}");
        return sb.ToString();
    }
}
