using System.Buffers.Binary;
using System.Text;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Audio;

/// <summary>
/// AIFF and AIFF-C reader (NAudio reads neither compressed AIFF-C nor <c>twos</c>/<c>sowt</c>/<c>fl32</c>): FORM container
/// with big-endian sizes and even padding, COMM (80-bit extended sample rate, AIFF-C compression type), SSND
/// (offset/blockSize). Uncompressed codecs only; anything else is refused by name.
/// </summary>
internal static class AiffReader
{
    private sealed record Comm(int Channels, long Frames, int Bits, double Rate, string Codec, string CodecName, long Offset);

    public static AudioClip Read(Stream s, string path, bool aifc)
    {
        long fileLen = s.Length;
        var notes = new List<string>();
        Span<byte> hdr = stackalloc byte[8];
        ByteIO.ReadAt(s, path, 0, hdr);
        long formSize = BinaryPrimitives.ReadUInt32BigEndian(hdr[4..]);
        long walkEnd = fileLen;
        if (8 + formSize >= 12 && 8 + formSize < fileLen)
        {
            walkEnd = 8 + formSize;
            notes.Add($"{fileLen - walkEnd} bytes after the end of the FORM chunk ignored");
        }

        Comm? comm = null;
        long ssndBody = -1, ssndSize = 0;
        long pos = 12;
        while (pos + 8 <= walkEnd)
        {
            ByteIO.ReadAt(s, path, pos, hdr);
            string id = AudioFile.FourCC(hdr[..4]);
            long size = BinaryPrimitives.ReadUInt32BigEndian(hdr[4..]);
            long body = pos + 8;
            if (size > fileLen - body)
                throw new AudioFormatException(path,
                    $"chunk '{id}' claims {size} bytes of payload but only {fileLen - body} remain in the file (truncated or corrupt)", id, pos);
            switch (id)
            {
                case "COMM" when comm is null:
                    comm = ParseComm(s, path, body, size, aifc);
                    break;
                case "SSND" when ssndBody < 0:
                    if (size < 8) throw new AudioFormatException(path, $"SSND chunk is {size} bytes; needs at least 8 (offset, blockSize)", id, pos);
                    ssndBody = body;
                    ssndSize = size;
                    break;
                case "COMM" or "SSND":
                    notes.Add($"second '{id}' chunk at byte {pos} ignored");
                    break;
            }
            pos = body + size + (size & 1);
        }

        if (comm is null) throw new AudioFormatException(path, "no COMM chunk: channel count, frame count and sample rate are unknown", "COMM");
        var (encoding, bits) = ResolveEncoding(path, comm);

        // Sample rate: the file stores an 80-bit float; our clips carry an integer rate, as torchaudio does.
        double rounded = Math.Round(comm.Rate);
        if (rounded != comm.Rate) notes.Add($"sample rate {comm.Rate} Hz rounded to {rounded} Hz");

        long frames = comm.Frames;
        long dataStart = 0;
        if (frames > 0)
        {
            if (ssndBody < 0) throw new AudioFormatException(path, $"COMM declares {frames} frames but there is no SSND chunk", "SSND");
            Span<byte> head = stackalloc byte[8];
            ByteIO.ReadAt(s, path, ssndBody, head);
            long offset = BinaryPrimitives.ReadUInt32BigEndian(head);
            if (offset > ssndSize - 8)
                throw new AudioFormatException(path, $"SSND offset {offset} points past the chunk's {ssndSize - 8} data bytes", "SSND", ssndBody);
            dataStart = ssndBody + 8 + offset;
            long available = ssndSize - 8 - offset;
            long needed = frames * comm.Channels * encoding.Size(); // ≤ 2^32 · 2^15 · 8: no overflow
            if (needed > available)
                throw new AudioFormatException(path,
                    $"COMM declares {frames} frames × {comm.Channels} channel(s) × {encoding.Size()} bytes = {needed} bytes, but SSND holds only {available}",
                    "COMM", comm.Offset);
            if (frames > Array.MaxLength)
                throw new AudioFormatException(path, $"{frames} frames per channel exceed the largest array .NET can hold", "COMM", comm.Offset);
        }

        var channels = SampleDecoder.ReadPlanar(s, path, dataStart, (int)frames, comm.Channels, encoding);
        var format = new AudioSourceFormat(aifc ? "AIFF-C" : "AIFF", comm.Codec, encoding, bits);
        return new AudioClip(channels, (int)rounded, format, path, notes);
    }

    private static Comm ParseComm(Stream s, string path, long body, long size, bool aifc)
    {
        int min = aifc ? 22 : 18;
        if (size < min) throw new AudioFormatException(path, $"COMM chunk is {size} bytes; {(aifc ? "AIFF-C" : "AIFF")} needs at least {min}", "COMM", body - 8);
        // COMM is at most 18 + 4 + 256 bytes of meaning: the compression name is a Pascal string (≤ 255 chars).
        Span<byte> c = stackalloc byte[18 + 4 + 256];
        int n = (int)Math.Min(size, c.Length);
        ByteIO.ReadAt(s, path, body, c[..n]);
        int channels = BinaryPrimitives.ReadInt16BigEndian(c);
        long frames = BinaryPrimitives.ReadUInt32BigEndian(c[2..]);
        int bits = BinaryPrimitives.ReadInt16BigEndian(c[6..]);
        if (channels <= 0) throw new AudioFormatException(path, $"COMM declares {channels} channels", "COMM", body);
        double rate = Extended80ToDouble(c.Slice(8, 10));
        if (!(rate >= AudioFile.MinSampleRate && rate <= AudioFile.MaxSampleRate)) // also rejects NaN
            throw new AudioFormatException(path, $"implausible sample rate {rate} Hz ({AudioFile.SampleRateRange})", "COMM", body + 8);

        string codec = "NONE", codecName = "not compressed";
        if (aifc)
        {
            codec = Encoding.Latin1.GetString(c.Slice(18, 4));
            int len = n > 22 ? c[22] : 0;
            codecName = Encoding.Latin1.GetString(c.Slice(23, Math.Min(len, Math.Max(0, n - 23))));
        }
        return new Comm(channels, frames, bits, rate, codec, codecName, body - 8);
    }

    private static (SampleEncoding, int) ResolveEncoding(string path, Comm comm)
    {
        long bitsOffset = comm.Offset + 8 + 6;
        SampleEncoding IntEncoding(bool bigEndian)
        {
            if (comm.Bits is < 1 or > 32)
                throw new AudioFormatException(path, $"unsupported sample size {comm.Bits} bits for integer PCM (1…32 are read)", "COMM", bitsOffset);
            // Samples narrower than their container are left-justified, so scaling by the container width is right.
            return ((comm.Bits + 7) / 8, bigEndian) switch
            {
                (1, _) => SampleEncoding.Int8,
                (2, true) => SampleEncoding.Int16BE, (2, false) => SampleEncoding.Int16LE,
                (3, true) => SampleEncoding.Int24BE, (3, false) => SampleEncoding.Int24LE,
                (_, true) => SampleEncoding.Int32BE, (_, false) => SampleEncoding.Int32LE,
            };
        }
        return comm.Codec switch
        {
            "NONE" or "twos" => (IntEncoding(true), comm.Bits),
            "sowt" => (IntEncoding(false), comm.Bits),
            "in24" => (SampleEncoding.Int24BE, 24),
            "in32" => (SampleEncoding.Int32BE, 32),
            "raw " => (SampleEncoding.UInt8, 8),
            "fl32" or "FL32" => (SampleEncoding.Float32BE, 32),
            "fl64" or "FL64" => (SampleEncoding.Float64BE, 64),
            _ => throw new AudioFormatException(path,
                $"unsupported AIFF-C compression '{comm.Codec}' (\"{comm.CodecName}\"); only uncompressed PCM (NONE, twos, sowt, in24, in32, raw) and floats (fl32, fl64) are decoded",
                comm.Codec, comm.Offset + 8 + 18),
        };
    }

    /// <summary>
    /// IEEE 754 80-bit extended (big-endian): sign, 15-bit exponent (bias 16383), 64-bit significand with an explicit
    /// integer bit. value = significand · 2^(exponent − 16383 − 63). Inf/NaN map to NaN so the caller rejects them.
    /// </summary>
    internal static double Extended80ToDouble(ReadOnlySpan<byte> b)
    {
        int se = BinaryPrimitives.ReadUInt16BigEndian(b);
        ulong mant = BinaryPrimitives.ReadUInt64BigEndian(b[2..]);
        int exp = se & 0x7FFF;
        if (exp == 0x7FFF) return double.NaN;
        if (mant == 0) return 0.0;
        double v = Math.ScaleB(mant, exp - 16383 - 63); // ulong→double rounds to nearest; exact for any real rate
        return (se & 0x8000) != 0 ? -v : v;
    }
}
