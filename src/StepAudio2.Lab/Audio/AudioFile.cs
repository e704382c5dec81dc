using System.Text;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Audio;

/// <summary>Reads WAV (RIFF, RF64), AIFF and AIFF-C files into <see cref="AudioClip"/>s, recognising the container by its magic bytes.</summary>
public static class AudioFile
{
    /// <summary>
    /// Lowest sample rate accepted (Hz). Below it a header is corrupt or hostile, not audio: resampling a 1 Hz file to
    /// 16/24 kHz would multiply its size by up to 24 000 (a 10 KB file → GBs). With this floor, every resampled signal
    /// is at most 24 kHz / 1 kHz = 24× its input, i.e. bounded by the input's duration.
    /// </summary>
    public const int MinSampleRate = 1_000;

    /// <summary>Highest sample rate accepted (Hz): 768 kHz, the highest rate audio interfaces offer. Anything above is treated as a corrupt header.</summary>
    public const int MaxSampleRate = 768_000;

    /// <summary>The accepted range as messages print it.</summary>
    internal static string SampleRateRange => $"accepted: {MinSampleRate}…{MaxSampleRate} Hz";

    /// <summary>
    /// Refuses a clip with no samples: every consumer (mel, features, prompts, chat) needs at least one, and an empty mel
    /// would otherwise pass as a result.
    /// </summary>
    public static AudioClip RequireSamples(AudioClip clip, string path) =>
        clip.Frames > 0 ? clip : throw new AudioFormatException(path, "audio holds no samples (0 frames)", key: "data");

    /// <summary>
    /// Decodes a file to float32 with torchaudio's scaling (int16/32768, int24/2^23, int32/2^31, WAV uint8 (x−128)/128,
    /// floats as stored). The file is opened read-only; every size is checked against the file length before anything
    /// is allocated, and any fault raises <see cref="AudioFormatException"/> naming the file, the chunk and the offset.
    /// </summary>
    public static AudioClip Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (Directory.Exists(path)) throw new AudioFormatException(path, "is a directory, not an audio file");
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1, FileOptions.SequentialScan);
        if (fs.CanSeek) return Read(fs, path);
        // A pipe (<(…), /dev/stdin): the readers seek between chunks, so the stream is buffered whole, within a bound.
        var ms = new MemoryStream();
        var buf = new byte[1 << 16];
        int n;
        while ((n = fs.Read(buf)) > 0)
        {
            if (ms.Length + n > MaxStreamBytes)
                throw new AudioFormatException(path, $"piped audio is longer than {MaxStreamBytes >> 20} MiB; give a regular file instead");
            ms.Write(buf, 0, n);
        }
        ms.Position = 0;
        return Read(ms, path);
    }

    /// <summary>Most bytes buffered from a non-seekable source (a pipe): 1 GiB, about 93 minutes of 48 kHz stereo float32.</summary>
    public const long MaxStreamBytes = 1L << 30;

    /// <summary>Decodes from a seekable stream; <paramref name="sourceName"/> names the source in errors and in <see cref="AudioClip.SourcePath"/>.</summary>
    public static AudioClip Read(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek || !stream.CanRead) throw new ArgumentException("audio decoding needs a readable, seekable stream", nameof(stream));
        Span<byte> head = stackalloc byte[12];
        long length = stream.Length;
        if (length < 12)
            throw new AudioFormatException(sourceName, $"file is {length} bytes, too short to hold a WAV or AIFF header (12 bytes)", offset: 0);
        ByteIO.ReadAt(stream, sourceName, 0, head);
        string magic = FourCC(head[..4]), form = FourCC(head[8..12]);
        return (magic, form) switch
        {
            ("RIFF", "WAVE") => WavReader.Read(stream, sourceName, rf64: false),
            ("RF64", "WAVE") => WavReader.Read(stream, sourceName, rf64: true),
            ("FORM", "AIFF") => AiffReader.Read(stream, sourceName, aifc: false),
            ("FORM", "AIFC") => AiffReader.Read(stream, sourceName, aifc: true),
            ("RIFX", _) => throw new AudioFormatException(sourceName, "big-endian RIFX WAV is not supported", key: "RIFX", offset: 0),
            ("RIFF", _) or ("FORM", _) => throw new AudioFormatException(sourceName,
                $"{magic} container holds form type '{form}', not WAVE/AIFF/AIFC", key: form, offset: 8),
            _ => throw new AudioFormatException(sourceName,
                $"unrecognised audio container: first bytes '{magic}' are not RIFF, RF64 or FORM (only WAV, RF64, AIFF and AIFF-C are read)", key: magic, offset: 0),
        };
    }

    /// <summary>A chunk id for messages: printable ASCII kept, anything else as \xNN.</summary>
    internal static string FourCC(ReadOnlySpan<byte> id)
    {
        var sb = new StringBuilder(4);
        foreach (byte b in id) sb.Append(b is >= 0x20 and < 0x7F ? (char)b : $"\\x{b:X2}");
        return sb.ToString();
    }
}

/// <summary>Positioned exact reads that turn a short read into a typed error.</summary>
internal static class ByteIO
{
    public static void ReadAt(Stream s, string path, long offset, Span<byte> dst)
    {
        s.Position = offset;
        try { s.ReadExactly(dst); }
        catch (EndOfStreamException e)
        {
            throw new AudioFormatException(path, $"file ends inside a {dst.Length}-byte header read", offset: offset, inner: e);
        }
    }
}
