using System.Text;

namespace StepAudio2.Lab.Text;

/// <summary>
/// Decodes a stream of token ids one at a time for streaming generation: each <see cref="Push"/> returns the text that is
/// now complete, holding back the bytes of a UTF-8 sequence that the next token may finish. The concatenation of every
/// Push and the final <see cref="Flush"/> equals <see cref="StepAudioTokenizer.Decode"/> of all the ids.
/// </summary>
public sealed class IncrementalDecoder
{
    private readonly StepAudioTokenizer _tokenizer;
    // A stateful UTF-8 decoder: it keeps an incomplete trailing sequence and substitutes U+FFFD for invalid bytes exactly
    // as the one-shot decoding does (maximal subparts), so splitting the byte stream anywhere changes nothing.
    private readonly Decoder _utf8 = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false).GetDecoder();
    private char[] _chars = new char[64];

    public IncrementalDecoder(StepAudioTokenizer tokenizer) => _tokenizer = tokenizer;

    /// <summary>Adds one id; returns the newly completed text (possibly empty). Unknown ids are skipped, as in Decode.</summary>
    public string Push(int id) => Convert(_tokenizer.TokenBytes(id), flush: false);

    /// <summary>Ends the stream: returns what was held back (an incomplete sequence becomes U+FFFD) and resets.</summary>
    public string Flush() => Convert([], flush: true);

    private string Convert(ReadOnlySpan<byte> bytes, bool flush)
    {
        var need = _utf8.GetCharCount(bytes, flush);
        if (need > _chars.Length) _chars = new char[Math.Max(need, _chars.Length * 2)];
        var n = _utf8.GetChars(bytes, _chars, flush);
        return n == 0 ? string.Empty : new string(_chars, 0, n);
    }
}
