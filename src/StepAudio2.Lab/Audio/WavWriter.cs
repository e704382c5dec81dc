using System.Buffers.Binary;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Audio;

/// <summary>Sample encodings <see cref="WavWriter"/> can write.</summary>
public enum WavSampleFormat
{
    /// <summary>16-bit signed PCM: clip to [−1, 1], × 32767, round to nearest (ties to even).</summary>
    Pcm16,
    /// <summary>32-bit IEEE float (WAVE_FORMAT_IEEE_FLOAT), samples written unchanged: lossless.</summary>
    Float32,
}

/// <summary>Writes float32 audio as a canonical RIFF/WAVE file (PCM16 or IEEE float32, any channel count).</summary>
public static class WavWriter
{
    private const int BlockFrames = 16384;

    /// <summary>Writes every channel of <paramref name="clip"/> at its sample rate.</summary>
    public static void Write(string path, AudioClip clip, WavSampleFormat format = WavSampleFormat.Float32)
    {
        ArgumentNullException.ThrowIfNull(clip);
        using var f = AtomicFile.Create(path); // a full disk leaves no truncated WAV behind
        Write(f.Stream, clip, format);
        f.Commit();
    }

    /// <summary>Writes a mono signal.</summary>
    public static void Write(string path, ReadOnlySpan<float> mono, int sampleRate, WavSampleFormat format = WavSampleFormat.Float32)
    {
        using var f = AtomicFile.Create(path);
        Write(f.Stream, mono, channels: 1, sampleRate, format);
        f.Commit();
    }

    /// <summary>Writes every channel of <paramref name="clip"/> to a stream (left open).</summary>
    public static void Write(Stream stream, AudioClip clip, WavSampleFormat format = WavSampleFormat.Float32)
    {
        ArgumentNullException.ThrowIfNull(clip);
        if (clip.ChannelCount == 1)
        {
            Write(stream, clip.Channel(0), 1, clip.SampleRate, format);
            return;
        }
        var inter = new float[(long)clip.Frames * clip.ChannelCount];
        for (int c = 0; c < clip.ChannelCount; c++)
        {
            var ch = clip.Channel(c);
            for (int i = 0; i < ch.Length; i++) inter[(long)i * clip.ChannelCount + c] = ch[i];
        }
        Write(stream, inter, clip.ChannelCount, clip.SampleRate, format);
    }

    /// <summary>Writes interleaved samples (<c>frame-major</c>: L R L R …) to a stream (left open).</summary>
    public static void Write(Stream stream, ReadOnlySpan<float> interleaved, int channels, int sampleRate, WavSampleFormat format)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(channels);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(channels, ushort.MaxValue);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sampleRate);
        if (interleaved.Length % channels != 0)
            throw new ArgumentException($"{interleaved.Length} samples are not a whole number of {channels}-channel frames", nameof(interleaved));

        int bytesPerSample = format == WavSampleFormat.Pcm16 ? 2 : 4;
        long frames = interleaved.Length / channels;
        long dataBytes = (long)interleaved.Length * bytesPerSample;
        bool isFloat = format == WavSampleFormat.Float32;
        // Non-PCM formats carry cbSize (fmt 18 bytes) and a fact chunk with the frame count, as the WAVE spec asks.
        int fmtSize = isFloat ? 18 : 16;
        int headerBytes = 12 + 8 + fmtSize + (isFloat ? 12 : 0) + 8;
        long riffSize = headerBytes - 8 + dataBytes + (dataBytes & 1);
        if (riffSize > uint.MaxValue)
            throw new ArgumentException($"{dataBytes} bytes of audio exceed the 4 GiB RIFF limit", nameof(interleaved));

        Span<byte> h = stackalloc byte[headerBytes];
        "RIFF"u8.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h[4..], (uint)riffSize);
        "WAVE"u8.CopyTo(h[8..]);
        "fmt "u8.CopyTo(h[12..]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[16..], (uint)fmtSize);
        BinaryPrimitives.WriteUInt16LittleEndian(h[20..], (ushort)(isFloat ? 3 : 1));
        BinaryPrimitives.WriteUInt16LittleEndian(h[22..], (ushort)channels);
        BinaryPrimitives.WriteUInt32LittleEndian(h[24..], (uint)sampleRate);
        BinaryPrimitives.WriteUInt32LittleEndian(h[28..], checked((uint)(sampleRate * (long)channels * bytesPerSample)));
        BinaryPrimitives.WriteUInt16LittleEndian(h[32..], checked((ushort)(channels * bytesPerSample)));
        BinaryPrimitives.WriteUInt16LittleEndian(h[34..], (ushort)(bytesPerSample * 8));
        int p = 36;
        if (isFloat)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(h[36..], 0); // cbSize
            "fact"u8.CopyTo(h[38..]);
            BinaryPrimitives.WriteUInt32LittleEndian(h[42..], 4);
            BinaryPrimitives.WriteUInt32LittleEndian(h[46..], (uint)Math.Min(frames, uint.MaxValue));
            p = 50;
        }
        "data"u8.CopyTo(h[p..]);
        BinaryPrimitives.WriteUInt32LittleEndian(h[(p + 4)..], (uint)dataBytes);
        stream.Write(h);

        var buf = new byte[Math.Min(interleaved.Length, BlockFrames * channels) * bytesPerSample];
        for (int i = 0; i < interleaved.Length;)
        {
            int n = Math.Min(buf.Length / bytesPerSample, interleaved.Length - i);
            var src = interleaved.Slice(i, n);
            if (isFloat)
                for (int k = 0; k < n; k++) BinaryPrimitives.WriteSingleLittleEndian(buf.AsSpan(k * 4), src[k]);
            else
                for (int k = 0; k < n; k++) BinaryPrimitives.WriteInt16LittleEndian(buf.AsSpan(k * 2), ToPcm16(src[k]));
            stream.Write(buf, 0, n * bytesPerSample);
            i += n;
        }
        if ((dataBytes & 1) != 0) stream.WriteByte(0); // unreachable for 2/4-byte samples; kept for RIFF correctness
        stream.Flush();
    }

    /// <summary>
    /// float → int16 as docs/model.md §7.11's streaming output does it: clip to [−1, 1] and scale by 32767 (so ±1 map to ±32767
    /// and −32768 is never produced), then round to nearest with ties to even, which is libsndfile's (soundfile's)
    /// <c>lrintf</c> under the default rounding mode. NaN writes 0. Reading back divides by 32768 (torchaudio), so a
    /// PCM16 round trip scales by 32767/32768 and quantises; use <see cref="WavSampleFormat.Float32"/> to be lossless.
    /// </summary>
    public static short ToPcm16(float x)
    {
        if (float.IsNaN(x)) return 0;
        float c = Math.Clamp(x, -1f, 1f);
        return (short)MathF.Round(c * 32767f, MidpointRounding.ToEven);
    }
}
