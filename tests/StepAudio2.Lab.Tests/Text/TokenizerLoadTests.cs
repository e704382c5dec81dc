using System.Text;
using System.Text.Json.Nodes;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Text;
using static StepAudio2.Lab.Tests.Text.TokenizerFixtures;

namespace StepAudio2.Lab.Tests.Text;

/// <summary>Loading: added-token flags as HF honours them, and typed errors for missing or corrupt tokenizer files.</summary>
public sealed class TokenizerLoadTests
{
    [Fact]
    public void AddedTokenFlagsBehaveAsInHf()
    {
        // flags.jsonl: first line is the flag edits applied to the real config, then oracle ids under that config.
        var lines = File.ReadAllLines(Fixture("flags.jsonl"));
        var variant = JsonNode.Parse(lines[0])!["variant"]!.AsObject();
        using var dir = TestPaths.Temp();
        File.Copy(Path.Combine(TestPaths.SharedModel, "vocab.json"), dir.File("vocab.json"));
        File.Copy(Path.Combine(TestPaths.SharedModel, "merges.txt"), dir.File("merges.txt"));
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(TestPaths.SharedModel, "tokenizer_config.json")))!;
        var decoder = config["added_tokens_decoder"]!.AsObject();
        var edited = 0;
        foreach (var (_, entry) in decoder)
        {
            if (variant[(string)entry!["content"]!] is not JsonObject edits) continue;
            foreach (var (flag, value) in edits) entry[flag] = value!.GetValue<bool>();
            edited++;
        }
        Assert.Equal(variant.Count, edited);
        File.WriteAllText(dir.File("tokenizer_config.json"), config.ToJsonString());

        var t = StepAudioTokenizer.Load(dir.Path);
        Assert.True(t.GetAddedToken(StepAudioTokenizer.Bot)!.LStrip);
        Assert.False(t.IsSpecial(StepAudioTokenizer.Eot));
        var failures = new List<string>();
        foreach (var line in lines.Skip(1))
        {
            var e = JsonNode.Parse(line)!;
            var text = (string)e["text"]!;
            int[] expected = [.. e["ids"]!.AsArray().Select(x => (int)x!)];
            var ids = t.Encode(text);
            if (!ids.AsSpan().SequenceEqual(expected)) failures.Add($"{Show(text)}: expected [{string.Join(' ', expected)}], actual [{string.Join(' ', ids)}]");
        }
        Assert.True(lines.Length > 15);
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void TinyCheckpointEncodesWithItsOwnMerges()
    {
        using var dir = Tiny();
        var t = StepAudioTokenizer.Load(dir.Path);
        Assert.Equal(9, t.VocabSize);
        Assert.Equal([4, 8, 5], t.Encode("ab<x>a"));
        Assert.Equal([6], t.Encode(" ab"));
        Assert.Equal([2, 1], t.Encode("x>"));
        Assert.Equal("ab<x>a ab", t.Decode([4, 8, 5, 6]));
        Assert.True(t.IsSpecial(8));
        Assert.False(t.IsSpecial(4));
    }

    [Fact]
    public void MissingFilesNameTheFile()
    {
        foreach (var name in new[] { "vocab.json", "merges.txt", "tokenizer_config.json" })
        {
            using var dir = Tiny();
            File.Delete(dir.File(name));
            var e = Assert.Throws<ConfigException>(() => StepAudioTokenizer.Load(dir.Path));
            Assert.Equal(dir.File(name), e.FilePath);
            Assert.Contains("not found", e.Message);
        }
    }

    [Theory]
    [InlineData("vocab.json", "{\"a\": 0, \"b\": 1,", "not valid JSON")]
    [InlineData("vocab.json", "[1, 2]", "JSON object")]
    [InlineData("vocab.json", "{\"a\": 0, \"b\": \"one\"}", "non-negative integer")]
    [InlineData("vocab.json", "{\"a\": 0, \"b\": 5}", "contiguous")]
    [InlineData("vocab.json", "{\"a\": 0, \"b\": 0}", "two tokens")]
    [InlineData("vocab.json", "{}", "empty")]
    [InlineData("merges.txt", "#version: 0.2\na b\na b c\n", "line 3")]
    [InlineData("merges.txt", "#version: 0.2\na z\n", "not in vocab.json")]
    [InlineData("merges.txt", "#version: 0.2\n\n", "no merge rules")]
    [InlineData("tokenizer_config.json", "{\"added_tokens\": []}", "added_tokens_decoder")]
    [InlineData("tokenizer_config.json", "{\"added_tokens_decoder\": {\"7\": {\"content\": \"\"}}}", "content")]
    [InlineData("tokenizer_config.json", "{\"added_tokens_decoder\": {\"x\": {\"content\": \"<x>\"}}}", "token id")]
    [InlineData("tokenizer_config.json", "{\"added_tokens_decoder\": {\"7\": {\"content\": \"<x>\", \"special\": 1}}}", "true or false")]
    [InlineData("tokenizer_config.json", "{\"added_tokens_decoder\": {\"2\": {\"content\": \"<x>\"}}}", "already vocab.json's token")]
    [InlineData("tokenizer_config.json", "{\"added_tokens_decoder\": {\"7\": {\"content\": \"ab\"}}}", "has id 4")]
    public void CorruptFilesThrowConfigExceptionNamingTheFile(string name, string content, string fault)
    {
        using var dir = Tiny();
        File.WriteAllText(dir.File(name), content);
        var e = Assert.Throws<ConfigException>(() => StepAudioTokenizer.Load(dir.Path));
        Assert.Equal(dir.File(name), e.FilePath);
        Assert.Contains(fault, e.Message);
    }

    [Fact]
    public void InvalidUtf8MergesIsRejected()
    {
        using var dir = Tiny();
        File.WriteAllBytes(dir.File("merges.txt"), [(byte)'a', (byte)' ', 0xFF, (byte)'\n']);
        var e = Assert.Throws<ConfigException>(() => StepAudioTokenizer.Load(dir.Path));
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void LoadingLeavesTheFilesUntouched()
    {
        using var dir = Tiny();
        var before = Directory.GetFiles(dir.Path).ToDictionary(f => f, File.ReadAllBytes);
        var times = Directory.GetFiles(dir.Path).ToDictionary(f => f, File.GetLastWriteTimeUtc);
        StepAudioTokenizer.Load(dir.Path);
        foreach (var (f, bytes) in before)
        {
            Assert.Equal(bytes, File.ReadAllBytes(f));
            Assert.Equal(times[f], File.GetLastWriteTimeUtc(f));
        }
        Assert.Equal(before.Count, Directory.GetFiles(dir.Path).Length);
    }

    // Vocabulary < > x Ġ ab a Ġab b (ids 0..7), merges a+b and Ġ+ab, one added special token <x> = 8.
    private static TempDir Tiny()
    {
        var dir = TestPaths.Temp();
        File.WriteAllText(dir.File("vocab.json"),
            "{\"<\": 0, \">\": 1, \"x\": 2, \"Ġ\": 3, \"ab\": 4, \"a\": 5, \"Ġab\": 6, \"b\": 7}", new UTF8Encoding(false));
        File.WriteAllText(dir.File("merges.txt"), "#version: 0.2\na b\nĠ ab\n", new UTF8Encoding(false));
        File.WriteAllText(dir.File("tokenizer_config.json"),
            "{\"added_tokens_decoder\": {\"8\": {\"content\": \"<x>\", \"lstrip\": false, \"normalized\": false, \"rstrip\": false, \"single_word\": false, \"special\": true}}}");
        return dir;
    }

    private static string Fixture(string name) => TestPaths.Fixture("tokenizer", name);
}
