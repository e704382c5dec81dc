using System.Buffers.Binary;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Audio;

/// <summary>Converts interleaved stored samples to planar float32 with torchaudio's scaling.</summary>
internal static class SampleDecoder
{
    private const int BlockBytes = 1 << 20;

    /// <summary>
    /// Reads <paramref name="frames"/> interleaved frames starting at <paramref name="dataOffset"/> and returns planar
    /// channels. The caller has already checked that the bytes lie inside the file, so allocation is bounded by the
    /// file length; reading streams in 1 MiB blocks so a long clip is never held twice.
    /// </summary>
    public static float[][] ReadPlanar(Stream stream, string path, long dataOffset, int frames, int channels, SampleEncoding enc)
    {
        int bps = enc.Size();
        int frameBytes = checked(bps * channels);
        var dst = new float[channels][];
        for (int c = 0; c < channels; c++) dst[c] = new float[frames];
        if (frames == 0) return dst;

        int framesPerBlock = Math.Max(1, BlockBytes / frameBytes);
        var buffer = new byte[(long)Math.Min(frames, framesPerBlock) * frameBytes];
        stream.Position = dataOffset;
        for (int done = 0; done < frames;)
        {
            int n = Math.Min(framesPerBlock, frames - done);
            var span = buffer.AsSpan(0, n * frameBytes);
            try { stream.ReadExactly(span); }
            catch (EndOfStreamException e)
            {
                // The size checks passed, so only a file that shrank while we read it gets here.
                throw new AudioFormatException(path, "file ended while reading sample data (was it truncated during the read?)",
                    offset: dataOffset + (long)done * frameBytes, inner: e);
            }
            Decode(span, enc, channels, dst, done, n);
            if (enc is SampleEncoding.Float32LE or SampleEncoding.Float32BE or SampleEncoding.Float64LE or SampleEncoding.Float64BE)
                RefuseNonFinite(path, dst, done, n, dataOffset, frameBytes, bps);
            done += n;
        }
        return dst;
    }

    /// <summary>
    /// NaN/±Inf samples (only float encodings can hold them) are bad input: they would flow through the resampler and
    /// the mel into an all-NaN result that looks like a success.
    /// </summary>
    private static void RefuseNonFinite(string path, float[][] dst, int start, int count, long dataOffset, int frameBytes, int bps)
    {
        for (int c = 0; c < dst.Length; c++)
        {
            var d = dst[c].AsSpan(start, count);
            // A double beyond float range also lands here (as ±Inf after narrowing).
            if (System.Numerics.Tensors.TensorPrimitives.Sum(d) is var sum && float.IsFinite(sum * 0f)) continue;
            for (int i = 0; i < d.Length; i++)
            {
                if (float.IsFinite(d[i])) continue;
                long frame = start + (long)i;
                throw new AudioFormatException(path,
                    $"sample {frame} of channel {c} is {(float.IsNaN(d[i]) ? "NaN" : d[i] > 0 ? "+Inf" : "-Inf")} (or out of float32 range); non-finite audio is not accepted",
                    key: "data", offset: dataOffset + frame * frameBytes + (long)c * bps);
            }
        }
    }

    /// <summary>Decodes <paramref name="count"/> interleaved frames into <c>dst[c][start..start+count]</c>.</summary>
    public static void Decode(ReadOnlySpan<byte> src, SampleEncoding enc, int channels, float[][] dst, int start, int count)
    {
        // Scale factors are powers of two, so int→float then ×2^−k rounds once, exactly like Python's
        // (x / 2**k).astype(float32) and torchaudio's int/2^(bits−1).
        const float s8 = 1f / 128f, s16 = 1f / 32768f, s24 = 1f / 8388608f, s32 = 1f / 2147483648f;
        int bps = enc.Size();
        for (int c = 0; c < channels; c++)
        {
            var d = dst[c].AsSpan(start, count);
            int stride = bps * channels;
            var s = src[(c * bps)..];
            switch (enc)
            {
                case SampleEncoding.UInt8:
                    for (int i = 0; i < d.Length; i++) d[i] = (s[i * stride] - 128) * s8;
                    break;
                case SampleEncoding.Int8:
                    for (int i = 0; i < d.Length; i++) d[i] = (sbyte)s[i * stride] * s8;
                    break;
                case SampleEncoding.Int16LE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadInt16LittleEndian(s[(i * stride)..]) * s16;
                    break;
                case SampleEncoding.Int16BE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadInt16BigEndian(s[(i * stride)..]) * s16;
                    break;
                case SampleEncoding.Int24LE:
                    for (int i = 0; i < d.Length; i++)
                    {
                        int o = i * stride;
                        int v = (s[o] | s[o + 1] << 8 | s[o + 2] << 16) << 8 >> 8; // sign-extend 24 → 32
                        d[i] = v * s24;
                    }
                    break;
                case SampleEncoding.Int24BE:
                    for (int i = 0; i < d.Length; i++)
                    {
                        int o = i * stride;
                        int v = (s[o] << 16 | s[o + 1] << 8 | s[o + 2]) << 8 >> 8;
                        d[i] = v * s24;
                    }
                    break;
                case SampleEncoding.Int32LE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadInt32LittleEndian(s[(i * stride)..]) * s32;
                    break;
                case SampleEncoding.Int32BE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadInt32BigEndian(s[(i * stride)..]) * s32;
                    break;
                case SampleEncoding.Float32LE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadSingleLittleEndian(s[(i * stride)..]);
                    break;
                case SampleEncoding.Float32BE:
                    for (int i = 0; i < d.Length; i++) d[i] = BinaryPrimitives.ReadSingleBigEndian(s[(i * stride)..]);
                    break;
                case SampleEncoding.Float64LE:
                    for (int i = 0; i < d.Length; i++) d[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(s[(i * stride)..]);
                    break;
                case SampleEncoding.Float64BE:
                    for (int i = 0; i < d.Length; i++) d[i] = (float)BinaryPrimitives.ReadDoubleBigEndian(s[(i * stride)..]);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(enc), enc, null);
            }
        }
    }
}
