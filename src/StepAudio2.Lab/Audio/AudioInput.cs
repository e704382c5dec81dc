using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio;

/// <summary>The audio items of one request, ready for the encoder: 25 s chunks, their mels and the zero-padded batch.</summary>
/// <param name="Chunks">16 kHz samples per chunk, in order of appearance across all audio items.</param>
/// <param name="Mels">[128, L] log-mel per chunk.</param>
/// <param name="Batch">all chunk mels right-padded to the longest, lengths L − 2 (docs/model.md §2.7).</param>
/// <param name="TokenCounts">&lt;audio_patch&gt; placeholders per chunk (docs/model.md §2.6).</param>
/// <param name="ChunksPerItem">how many chunks each audio item produced.</param>
public sealed record PreparedAudio(IReadOnlyList<float[]> Chunks, IReadOnlyList<Tensor> Mels, MelBatch Batch, int[] TokenCounts, int[] ChunksPerItem)
{
    public int[] MelLengths => Batch.Lengths.ToInt64Array().Select(l => (int)l).ToArray();

    /// <summary>
    /// The audio inputs of a dump, as the reference dumper names them: <c>input.wav</c> (the whole 16 kHz waveform, when
    /// there is one audio item), <c>input.mel.N</c> per chunk, <c>input.wav_lens</c> — exactly the official forward's
    /// <c>wav_lens</c> argument: per chunk the mel frame count minus 2, int32 (official <c>padding_mels</c>).
    /// </summary>
    public IEnumerable<(string Name, Tensor Value)> InputEntries()
    {
        if (ChunksPerItem.Length == 1)
            yield return ("input.wav", Tensor.FromArray(Chunks.SelectMany(c => c).ToArray(), Chunks.Sum(c => c.Length)));
        for (int i = 0; i < Mels.Count; i++) yield return ($"input.mel.{i}", Mels[i]);
        yield return ("input.wav_lens", Tensor.FromArray(MelLengths, Mels.Count));
    }
}

/// <summary>
/// The official audio path into the LLM (docs/model.md §2): decode, channel 0, torchaudio-exact resampling to 16 kHz, 25 s
/// chunks, per-chunk log-mel, one batch for all chunks of a request.
/// </summary>
public static class AudioInput
{
    /// <summary>Channel 0 of <paramref name="path"/> as float32 at 16 kHz (the official <c>load_audio</c>).</summary>
    /// <remarks>A file with no samples is bad input (<see cref="AudioFile.RequireSamples"/>).</remarks>
    public static float[] Load16k(string path) => To16k(AudioFile.RequireSamples(AudioFile.Read(path), path));

    public static float[] To16k(AudioClip clip)
    {
        var x = clip.MonoChannel0();
        if (clip.SampleRate == LogMelFrontend.SampleRate) return x;
        try
        {
            return Resampler.Resample(x, clip.SampleRate, LogMelFrontend.SampleRate);
        }
        catch (ArgumentException e) when (clip.SourcePath is not null)
        {
            // A rate whose ratio to 16 kHz does not reduce (8001 Hz, 11057 Hz) needs a kernel too large to build: that is
            // a property of the file, so the error names it.
            throw new AudioFormatException(clip.SourcePath, $"sample rate {clip.SampleRate} Hz cannot be resampled to {LogMelFrontend.SampleRate} Hz: {e.Message}", inner: e);
        }
    }

    /// <summary>Chunks, mels and the batch for the audio items of one request (each a 16 kHz waveform).</summary>
    public static PreparedAudio Prepare(IEnumerable<float[]> items)
    {
        var chunks = new List<float[]>();
        var perItem = new List<int>();
        foreach (var wav in items)
        {
            var c = LogMelFrontend.Chunk(wav);
            chunks.AddRange(c);
            perItem.Add(c.Length);
        }
        if (chunks.Count == 0) throw new ArgumentException("no audio given");
        var mels = chunks.Select(c => LogMelFrontend.Compute(c)).ToList();
        return new PreparedAudio(chunks, mels, LogMelFrontend.Batch(mels), mels.Select(m => LogMelFrontend.AudioTokenCount(m.Shape[1])).ToArray(), perItem.ToArray());
    }
}
