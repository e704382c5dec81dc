namespace StepAudio2.Lab.Text;

/// <summary>GPT-2's byte-level alphabet: every byte as a printable code point, so BPE tokens are plain strings.</summary>
internal static class ByteLevel
{
    /// <summary>Byte → the character that stands for it in vocab.json.</summary>
    public static readonly char[] ByteToChar = BuildByteToChar();

    /// <summary>Character → byte, or -1 for characters outside the alphabet (indexed by char, 0..0x143).</summary>
    public static readonly short[] CharToByte = BuildCharToByte();

    private static char[] BuildByteToChar()
    {
        // Printable Latin-1 bytes map to themselves; the other 68 bytes are shifted to U+0100.. in byte order.
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++)
        {
            var printable = b is >= 0x21 and <= 0x7E or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = (char)(printable ? b : next++);
        }
        return map;
    }

    private static short[] BuildCharToByte()
    {
        var inv = new short[0x144];
        Array.Fill(inv, (short)-1);
        for (var b = 0; b < 256; b++) inv[ByteToChar[b]] = (short)b;
        return inv;
    }

    /// <summary>
    /// Bytes a token string stands for, as HF's ByteLevel decoder computes them: mapped through the alphabet when every
    /// character belongs to it, else the string's own UTF-8 (added tokens whose text lies outside the alphabet).
    /// </summary>
    public static byte[] TokenBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (var i = 0; i < token.Length; i++)
        {
            var c = token[i];
            var b = c < CharToByte.Length ? CharToByte[c] : (short)-1;
            if (b < 0) return System.Text.Encoding.UTF8.GetBytes(token);
            bytes[i] = (byte)b;
        }
        return bytes;
    }
}
