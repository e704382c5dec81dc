using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Text;

/// <summary>
/// The Step-Audio 2 mini tokenizer (docs/model.md §6.1): Qwen2 byte-level BPE from vocab.json + merges.txt plus the 6 709 added
/// tokens of tokenizer_config.json, with the ids Hugging Face's <c>Qwen2TokenizerFast</c> produces.
/// </summary>
/// <remarks>
/// Encoding follows HF tokenizers step by step: added tokens whose <c>normalized</c> flag is false (all special tokens,
/// <c>&lt;tool_call&gt;</c>…) are cut out of the raw text first; each remaining piece is NFC-normalised and the normalised
/// added tokens (<c>&lt;audio_N&gt;</c>) are cut out of it; what remains goes through the Qwen2 pre-tokeniser and byte-level
/// BPE (Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>). The BpeTokenizer's own special-token handling is not used
/// because it cannot express the two passes: e.g. <c>"&lt;|EOT|&gt;\u0338"</c> is <c>&lt;|EOT|&gt;</c> + U+0338 for HF, while
/// normalising first turns <c>&gt;\u0338</c> into <c>≯</c> and loses the token.
/// </remarks>
public sealed class StepAudioTokenizer
{
    /// <summary><c>&lt;|endoftext|&gt;</c>: the pad token.</summary>
    public const int EndOfText = 151643;
    /// <summary><c>&lt;|im_start|&gt;</c> (Qwen ChatML; unused by the official runner).</summary>
    public const int ImStart = 151644;
    /// <summary><c>&lt;|im_end|&gt;</c> (Qwen ChatML; unused by the official runner).</summary>
    public const int ImEnd = 151645;
    /// <summary><c>&lt;tool_call&gt;</c> (not special).</summary>
    public const int ToolCallStart = 151657;
    /// <summary><c>&lt;/tool_call&gt;</c> (not special).</summary>
    public const int ToolCallEnd = 151658;
    /// <summary><c>&lt;|EOT|&gt;</c>: end of turn, the stop token.</summary>
    public const int Eot = 151665;
    /// <summary><c>&lt;|BOT|&gt;</c>: begin of turn.</summary>
    public const int Bot = 151666;
    /// <summary><c>&lt;|THINK_START|&gt;</c> (unused by the official examples).</summary>
    public const int ThinkStart = 151669;
    /// <summary><c>&lt;|THINK_END|&gt;</c> (unused by the official examples).</summary>
    public const int ThinkEnd = 151670;
    /// <summary><c>&lt;audio_start&gt;</c>: start of an audio input block.</summary>
    public const int AudioStart = 151688;
    /// <summary><c>&lt;audio_end&gt;</c>: end of an audio input block.</summary>
    public const int AudioEnd = 151689;
    /// <summary><c>&lt;audio_patch&gt;</c>: placeholder replaced by one audio embedding.</summary>
    public const int AudioPatch = 151690;
    /// <summary><c>&lt;audio_patch_pad&gt;</c> (unused).</summary>
    public const int AudioPatchPad = 151691;
    /// <summary><c>&lt;tts_start&gt;</c>: requests / begins speech output.</summary>
    public const int TtsStart = 151693;
    /// <summary><c>&lt;tts_end&gt;</c>: end of the speech section.</summary>
    public const int TtsEnd = 151694;
    /// <summary><c>&lt;tts_pad&gt;</c>: text-slot padding inside a speech section.</summary>
    public const int TtsPad = 151695;
    /// <summary><c>&lt;audio_0&gt;</c>: speech code c has id AudioCodeBase + c.</summary>
    public const int AudioCodeBase = 151696;
    /// <summary>Number of <c>&lt;audio_N&gt;</c> tokens (codes 0..6655).</summary>
    public const int AudioCodeCount = 6656;
    /// <summary>Codes 0..6560 (3⁸) are valid flow inputs.</summary>
    public const int ValidAudioCodeCount = 6561;
    /// <summary><c>&lt;audio_6561&gt;</c>: speech-slot padding.</summary>
    public const int AudioPad = AudioCodeBase + 6561;
    /// <summary><c>"\n"</c>.</summary>
    public const int Newline = 198;

    private const long MaxFileBytes = 256L << 20;

    private static readonly (int Id, string Content)[] ExpectedIds =
    [
        (EndOfText, "<|endoftext|>"), (ImStart, "<|im_start|>"), (ImEnd, "<|im_end|>"), (ToolCallStart, "<tool_call>"),
        (ToolCallEnd, "</tool_call>"), (Eot, "<|EOT|>"), (Bot, "<|BOT|>"), (ThinkStart, "<|THINK_START|>"),
        (ThinkEnd, "<|THINK_END|>"), (AudioStart, "<audio_start>"), (AudioEnd, "<audio_end>"), (AudioPatch, "<audio_patch>"),
        (AudioPatchPad, "<audio_patch_pad>"), (TtsStart, "<tts_start>"), (TtsEnd, "<tts_end>"), (TtsPad, "<tts_pad>"),
        (AudioCodeBase, "<audio_0>"), (AudioPad, "<audio_6561>"), (AudioCodeBase + AudioCodeCount - 1, "<audio_6655>"),
    ];

    private static readonly UTF8Encoding Utf8Replace = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    private readonly BpeTokenizer _bpe;
    private readonly AddedTokenMatcher _rawTokens;        // normalized = false: matched in the raw text
    private readonly AddedTokenMatcher _normalizedTokens; // normalized = true: matched in the NFC text
    private readonly Dictionary<string, int> _tokenToId;
    private readonly string?[] _idToToken;
    private readonly AddedToken?[] _added;
    private readonly byte[] _bytes;    // concatenated decoded bytes of every id
    private readonly int[] _byteStart; // id → start in _bytes; _byteStart[id + 1] is its end

    private StepAudioTokenizer(Dictionary<string, int> vocab, List<string> merges, IReadOnlyList<AddedToken> added)
    {
        _bpe = BpeTokenizer.Create(new BpeOptions(vocab)
        {
            Merges = merges,
            PreTokenizer = Qwen2PreTokenizer.Instance,
            Normalizer = NfcNormalizer.Instance,
            ByteLevel = true,
        });
        _rawTokens = new AddedTokenMatcher(added.Where(a => !a.Normalized));
        // HF matches normalised tokens by their own NFC form.
        _normalizedTokens = new AddedTokenMatcher(added.Where(a => a.Normalized).Select(a => a with { Content = UnicodeTables.Nfc(a.Content) }));

        var size = Math.Max(vocab.Values.Max(), added.Count == 0 ? 0 : added.Max(a => a.Id)) + 1;
        _idToToken = new string?[size];
        _added = new AddedToken?[size];
        _tokenToId = new Dictionary<string, int>(vocab, StringComparer.Ordinal);
        foreach (var (token, id) in vocab) _idToToken[id] = token;
        foreach (var a in added)
        {
            _idToToken[a.Id] = a.Content;
            _added[a.Id] = a;
            _tokenToId[a.Content] = a.Id;
        }
        VocabSize = size;
        AddedTokens = [.. added];

        var blob = new List<byte>(size * 6);
        _byteStart = new int[size + 1];
        for (var id = 0; id < size; id++)
        {
            _byteStart[id] = blob.Count;
            var token = _idToToken[id];
            if (token is null) continue;
            // Added tokens are decoded through the ByteLevel decoder too in HF; for ASCII text that is their UTF-8.
            blob.AddRange(ByteLevel.TokenBytes(token));
        }
        _byteStart[size] = blob.Count;
        _bytes = [.. blob];
    }

    /// <summary>Number of ids (vocab.json entries plus added tokens): 158 352 for Step-Audio 2 mini.</summary>
    public int VocabSize { get; }

    /// <summary>The added tokens, in id order.</summary>
    public IReadOnlyList<AddedToken> AddedTokens { get; }

    /// <summary>Loads vocab.json, merges.txt and tokenizer_config.json from a checkpoint folder (read-only).</summary>
    /// <exception cref="ConfigException">A file is missing, malformed or inconsistent (the message names the file and place).</exception>
    public static StepAudioTokenizer Load(string checkpointFolder)
    {
        ArgumentNullException.ThrowIfNull(checkpointFolder);
        var vocabPath = Path.Combine(checkpointFolder, "vocab.json");
        var mergesPath = Path.Combine(checkpointFolder, "merges.txt");
        var configPath = Path.Combine(checkpointFolder, "tokenizer_config.json");

        var vocab = ReadVocab(vocabPath);
        var merges = ReadMerges(mergesPath, vocab);
        var added = ReadAddedTokens(configPath, vocab);
        foreach (var (id, content) in ExpectedIds)
        {
            // Only checked when the checkpoint has this many ids: a smaller test vocabulary may legitimately lack them.
            var a = added.FirstOrDefault(t => t.Id == id);
            if (a is not null && a.Content != content)
                throw new ConfigException(configPath, $"id {id} is '{a.Content}', expected '{content}' (Step-Audio 2 token layout)", $"added_tokens_decoder.{id}");
        }
        return new StepAudioTokenizer(vocab, merges, added);
    }

    /// <summary>Token ids of <paramref name="text"/> (no BOS; added tokens are recognised). Lone surrogates become U+FFFD.</summary>
    public int[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        text = ReplaceLoneSurrogates(text);
        var ids = new List<int>(text.Length / 3 + 4);
        foreach (var raw in _rawTokens.Split(text))
        {
            if (raw.Token is not null) { ids.Add(raw.Token.Id); continue; }
            var normalized = UnicodeTables.Nfc(text.AsSpan(raw.Start, raw.Length));
            foreach (var piece in _normalizedTokens.Split(normalized))
            {
                if (piece.Token is not null) ids.Add(piece.Token.Id);
                else if (piece.Length > 0)
                    ids.AddRange(_bpe.EncodeToIds(normalized.AsSpan(piece.Start, piece.Length), considerPreTokenization: true, considerNormalization: false));
            }
        }
        return [.. ids];
    }

    /// <summary>
    /// Token ids of <paramref name="text"/> as plain text: no added token (special or not) is recognised, so
    /// <c>&lt;|EOT|&gt;</c> becomes the ids of its characters (HF's <c>split_special_tokens=True</c> for all added
    /// tokens). Equal to <see cref="Encode"/> for text that holds no added-token string.
    /// </summary>
    public int[] EncodePlain(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var normalized = UnicodeTables.Nfc(ReplaceLoneSurrogates(text).AsSpan());
        return normalized.Length == 0 ? [] : [.. _bpe.EncodeToIds(normalized.AsSpan(), considerPreTokenization: true, considerNormalization: false)];
    }

    /// <summary>
    /// Text of <paramref name="ids"/> as HF decodes it with skip_special_tokens=False: bytes of all tokens joined, invalid
    /// UTF-8 replaced by U+FFFD (maximal subparts, as Rust's from_utf8_lossy), no space clean-up. Ids outside the
    /// vocabulary (the model's padded embedding rows 158 352..) are skipped, as HF does.
    /// </summary>
    public string Decode(ReadOnlySpan<int> ids)
    {
        var total = 0;
        foreach (var id in ids) total += TokenBytes(id).Length;
        var buffer = total <= 1024 ? stackalloc byte[total] : new byte[total];
        var at = 0;
        foreach (var id in ids)
        {
            var b = TokenBytes(id);
            b.CopyTo(buffer[at..]);
            at += b.Length;
        }
        return Utf8Replace.GetString(buffer);
    }

    /// <summary>A new streaming decoder over this tokenizer.</summary>
    public IncrementalDecoder CreateIncrementalDecoder() => new(this);

    /// <summary>The token string of <paramref name="id"/> (byte-level form, e.g. "Ġhello", or the added token's text).</summary>
    /// <exception cref="ArgumentOutOfRangeException">The id is not in the vocabulary.</exception>
    public string IdToToken(int id) =>
        (uint)id < (uint)_idToToken.Length && _idToToken[id] is { } t ? t
            : throw new ArgumentOutOfRangeException(nameof(id), id, $"not a token id (vocabulary has {VocabSize} ids)");

    /// <summary>The id of a token string (byte-level form or added-token text), or null.</summary>
    public int? TokenToId(string token) => _tokenToId.TryGetValue(token, out var id) ? id : null;

    /// <summary>True for speech-code tokens <c>&lt;audio_0&gt;</c>..<c>&lt;audio_6655&gt;</c>.</summary>
    public static bool IsAudioCode(int id) => id >= AudioCodeBase && id < AudioCodeBase + AudioCodeCount;

    /// <summary>True for added tokens flagged special in tokenizer_config.json (not <c>&lt;tool_call&gt;</c> or audio codes).</summary>
    public bool IsSpecial(int id) => (uint)id < (uint)_added.Length && _added[id] is { Special: true };

    /// <summary>The added token with this id, or null for BPE vocabulary ids.</summary>
    public AddedToken? GetAddedToken(int id) => (uint)id < (uint)_added.Length ? _added[id] : null;

    internal ReadOnlySpan<byte> TokenBytes(int id) =>
        (uint)id < (uint)VocabSize ? _bytes.AsSpan(_byteStart[id], _byteStart[id + 1] - _byteStart[id]) : default;

    private static string ReplaceLoneSurrogates(string text)
    {
        var i = 0;
        for (; i < text.Length; i++)
        {
            if (!char.IsSurrogate(text[i])) continue;
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1])) { i++; continue; }
            break;
        }
        if (i >= text.Length) return text;
        var sb = new StringBuilder(text.Length);
        for (var k = 0; k < text.Length; k++)
        {
            var c = text[k];
            if (char.IsHighSurrogate(c) && k + 1 < text.Length && char.IsLowSurrogate(text[k + 1])) { sb.Append(c).Append(text[++k]); }
            else sb.Append(char.IsSurrogate(c) ? '\uFFFD' : c);
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Loading

    private static byte[] ReadFile(string path)
    {
        FileInfo info = new(path);
        if (!info.Exists) throw new ConfigException(path, "file not found");
        if (info.Length > MaxFileBytes) throw new ConfigException(path, $"file is {info.Length} bytes, more than the {MaxFileBytes} a tokenizer file may have");
        try
        {
            using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            var bytes = new byte[fs.Length];
            fs.ReadExactly(bytes);
            return bytes;
        }
        catch (IOException e) { throw new ConfigException(path, "cannot be read: " + e.Message, inner: e); }
        catch (UnauthorizedAccessException e) { throw new ConfigException(path, "cannot be read: " + e.Message, inner: e); }
    }

    private static JsonDocument ParseJson(string path)
    {
        var bytes = ReadFile(path);
        try { return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = 16 }); }
        catch (JsonException e)
        {
            throw new ConfigException(path, $"not valid JSON at line {e.LineNumber + 1}, byte {e.BytePositionInLine + 1}: {e.Message}", inner: e);
        }
    }

    private static Dictionary<string, int> ReadVocab(string path)
    {
        using var doc = ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ConfigException(path, "expected a JSON object of token → id");
        var vocab = new Dictionary<string, int>(200_000, StringComparer.Ordinal);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out var id) || id < 0)
                throw new ConfigException(path, $"id must be a non-negative integer, found {p.Value.GetRawText()}", p.Name);
            if (!vocab.TryAdd(p.Name, id)) throw new ConfigException(path, "token appears twice", p.Name);
        }
        if (vocab.Count == 0) throw new ConfigException(path, "vocabulary is empty");
        var seen = new bool[vocab.Count];
        foreach (var (token, id) in vocab)
        {
            if (id >= vocab.Count) throw new ConfigException(path, $"id {id} outside 0..{vocab.Count - 1} (ids must be contiguous)", token);
            if (seen[id]) throw new ConfigException(path, $"id {id} is used by two tokens", token);
            seen[id] = true;
        }
        return vocab;
    }

    private static List<string> ReadMerges(string path, Dictionary<string, int> vocab)
    {
        string text;
        try { text = new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(ReadFile(path)); }
        catch (DecoderFallbackException e) { throw new ConfigException(path, "not valid UTF-8", inner: e); }
        var merges = new List<string>(160_000);
        var lineNo = 0;
        foreach (var rawLine in text.Split('\n'))
        {
            lineNo++;
            var line = rawLine.Trim();
            // As transformers' Qwen2Tokenizer: skip the "#version" header and blank lines.
            if ((lineNo == 1 && line.StartsWith("#version:", StringComparison.Ordinal)) || line.Length == 0) continue;
            var parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
                throw new ConfigException(path, $"a merge rule is two tokens separated by one space, found '{Truncate(line)}'", $"line {lineNo}");
            foreach (var t in (ReadOnlySpan<string>)[parts[0], parts[1], parts[0] + parts[1]])
                if (!vocab.ContainsKey(t)) throw new ConfigException(path, $"merge token '{Truncate(t)}' is not in vocab.json", $"line {lineNo}");
            merges.Add(line);
        }
        if (merges.Count == 0) throw new ConfigException(path, "no merge rules");
        return merges;
    }

    private static List<AddedToken> ReadAddedTokens(string path, Dictionary<string, int> vocab)
    {
        using var doc = ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object
            || !doc.RootElement.TryGetProperty("added_tokens_decoder", out var dec) || dec.ValueKind != JsonValueKind.Object)
            throw new ConfigException(path, "missing object 'added_tokens_decoder'", "added_tokens_decoder");
        var byId = new Dictionary<int, AddedToken>();
        var byContent = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in dec.EnumerateObject())
        {
            var key = "added_tokens_decoder." + p.Name;
            if (!int.TryParse(p.Name, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id))
                throw new ConfigException(path, "key must be a token id", key);
            if (p.Value.ValueKind != JsonValueKind.Object || !p.Value.TryGetProperty("content", out var c)
                || c.ValueKind != JsonValueKind.String || string.IsNullOrEmpty(c.GetString()))
                throw new ConfigException(path, "entry needs a non-empty string 'content'", key);
            var content = c.GetString()!;
            var special = Flag(p.Value, "special", false, path, key);
            var token = new AddedToken(id, content, special,
                Flag(p.Value, "lstrip", false, path, key), Flag(p.Value, "rstrip", false, path, key),
                // HF's default: special tokens are matched in the raw text, others in the normalised text.
                Flag(p.Value, "normalized", !special, path, key), Flag(p.Value, "single_word", false, path, key));
            if (vocab.TryGetValue(content, out var vid) && vid != id)
                throw new ConfigException(path, $"'{content}' has id {vid} in vocab.json", key);
            if (!vocab.ContainsKey(content) && id < vocab.Count)
                throw new ConfigException(path, $"id {id} is already vocab.json's token '{vocab.First(kv => kv.Value == id).Key}'", key);
            if (!byContent.Add(content)) throw new ConfigException(path, $"'{content}' appears twice", key);
            byId[id] = token;
        }
        return [.. byId.Values.OrderBy(t => t.Id)];
    }

    private static bool Flag(JsonElement entry, string name, bool fallback, string path, string key)
    {
        if (!entry.TryGetProperty(name, out var v)) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new ConfigException(path, $"'{name}' must be true or false", key),
        };
    }

    private static string Truncate(string s) => s.Length <= 40 ? s : s[..40] + "…";
}
