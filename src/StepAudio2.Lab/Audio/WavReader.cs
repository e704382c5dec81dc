using System.Buffers.Binary;
using NAudio.Wave;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Audio;

/// <summary>
/// RIFF/WAVE and RF64 reader. We walk the chunks ourselves rather than through NAudio's <c>WaveFileReader</c> so that
/// every size is checked against the real file length before use (a data chunk that claims more bytes than the file
/// holds is rejected with its offset, never trusted or silently shortened), every fault is an
/// <see cref="AudioFormatException"/>, and the int→float scaling is torchaudio's (int32/2^31, not /int.MaxValue).
/// NAudio supplies the format-tag names (<see cref="WaveFormatEncoding"/>) for messages.
/// </summary>
internal static class WavReader
{
    private const int WaveFormatPcm = 1, WaveFormatIeeeFloat = 3, WaveFormatExtensible = 0xFFFE;

    // KSDATAFORMAT_SUBTYPE_* GUIDs are {tag-0000-0010-8000-00AA00389B71}; these are the bytes after the 2-byte tag.
    private static ReadOnlySpan<byte> SubFormatTail => [0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71];

    private sealed record FmtChunk(int Tag, bool Extensible, int Channels, long SampleRate, int BlockAlign, int Bits, int? ValidBits, long Offset);

    public static AudioClip Read(Stream s, string path, bool rf64)
    {
        long fileLen = s.Length;
        string container = rf64 ? "RF64" : "WAV";
        var notes = new List<string>();
        Span<byte> hdr = stackalloc byte[8];
        Span<byte> ds = stackalloc byte[24];
        ByteIO.ReadAt(s, path, 0, hdr);
        uint riffSize = BinaryPrimitives.ReadUInt32LittleEndian(hdr[4..]);

        // Respect the RIFF size when it is plausible, so bytes appended after the RIFF (ID3 tags…) are not parsed as
        // chunks; walk to the end of the file when it is a placeholder (0, 0xFFFFFFFF from streaming writers, RF64).
        long walkEnd = fileLen;
        long declaredEnd = 8L + riffSize;
        if (!rf64 && declaredEnd >= 12 && declaredEnd < fileLen)
        {
            walkEnd = declaredEnd;
            notes.Add($"{fileLen - declaredEnd} bytes after the end of the RIFF chunk ignored");
        }
        else if (!rf64 && declaredEnd > fileLen && riffSize != uint.MaxValue)
            notes.Add($"RIFF header claims {declaredEnd} bytes but the file has {fileLen}; chunks checked against the file length");

        FmtChunk? fmt = null;
        long dataOffset = -1, dataSize = 0, ds64DataSize = -1;
        long pos = 12;
        while (pos + 8 <= walkEnd)
        {
            ByteIO.ReadAt(s, path, pos, hdr);
            string id = AudioFile.FourCC(hdr[..4]);
            long size = BinaryPrimitives.ReadUInt32LittleEndian(hdr[4..]);
            long body = pos + 8;
            if (rf64 && id == "data" && size == uint.MaxValue)
            {
                if (ds64DataSize < 0)
                    throw new AudioFormatException(path, "RF64 data chunk defers its size to a ds64 chunk, but no ds64 chunk precedes it", "data", pos);
                size = ds64DataSize;
            }
            if (size > fileLen - body)
                throw new AudioFormatException(path,
                    $"chunk '{id}' claims {size} bytes of payload but only {fileLen - body} remain in the file (truncated or corrupt)", id, pos);

            switch (id)
            {
                case "fmt " when fmt is null:
                    fmt = ParseFmt(s, path, body, size);
                    break;
                case "ds64" when rf64:
                    if (size < 24) throw new AudioFormatException(path, $"ds64 chunk is {size} bytes; needs at least 24", id, pos);
                    ByteIO.ReadAt(s, path, body, ds);
                    ulong ds64 = BinaryPrimitives.ReadUInt64LittleEndian(ds[8..]);
                    if (ds64 > (ulong)fileLen)
                        throw new AudioFormatException(path, $"ds64 claims a data size of {ds64} bytes but the file has {fileLen}", id, body + 8);
                    ds64DataSize = (long)ds64;
                    break;
                case "data" when dataOffset < 0:
                    dataOffset = body;
                    dataSize = size;
                    break;
                case "fmt " or "data":
                    notes.Add($"second '{id}' chunk at byte {pos} ignored");
                    break;
            }
            pos = body + size + (size & 1);
        }
        if (pos < walkEnd && walkEnd - pos < 8)
            notes.Add($"{walkEnd - pos} stray bytes after the last chunk ignored");

        if (fmt is null) throw new AudioFormatException(path, "no 'fmt ' chunk before the end of the file", "fmt ");
        if (dataOffset < 0) throw new AudioFormatException(path, "no 'data' chunk before the end of the file", "data");

        var (encoding, codec) = ResolveEncoding(path, fmt);
        int frameBytes = fmt.Channels * encoding.Size();
        if (fmt.BlockAlign != frameBytes)
            throw new AudioFormatException(path,
                $"block align {fmt.BlockAlign} does not match {fmt.Channels} channel(s) × {encoding.Size()} bytes = {frameBytes}", "fmt ", fmt.Offset + 12);
        if (fmt.ValidBits is int vb && vb != fmt.Bits)
            notes.Add($"{vb} valid bits in {fmt.Bits}-bit containers: scaled by the container width");

        long frames = dataSize / frameBytes;
        if (dataSize % frameBytes != 0)
            notes.Add($"data chunk ends with {dataSize % frameBytes} bytes that do not make a whole frame; dropped");
        if (frames > Array.MaxLength)
            throw new AudioFormatException(path, $"{frames} frames per channel exceed the largest array .NET can hold", "data", dataOffset - 8);

        var channels = SampleDecoder.ReadPlanar(s, path, dataOffset, (int)frames, fmt.Channels, encoding);
        var format = new AudioSourceFormat(container, codec, encoding, fmt.Bits);
        return new AudioClip(channels, (int)fmt.SampleRate, format, path, notes);
    }

    private static FmtChunk ParseFmt(Stream s, string path, long body, long size)
    {
        if (size < 16) throw new AudioFormatException(path, $"fmt chunk is {size} bytes; needs at least 16", "fmt ", body - 8);
        Span<byte> f = stackalloc byte[40];
        int n = (int)Math.Min(size, 40);
        ByteIO.ReadAt(s, path, body, f[..n]);
        int tag = BinaryPrimitives.ReadUInt16LittleEndian(f);
        int channels = BinaryPrimitives.ReadUInt16LittleEndian(f[2..]);
        long rate = BinaryPrimitives.ReadUInt32LittleEndian(f[4..]);
        int blockAlign = BinaryPrimitives.ReadUInt16LittleEndian(f[12..]);
        int bits = BinaryPrimitives.ReadUInt16LittleEndian(f[14..]);
        int? validBits = null;

        if (channels == 0) throw new AudioFormatException(path, "fmt chunk declares 0 channels", "fmt ", body + 2);
        if (rate < AudioFile.MinSampleRate || rate > AudioFile.MaxSampleRate)
            throw new AudioFormatException(path, $"implausible sample rate {rate} Hz ({AudioFile.SampleRateRange})", "fmt ", body + 4);

        if (tag == WaveFormatExtensible)
        {
            if (size < 40) throw new AudioFormatException(path, $"WAVE_FORMAT_EXTENSIBLE fmt chunk is {size} bytes; needs 40", "fmt ", body - 8);
            int cbSize = BinaryPrimitives.ReadUInt16LittleEndian(f[16..]);
            if (cbSize < 22) throw new AudioFormatException(path, $"WAVE_FORMAT_EXTENSIBLE cbSize is {cbSize}; needs 22", "fmt ", body + 16);
            validBits = BinaryPrimitives.ReadUInt16LittleEndian(f[18..]);
            if (validBits == 0) validBits = null; // 0 means "all bits valid"
            else if (validBits > bits)
                throw new AudioFormatException(path, $"{validBits} valid bits exceed the {bits}-bit sample container", "fmt ", body + 18);
            int subTag = BinaryPrimitives.ReadUInt16LittleEndian(f[24..]);
            if (!f[26..40].SequenceEqual(SubFormatTail))
                throw new AudioFormatException(path,
                    $"WAVE_FORMAT_EXTENSIBLE sub-format {new Guid(f[24..40])} is not a KSDATAFORMAT_SUBTYPE (PCM/IEEE float) GUID", "fmt ", body + 24);
            return new FmtChunk(subTag, true, channels, rate, blockAlign, bits, validBits, body - 8);
        }
        return new FmtChunk(tag, false, channels, rate, blockAlign, bits, validBits, body - 8);
    }

    private static (SampleEncoding, string) ResolveEncoding(string path, FmtChunk fmt)
    {
        int tag = fmt.Tag;
        string suffix = fmt.Extensible ? " (extensible)" : "";
        switch (tag)
        {
            case WaveFormatPcm:
                return fmt.Bits switch
                {
                    8 => (SampleEncoding.UInt8, "pcm" + suffix),
                    16 => (SampleEncoding.Int16LE, "pcm" + suffix),
                    24 => (SampleEncoding.Int24LE, "pcm" + suffix),
                    32 => (SampleEncoding.Int32LE, "pcm" + suffix),
                    _ => throw new AudioFormatException(path, $"unsupported PCM sample width {fmt.Bits} bits (8, 16, 24, 32 are read)", "fmt ", fmt.Offset + 22),
                };
            case WaveFormatIeeeFloat:
                return fmt.Bits switch
                {
                    32 => (SampleEncoding.Float32LE, "float" + suffix),
                    64 => (SampleEncoding.Float64LE, "float" + suffix),
                    _ => throw new AudioFormatException(path, $"unsupported IEEE float sample width {fmt.Bits} bits (32, 64 are read)", "fmt ", fmt.Offset + 22),
                };
            default:
                string name = Enum.IsDefined(typeof(WaveFormatEncoding), (ushort)tag) ? ((WaveFormatEncoding)(ushort)tag).ToString() : "unknown";
                throw new AudioFormatException(path,
                    $"unsupported WAV format tag 0x{tag:X4} ({name}){suffix}; only PCM (0x0001) and IEEE float (0x0003) are decoded", "fmt ", fmt.Offset + 8);
        }
    }
}
