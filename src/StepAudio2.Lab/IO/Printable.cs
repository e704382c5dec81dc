using System.Text;

namespace StepAudio2.Lab.IO;

/// <summary>
/// Text from a file (tensor names, keys, metadata) made safe to print on a terminal: control characters (C0, DEL, C1)
/// and bidirectional overrides become visible escapes, so a name holding ESC, CR or LF can neither colour, rewrite nor
/// forge lines of the output. Backslashes are kept, so the escape is for display only (not reversible).
/// </summary>
public static class Printable
{
    /// <summary>True when <paramref name="c"/> would act on a terminal instead of printing.</summary>
    public static bool IsUnsafe(char c) =>
        c < 0x20 || c is (>= '\x7f' and <= '\x9f') or (>= '\u202a' and <= '\u202e') or (>= '\u2066' and <= '\u2069');

    /// <summary><paramref name="text"/> with every unsafe character written as <c>\xNN</c> or <c>\uNNNN</c>; the same string when none.</summary>
    public static string Escape(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        int first = IndexOfUnsafe(text);
        if (first < 0) return text;
        var sb = new StringBuilder(text.Length + 8).Append(text, 0, first);
        for (int i = first; i < text.Length; i++) Append(sb, text[i]);
        return sb.ToString();
    }

    internal static void Append(StringBuilder sb, char c)
    {
        if (!IsUnsafe(c)) sb.Append(c);
        else if (c <= 0xff) sb.Append("\\x").Append(((int)c).ToString("X2"));
        else sb.Append("\\u").Append(((int)c).ToString("X4"));
    }

    private static int IndexOfUnsafe(string text)
    {
        for (int i = 0; i < text.Length; i++) if (IsUnsafe(text[i])) return i;
        return -1;
    }
}

/// <summary>
/// A writer for a terminal that passes line feeds and tabs (the output's own layout) and escapes every other control
/// character (<see cref="Printable"/>): ESC sequences, CR overwrites and BEL from file contents or model text cannot
/// reach the terminal. Line feeds inside names are escaped where the names are formatted.
/// </summary>
public sealed class TerminalSafeWriter(TextWriter inner) : TextWriter
{
    public override Encoding Encoding => inner.Encoding;
    public override IFormatProvider FormatProvider => inner.FormatProvider;
#pragma warning disable CS8765 // TextWriter.NewLine's setter accepts null
    public override string NewLine { get => inner.NewLine; set => inner.NewLine = value; }
#pragma warning restore CS8765

    public TextWriter Inner => inner;

    public override void Write(char value)
    {
        if (value is '\n' or '\t' || !Printable.IsUnsafe(value)) inner.Write(value);
        else inner.Write(Printable.Escape(value.ToString()));
    }

    public override void Write(string? value)
    {
        if (value is null) return;
        foreach (char c in value)
        {
            if (c is not ('\n' or '\t') && Printable.IsUnsafe(c)) { WriteSlow(value); return; }
        }
        inner.Write(value);
    }

    public override void Write(char[] buffer, int index, int count) => Write(new string(buffer, index, count));
    public override void WriteLine(string? value) { Write(value); inner.WriteLine(); }
    public override void WriteLine() => inner.WriteLine();
    public override void Flush() => inner.Flush();

    private void WriteSlow(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        foreach (char c in value)
        {
            if (c is '\n' or '\t') sb.Append(c);
            else Printable.Append(sb, c);
        }
        inner.Write(sb.ToString());
    }
}
