using System.Globalization;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// Speech codes (0..6560, 25 Hz) for token2wav: the filter the official examples apply to LLM output, and strict parsing
/// of codes a person supplies (command line, text, .npy or safetensors files), which names the file and position at fault.
/// </summary>
public static class SpeechCodes
{
    /// <summary>3⁸: codes 0..6560 are flow inputs; 6561 is the speech-slot padding, higher ids are unused (docs/model.md §6.1).</summary>
    public const int CodebookSize = 6561;

    /// <summary>The safetensors key read when a file holds several tensors (the name reference dumps use).</summary>
    public const string DumpKey = "input.codes";

    /// <summary>
    /// The official examples' filter before token2wav (<c>[x for x in audio if x &lt; 6561]</c>, docs/model.md §6.4): drops the
    /// <c>&lt;audio_6561&gt;</c> padding and anything higher (and negative values, which no splitter produces).
    /// </summary>
    public static int[] Filter(ReadOnlySpan<int> codes)
    {
        var kept = new List<int>(codes.Length);
        foreach (int c in codes)
            if (c is >= 0 and < CodebookSize) kept.Add(c);
        return kept.ToArray();
    }

    /// <summary>
    /// Parses codes separated by whitespace or commas (<c>"1 2 3"</c>, <c>"1,2,3"</c>, a file of one code per line;
    /// <c>#</c> starts a comment to the end of the line). Every code must be an integer in 0..6560.
    /// </summary>
    /// <param name="source">what to name in errors (a file path or "--codes").</param>
    /// <exception cref="LabDataException">a token is not an integer, a code is out of range, or there are none.</exception>
    public static int[] Parse(string text, string source)
    {
        ArgumentNullException.ThrowIfNull(text);
        var codes = new List<int>();
        int line = 1;
        foreach (var rawLine in text.Split('\n'))
        {
            var content = rawLine;
            int hash = content.IndexOf('#');
            if (hash >= 0) content = content[..hash];
            foreach (var token in content.Split([' ', '\t', '\r', ',', '[', ']'], StringSplitOptions.RemoveEmptyEntries))
            {
                if (!long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
                    throw new LabDataException(source, $"'{Shorten(token)}' is not an integer speech code", $"line {line}, code {codes.Count}");
                codes.Add(Check(v, codes.Count, source));
            }
            line++;
        }
        if (codes.Count == 0) throw new LabDataException(source, "holds no speech codes");
        return codes.ToArray();
    }

    /// <summary>
    /// Reads codes from a file: safetensors (the single integer tensor, or <paramref name="key"/> / <c>input.codes</c>),
    /// .npy (an integer array of one dimension, or [1, N]), otherwise text as in <see cref="Parse"/>.
    /// </summary>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="LabDataException">unreadable file, wrong dtype/shape, a code outside 0..6560.</exception>
    public static int[] Load(string path, string? key = null)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"no such codes file: {path}", path);
        var fromPipe = ReadIfStream(path);
        if (fromPipe is not null) return LoadFromBytes(path, fromPipe, key);
        string format;
        try
        {
            format = TensorFiles.DetectFormat(path);
        }
        catch (LabDataException)
        {
            format = "text";
        }
        if (format is "text")
        {
            string text;
            try
            {
                text = File.ReadAllText(path);
            }
            catch (IOException e)
            {
                throw new LabDataException(path, $"cannot read the codes file: {e.Message}", inner: e);
            }
            if (text.Contains('\0')) throw new LabDataException(path, "is neither a text list of codes nor a .npy/safetensors file");
            return Parse(text, path);
        }
        if (format is not ("npy" or "safetensors" or "npz"))
            throw new LabDataException(path, $"a {format} file cannot hold speech codes (use text, .npy or safetensors)");

        using var source = TensorFiles.Open(path);
        string name = key ?? (source.Tensors.Count == 1 ? source.Tensors[0].Name
            : source.Contains(DumpKey) ? DumpKey
            : throw new LabDataException(path, $"holds {source.Tensors.Count} tensors and no '{DumpKey}'; name one with the key option"));
        if (!source.Contains(name)) throw new LabDataException(path, "no such tensor", name);
        var t = source.Get(name);
        if (t.DType.IsFloating() || t.DType == DType.Bool)
            throw new LabDataException(path, $"speech codes must be integers, found {t.DType.ShortName()}", name);
        if (!(t.Rank == 1 || (t.Rank == 2 && t.Shape[0] == 1)))
            throw new LabDataException(path, $"speech codes must be [N] or [1, N], found {Tensor.ShapeString(t.Shape)}", name);
        var values = t.ToInt64Array();
        if (values.Length == 0) throw new LabDataException(path, "holds no speech codes", name);
        var codes = new int[values.Length];
        for (int i = 0; i < values.Length; i++) codes[i] = Check(values[i], i, path, name);
        return codes;
    }

    /// <summary>Most bytes read from a pipe (a text list of 10 minutes of codes is ~75 KB; an .npy of them ~120 KB).</summary>
    public const int MaxStreamBytes = 64 << 20;

    /// <summary>
    /// The whole content of a pipe, FIFO or character device (<c>--codes-file &lt;(…)</c>, <c>/dev/stdin</c>), read once and
    /// bounded; null for a regular (seekable) file. A pipe must be opened only once: sniffing its first bytes and reopening
    /// lost them (a pipe of "100 200 300 400 500" gave 3 codes) or blocked on a writer that had gone.
    /// </summary>
    private static byte[]? ReadIfStream(string path)
    {
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, bufferSize: 1);
        }
        catch (IOException)
        {
            return null; // let the normal path report it
        }
        using (fs)
        {
            if (fs.CanSeek) return null;
            var ms = new MemoryStream();
            var buf = new byte[81920];
            int n;
            while ((n = fs.Read(buf)) > 0)
            {
                if (ms.Length + n > MaxStreamBytes)
                    throw new LabDataException(path, $"stream is longer than {MaxStreamBytes} bytes; a codes file is far smaller");
                ms.Write(buf, 0, n);
            }
            return ms.ToArray();
        }
    }

    /// <summary>Codes from bytes already read (a pipe): sniffed in memory; binary formats spilled to a temporary file for their mapped readers.</summary>
    private static int[] LoadFromBytes(string path, byte[] bytes, string? key)
    {
        bool npy = bytes.AsSpan().StartsWith((ReadOnlySpan<byte>)[0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y']);
        bool zip = bytes.AsSpan().StartsWith("PK\x03\x04"u8);
        bool safetensors = bytes.Length >= 8 && BitConverter.ToUInt64(bytes, 0) is > 1 and < 100_000_000 && bytes.Length > 8 && bytes[8] == (byte)'{';
        if (!(npy || zip || safetensors))
        {
            if (Array.IndexOf(bytes, (byte)0) >= 0) throw new LabDataException(path, "is neither a text list of codes nor a .npy/safetensors file");
            return Parse(System.Text.Encoding.UTF8.GetString(bytes), path);
        }
        string temp = System.IO.Path.Combine(System.IO.Path.GetTempPath(), $"steplab-codes-{Guid.NewGuid():N}{(npy ? ".npy" : zip ? ".npz" : ".safetensors")}");
        try
        {
            File.WriteAllBytes(temp, bytes);
            try
            {
                return Load(temp, key);
            }
            catch (LabDataException e) when (e.FilePath == temp)
            {
                throw new LabDataException(path, e.Fault, e.Key, e.ByteOffset, e);
            }
        }
        finally
        {
            try { File.Delete(temp); } catch (IOException) { }
        }
    }

    private static int Check(long v, int index, string source, string? key = null)
    {
        if (v is < 0 or >= CodebookSize)
            throw new LabDataException(source, $"speech code {v} at position {index} is outside 0..{CodebookSize - 1}" +
                (v >= CodebookSize ? " (6561 is the audio padding the LLM emits after the speech ends: filter it out first)" : ""), key);
        return (int)v;
    }

    private static string Shorten(string s) => s.Length <= 24 ? s : s[..24] + "…";
}
