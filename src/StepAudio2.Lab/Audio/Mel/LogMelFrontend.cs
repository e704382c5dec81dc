using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using System.Runtime.InteropServices;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Audio.Mel;

/// <summary>
/// The 128-bin log-mel frontend of the LLM audio path (docs/model.md §2.2–§2.7), mirroring the official Step-Audio2 <c>utils.py</c>:
/// <see cref="Compute"/> is <c>log_mel_spectrogram</c> (whisper's recipe plus a 479-sample tail pad; with
/// <c>pad479: false</c> it is <c>s3tokenizer.log_mel_spectrogram</c>, docs/model.md §7.3.1), <see cref="AudioTokenCount"/> is
/// <c>compute_token_num</c>, <see cref="Batch"/> is <c>padding_mels</c>, and <see cref="Chunk"/> is the official 25 s
/// chunking (docs/model.md §2.2). Input is 16 kHz mono float32.
/// </summary>
public static class LogMelFrontend
{
    public const int SampleRate = 16_000;
    /// <summary>25 s: each chunk gets its own mel, normalisation and audio block in the prompt (docs/model.md §2.2).</summary>
    public const int ChunkSamples = 400_000;
    public const int NFft = 400;
    public const int HopLength = 160;
    public const int MelCount = 128;
    /// <summary>Zeros appended to each chunk before the STFT on the LLM path (not in the S3 tokenizer).</summary>
    public const int TailPadding = 479;

    private const int CenterPad = NFft / 2;
    private const int FramesPerTask = 64;

    private static readonly Lazy<IStftPower> s_stft = new(() => new MixedRadixStftPower(NFft));

    /// <summary>Mel frames for a chunk of <paramref name="samples"/> samples: ⌊(N + 479)/160⌋, or ⌊N/160⌋ without the pad.</summary>
    public static int FrameCount(int samples, bool pad479 = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(samples);
        return (samples + (pad479 ? TailPadding : 0)) / HopLength; // 1 + ⌊N'/hop⌋ STFT frames, the last one dropped
    }

    /// <summary>
    /// Log-mel of one chunk as float32 <c>[128, L]</c>: optional 479-zero tail pad, centred STFT (reflect pad 200,
    /// periodic Hann 400, hop 160), power, last frame dropped, Slaney mel, log10(max(S, 1e−10)),
    /// max(S, max(S) − 8), (S + 4)/4.
    /// </summary>
    /// <exception cref="ArgumentException">The padded chunk has ≤ 200 samples, too short to reflect-pad (torch refuses too).</exception>
    public static Tensor Compute(ReadOnlySpan<float> chunk, bool pad479 = true) => Compute(chunk, pad479, s_stft.Value);

    internal static Tensor Compute(ReadOnlySpan<float> chunk, bool pad479, IStftPower stft, int maxThreads = -1)
    {
        int n = chunk.Length;
        if (n > int.MaxValue - TailPadding - NFft)
            throw new ArgumentException($"chunk of {n} samples is too long; cut it with {nameof(Chunk)} first", nameof(chunk));
        int padded = n + (pad479 ? TailPadding : 0);
        if (padded <= CenterPad)
            throw new ArgumentException(
                $"a chunk of {n} samples{(pad479 ? " (+479 padding)" : "")} is too short for the centred STFT: reflect padding of {CenterPad} needs more than {CenterPad} samples",
                nameof(chunk));
        int frames = padded / HopLength;

        // x_pad = [chunk, 0 × 479], then reflect-pad 200 each side (the edge sample is not repeated).
        var signal = new float[padded + 2 * CenterPad];
        chunk.CopyTo(signal.AsSpan(CenterPad));
        for (int k = 1; k <= CenterPad; k++)
        {
            signal[CenterPad - k] = signal[CenterPad + k];
            signal[CenterPad + padded - 1 + k] = signal[CenterPad + padded - 1 - k];
        }

        var result = Tensor.Zeros(DType.F32, MelCount, frames);
        var storage = (ManagedStorage)result.Storage;
        var bank = SlaneyMelFilterBank.Llm128;
        int bins = stft.BinCount;
        int tasks = (frames + FramesPerTask - 1) / FramesPerTask;

        void RunTask(int task, IStftPowerWorker worker, double[] power, double[] mel)
        {
            int first = task * FramesPerTask, count = Math.Min(FramesPerTask, frames - first);
            worker.Compute(signal, first * HopLength, HopLength, count, power);
            var output = MemoryMarshal.Cast<byte, float>(storage.WritableSpan);
            for (int f = 0; f < count; f++)
            {
                bank.Apply(power.AsSpan(f * bins, bins), mel);
                for (int b = 0; b < MelCount; b++) output[b * frames + first + f] = (float)mel[b];
            }
        }

        if (tasks == 1 || maxThreads == 1)
        {
            var worker = stft.CreateWorker();
            var power = new double[FramesPerTask * bins];
            var mel = new double[MelCount];
            for (int t = 0; t < tasks; t++) RunTask(t, worker, power, mel);
        }
        else
        {
            Parallel.For(0, tasks, new ParallelOptions { MaxDegreeOfParallelism = maxThreads },
                () => (Worker: stft.CreateWorker(), Power: new double[FramesPerTask * bins], Mel: new double[MelCount]),
                (t, _, state) => { RunTask(t, state.Worker, state.Power, state.Mel); return state; },
                _ => { });
        }

        // The log and the per-chunk floor run in float32 on the float32 mel, as the reference does.
        var s = MemoryMarshal.Cast<byte, float>(storage.WritableSpan);
        TensorPrimitives.Max(s, 1e-10f, s);
        TensorPrimitives.Log10(s, s);
        float floor = TensorPrimitives.Max(s) - 8.0f;
        TensorPrimitives.Max(s, floor, s);
        TensorPrimitives.Add(s, 4.0f, s);
        TensorPrimitives.Multiply(s, 0.25f, s); // exact: same bits as dividing by 4
        return result;
    }

    /// <summary>
    /// Sample ranges of the 25 s chunks of a waveform (<c>chunk_audio</c>): consecutive 400 000-sample pieces, the last
    /// holding the remainder. An empty waveform gives one empty chunk, as the official slicing loop does.
    /// </summary>
    public static Range[] ChunkRanges(int sampleCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(sampleCount);
        int count = Math.Max(1, (sampleCount + ChunkSamples - 1) / ChunkSamples);
        var ranges = new Range[count];
        for (int i = 0; i < count; i++)
        {
            int start = i * ChunkSamples;
            ranges[i] = new Range(start, Math.Min(sampleCount, start + ChunkSamples));
        }
        return ranges;
    }

    /// <summary>The 25 s chunks of a waveform as copies (see <see cref="ChunkRanges"/>).</summary>
    public static float[][] Chunk(ReadOnlySpan<float> wav)
    {
        var ranges = ChunkRanges(wav.Length);
        var chunks = new float[ranges.Length][];
        for (int i = 0; i < ranges.Length; i++) chunks[i] = wav[ranges[i]].ToArray();
        return chunks;
    }

    /// <summary>One <c>[128, L]</c> log-mel per 25 s chunk of a waveform, in order.</summary>
    public static IReadOnlyList<Tensor> ComputeChunks(ReadOnlySpan<float> wav)
    {
        var ranges = ChunkRanges(wav.Length);
        var mels = new Tensor[ranges.Length];
        for (int i = 0; i < ranges.Length; i++) mels[i] = Compute(wav[ranges[i]]);
        return mels;
    }

    /// <summary>
    /// Number of <c>&lt;audio_patch&gt;</c> placeholders for a chunk with <paramref name="melLength"/> frames
    /// (<c>compute_token_num</c>, docs/model.md §2.6): x = L − 2; e = ⌊⌊(x + 1)/2⌋/2⌋; n = ⌊(e − 1)/2⌋ + 1, with floor division.
    /// 0 for L ≤ 4 (chunks of ≤ 20 ms).
    /// </summary>
    public static int AudioTokenCount(int melLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(melLength);
        int x = melLength - 2;
        int e = FloorDiv(FloorDiv(x + 1, 2), 2);
        return FloorDiv(e + 2 * 1 - 3, 2) + 1;
    }

    /// <summary>
    /// Batches the chunk mels of one request (<c>padding_mels</c>, docs/model.md §2.7): zero right-padding to the longest L
    /// (<c>[B, 128, T_pad]</c>, float32) and encoder lengths L − 2 (int64 <c>[B]</c>).
    /// </summary>
    public static MelBatch Batch(IReadOnlyList<Tensor> mels)
    {
        ArgumentNullException.ThrowIfNull(mels);
        if (mels.Count == 0) throw new ArgumentException("no mels to batch", nameof(mels));
        int bands = -1, tPad = 0;
        for (int i = 0; i < mels.Count; i++)
        {
            var m = mels[i] ?? throw new ArgumentException($"mel {i} is null", nameof(mels));
            if (m.DType != DType.F32 || m.Rank != 2)
                throw new ArgumentException($"mel {i} must be float32 [bands, L], got {m}", nameof(mels));
            if (bands >= 0 && m.Shape[0] != bands)
                throw new ArgumentException($"mel {i} has {m.Shape[0]} bands, mel 0 has {bands}", nameof(mels));
            bands = m.Shape[0];
            tPad = Math.Max(tPad, m.Shape[1]);
        }

        var batch = Tensor.Zeros(DType.F32, mels.Count, bands, tPad);
        var dst = batch.AsWritableSpan<float>();
        var lengths = new long[mels.Count];
        for (int i = 0; i < mels.Count; i++)
        {
            var src = mels[i].Contiguous().AsSpan<float>();
            int len = mels[i].Shape[1];
            for (int b = 0; b < bands; b++)
                src.Slice(b * len, len).CopyTo(dst.Slice((i * bands + b) * tPad, len));
            lengths[i] = len - 2;
        }
        return new MelBatch(batch, Tensor.FromArray(lengths, mels.Count));
    }

    // Python's //: rounds toward −∞ (C#'s / truncates toward zero), which matters for x + 1 < 0 and e − 1 < 0.
    private static int FloorDiv(int a, int b)
    {
        int q = a / b;
        return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
    }
}

/// <summary>The encoder input of one request (what <c>padding_mels</c> returns): <c>Mels</c> float32 [B, 128, T_pad], <c>Lengths</c> int64 [B] = L − 2.</summary>
public sealed record MelBatch(Tensor Mels, Tensor Lengths);
