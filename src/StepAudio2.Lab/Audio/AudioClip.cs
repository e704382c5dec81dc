using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio;

/// <summary>How samples were stored in the source file, before conversion to float32.</summary>
public enum SampleEncoding
{
    /// <summary>8-bit unsigned, offset 128 (WAV 8-bit PCM, AIFF-C <c>raw </c>): (x − 128) / 128.</summary>
    UInt8,
    /// <summary>8-bit two's complement (AIFF 8-bit): x / 128.</summary>
    Int8,
    Int16LE, Int16BE,
    Int24LE, Int24BE,
    Int32LE, Int32BE,
    Float32LE, Float32BE,
    Float64LE, Float64BE,
}

/// <summary>Sizes of the stored sample encodings.</summary>
public static class SampleEncodingExtensions
{
    /// <summary>Bytes one sample of this encoding occupies.</summary>
    public static int Size(this SampleEncoding e) => e switch
    {
        SampleEncoding.UInt8 or SampleEncoding.Int8 => 1,
        SampleEncoding.Int16LE or SampleEncoding.Int16BE => 2,
        SampleEncoding.Int24LE or SampleEncoding.Int24BE => 3,
        SampleEncoding.Int32LE or SampleEncoding.Int32BE or SampleEncoding.Float32LE or SampleEncoding.Float32BE => 4,
        SampleEncoding.Float64LE or SampleEncoding.Float64BE => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(e), e, null),
    };
}

/// <summary>The source container and codec of a decoded clip (e.g. AIFF-C <c>twos</c>, 16-bit signed big-endian).</summary>
public sealed record AudioSourceFormat(string Container, string Codec, SampleEncoding Encoding, int BitsPerSample)
{
    /// <summary>Bytes one sample occupies in the file.</summary>
    public int BytesPerSample => Encoding.Size();

    /// <summary>Human-readable description, e.g. <c>AIFF-C 'twos': 16-bit signed int, big-endian</c>.</summary>
    public string Description
    {
        get
        {
            string kind = Encoding switch
            {
                SampleEncoding.UInt8 => "unsigned int",
                SampleEncoding.Float32LE or SampleEncoding.Float32BE or SampleEncoding.Float64LE or SampleEncoding.Float64BE => "IEEE float",
                _ => "signed int",
            };
            string endian = BytesPerSample == 1 ? "" : Encoding.ToString().EndsWith("BE", StringComparison.Ordinal) ? ", big-endian" : ", little-endian";
            return $"{Container} '{Codec}': {BitsPerSample}-bit {kind}{endian}";
        }
    }

    /// <summary>Samples produced in memory rather than read from a file.</summary>
    public static AudioSourceFormat InMemory { get; } = new("memory", "float32", SampleEncoding.Float32LE, 32);

    public override string ToString() => Description;
}

/// <summary>
/// Decoded audio: planar float32 channels at one sample rate, as torchaudio returns it (ints scaled to [−1, 1)).
/// Immutable from outside: <see cref="Channel"/> hands out read-only spans; the mono helpers return fresh arrays.
/// </summary>
public sealed class AudioClip
{
    private readonly float[][] _channels;

    /// <summary>Adopts <paramref name="channels"/> (not copied); all channels must have the same length.</summary>
    public AudioClip(float[][] channels, int sampleRate, AudioSourceFormat? format = null, string? sourcePath = null,
        IReadOnlyList<string>? notes = null)
    {
        ArgumentNullException.ThrowIfNull(channels);
        if (channels.Length == 0) throw new ArgumentException("a clip needs at least one channel", nameof(channels));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(sampleRate);
        int frames = channels[0]?.Length ?? throw new ArgumentException("channel 0 is null", nameof(channels));
        for (int c = 1; c < channels.Length; c++)
        {
            if (channels[c] is null) throw new ArgumentException($"channel {c} is null", nameof(channels));
            if (channels[c].Length != frames)
                throw new ArgumentException($"channel {c} has {channels[c].Length} frames, channel 0 has {frames}", nameof(channels));
        }
        _channels = channels;
        SampleRate = sampleRate;
        Frames = frames;
        Format = format ?? AudioSourceFormat.InMemory;
        SourcePath = sourcePath;
        Notes = notes ?? [];
    }

    /// <summary>A mono clip from a copy of <paramref name="samples"/>.</summary>
    public static AudioClip FromMono(ReadOnlySpan<float> samples, int sampleRate) => new([samples.ToArray()], sampleRate);

    public int SampleRate { get; }
    public int ChannelCount => _channels.Length;
    /// <summary>Samples per channel.</summary>
    public int Frames { get; }
    public TimeSpan Duration => TimeSpan.FromSeconds((double)Frames / SampleRate);
    /// <summary>The file the clip was read from, or null for in-memory audio.</summary>
    public string? SourcePath { get; }
    /// <summary>Container, codec and sample layout of the source.</summary>
    public AudioSourceFormat Format { get; }
    /// <summary>Short description of the source encoding (same as <c>Format.Description</c>).</summary>
    public string SourceEncoding => Format.Description;
    /// <summary>Things the reader tolerated and wants you to know (a trailing partial frame dropped, a fractional rate rounded…).</summary>
    public IReadOnlyList<string> Notes { get; }

    /// <summary>Samples of channel <paramref name="index"/> (0-based).</summary>
    public ReadOnlySpan<float> Channel(int index)
    {
        if ((uint)index >= (uint)_channels.Length)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"clip has {_channels.Length} channel(s)");
        return _channels[index];
    }

    /// <summary>Channel 0 only (a copy): the LLM path of docs/model.md §2.1 takes the first channel, never a mean.</summary>
    public float[] MonoChannel0() => (float[])_channels[0].Clone();

    /// <summary>
    /// Mean over channels (docs/model.md §7.2, 24 kHz prompt path). Summed in float32 in channel order and divided by the
    /// channel count, as <c>torch.mean(dim=0)</c> does on a float32 tensor (bit-identical for two channels).
    /// </summary>
    public float[] MonoMean()
    {
        if (_channels.Length == 1) return MonoChannel0();
        var sum = (float[])_channels[0].Clone();
        for (int c = 1; c < _channels.Length; c++)
            System.Numerics.Tensors.TensorPrimitives.Add(sum, _channels[c], sum);
        System.Numerics.Tensors.TensorPrimitives.Divide(sum, (float)_channels.Length, sum);
        return sum;
    }

    /// <summary>Every channel resampled with <see cref="Resampler"/> (torchaudio's default sinc resampler).</summary>
    public AudioClip Resample(int toRate)
    {
        if (toRate == SampleRate) return this;
        var outs = new float[_channels.Length][];
        for (int c = 0; c < outs.Length; c++) outs[c] = Resampler.Resample(_channels[c], SampleRate, toRate);
        return new AudioClip(outs, toRate, Format, SourcePath, Notes);
    }

    /// <summary>The samples as a float32 tensor <c>[channels, frames]</c> (copied), torchaudio.load's layout.</summary>
    public Tensor ToTensor()
    {
        var flat = new float[(long)_channels.Length * Frames];
        for (int c = 0; c < _channels.Length; c++) _channels[c].CopyTo(flat, (long)c * Frames);
        return Tensor.FromArray(flat, _channels.Length, Frames);
    }

    public override string ToString() =>
        $"AudioClip({ChannelCount} ch, {SampleRate} Hz, {Frames} frames, {Duration.TotalSeconds:0.###} s, {SourceEncoding}{(SourcePath is null ? "" : ", " + Path.GetFileName(SourcePath))})";
}
