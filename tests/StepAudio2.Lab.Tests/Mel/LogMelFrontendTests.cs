using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Mel;

public sealed class LogMelFrontendTests
{
    /// <summary>Issue acceptance: two float32 FFT paths differ by ~2e-5 near the clamp.</summary>
    private const double MelTolerance = 1e-4;

    private static readonly Lazy<SafetensorsFile> s_fixture =
        new(() => SafetensorsFile.Open(TestPaths.Fixture("mel", "mel_reference.safetensors")));

    internal static string DumpPath(string clip) => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", $"audio-{clip}.safetensors");

    internal static double MaxAbsDiff(Tensor a, Tensor b)
    {
        Assert.Equal(b.Shape, a.Shape);
        var x = a.ToFloatArray();
        var y = b.ToFloatArray();
        double max = 0;
        for (int i = 0; i < x.Length; i++) max = Math.Max(max, Math.Abs((double)x[i] - y[i]));
        return max;
    }

    // The dumps' chunk lengths L and the <audio_patch> counts they give by docs/model.md §2.6 (worked by hand from the formula):
    // 3 s clip: N 49 001 → L 309 → x 307, e 77, n 39. 27 s clip: 400 000 → 2 502 → 313; 32 000 → 202 → x 200, e 50, n 25.
    [Theory]
    [InlineData("short", new long[] { 49_001 }, new[] { 309 }, new[] { 39 })]
    [InlineData("two_chunks", new long[] { 400_000, 32_000 }, new[] { 2502, 202 }, new[] { 313, 25 })]
    public void Dump_ChunksAndMelsMatchReference(string clip, long[] chunkLengths, int[] melLengths, int[] tokens)
    {
        var dump = SafetensorsFile.Open(DumpPath(clip));
        var wav = dump.Get("input.wav").ToFloatArray();

        var chunks = LogMelFrontend.Chunk(wav);
        // input.wav_lens is the official forward's wav_lens: per chunk the mel frame count − 2, int32 (padding_mels)
        var wavLens = dump.Get("input.wav_lens");
        Assert.Equal(DType.I32, wavLens.DType);
        Assert.Equal(melLengths.Select(l => (long)(l - 2)).ToArray(), wavLens.ToInt64Array());
        Assert.Equal(chunkLengths, chunks.Select(c => (long)c.Length).ToArray());

        for (int i = 0; i < chunks.Length; i++)
        {
            var expected = dump.Get($"input.mel.{i}");
            var mel = LogMelFrontend.Compute(chunks[i]);
            Assert.Equal(DType.F32, mel.DType);
            Assert.Equal(new[] { 128, melLengths[i] }, mel.Shape);
            Assert.Equal(expected.Shape, mel.Shape);
            Assert.Equal(melLengths[i], LogMelFrontend.FrameCount(chunks[i].Length));
            double diff = MaxAbsDiff(mel, expected);
            Assert.True(diff <= MelTolerance, $"{clip} chunk {i}: max |Δ| = {diff:E3}");
            Assert.Equal(tokens[i], LogMelFrontend.AudioTokenCount(mel.Shape[1]));
        }
        Assert.False(dump.Contains($"input.mel.{chunks.Length}"));

        // ComputeChunks is the same pipeline in one call.
        var all = LogMelFrontend.ComputeChunks(wav);
        Assert.Equal(chunks.Length, all.Count);
        for (int i = 0; i < all.Count; i++) Assert.Equal(0.0, MaxAbsDiff(all[i], LogMelFrontend.Compute(chunks[i])));
    }

    [Fact]
    public void S3TokenizerVariant_NoTailPad_MatchesReference()
    {
        var wav = s_fixture.Value.Get("s3.wav").ToFloatArray();
        var expected = s_fixture.Value.Get("s3.mel");
        Assert.Equal(21_937, wav.Length);

        var mel = LogMelFrontend.Compute(wav, pad479: false);
        Assert.Equal(new[] { 128, 21_937 / 160 }, mel.Shape); // L = ⌊N/160⌋ = 137 (docs/model.md §7.3.1)
        Assert.Equal(137, LogMelFrontend.FrameCount(wav.Length, pad479: false));
        double diff = MaxAbsDiff(mel, expected);
        Assert.True(diff <= MelTolerance, $"s3 variant: max |Δ| = {diff:E3}");

        // The fixture has a silent stretch, so the per-chunk "max − 8" floor is really exercised.
        var values = mel.ToFloatArray();
        float floor = values.Min();
        Assert.Equal(values.Max() - 2.0f, floor, 5); // (max − 8 + 4)/4 = max' − 2
        Assert.Contains(values, v => v == floor);
    }

    [Theory]
    [InlineData(0, 2)]
    [InlineData(300, 4)]
    public void TinyChunks_MatchReference_AndGetNoAudioTokens(int samples, int melLength)
    {
        var wav = s_fixture.Value.Get($"tiny.wav_{samples}").ToFloatArray();
        var expected = s_fixture.Value.Get($"tiny.mel_{samples}");
        var mel = LogMelFrontend.Compute(wav);
        Assert.Equal(new[] { 128, melLength }, mel.Shape);
        double diff = MaxAbsDiff(mel, expected);
        Assert.True(diff <= MelTolerance, $"{samples} samples: max |Δ| = {diff:E3}");
        Assert.Equal(0, LogMelFrontend.AudioTokenCount(melLength));
    }

    [Fact]
    public void EmptyChunk_IsAllFloor()
    {
        // All-zero power → log10(1e-10) = −10 everywhere → (−10 + 4)/4.
        var mel = LogMelFrontend.Compute(ReadOnlySpan<float>.Empty);
        Assert.All(mel.ToFloatArray(), v => Assert.Equal(-1.5f, v));
    }

    /// <summary>Spec §2.6 table: clip samples N, mel length L, &lt;audio_patch&gt; count.</summary>
    public static TheoryData<int, int, int> TokenTable => new()
    {
        { 8_000, 52, 6 },        // 0.5 s
        { 16_000, 102, 13 },     // 1 s
        { 19_680, 125, 16 },     // 1.23 s
        { 80_000, 502, 63 },     // 5 s
        { 400_000, 2_502, 313 }, // 25 s, a full chunk
        { 320, 4, 0 },           // ≤ 20 ms: a block with no patches
        { 160, 3, 0 },
        { 0, 2, 0 },
    };

    [Theory]
    [MemberData(nameof(TokenTable))]
    public void AudioTokenCount_FollowsSpecTable(int samples, int melLength, int tokens)
    {
        Assert.Equal(melLength, LogMelFrontend.FrameCount(samples));
        Assert.Equal(tokens, LogMelFrontend.AudioTokenCount(melLength));
    }

    [Fact]
    public void AudioTokenCount_ThirtySeconds_IsTwoChunks313Plus63()
    {
        var ranges = LogMelFrontend.ChunkRanges(480_000);
        Assert.Equal(2, ranges.Length);
        var counts = ranges.Select(r => LogMelFrontend.AudioTokenCount(LogMelFrontend.FrameCount(r.GetOffsetAndLength(480_000).Length))).ToArray();
        Assert.Equal(new[] { 313, 63 }, counts);
    }

    [Fact]
    public void AudioTokenCount_MatchesReferenceForAllLengthsTo3000()
    {
        var lengths = s_fixture.Value.Get("tokens.L").ToInt64Array();
        var expected = s_fixture.Value.Get("tokens.n").ToInt64Array();
        Assert.Equal(3001, lengths.Length);
        for (int i = 0; i < lengths.Length; i++)
            Assert.True(expected[i] == LogMelFrontend.AudioTokenCount((int)lengths[i]), $"L = {lengths[i]}: expected {expected[i]}, got {LogMelFrontend.AudioTokenCount((int)lengths[i])}");
        // ...and the closed form the spec gives as equivalent for L ≥ 2.
        for (int l = 5; l <= 3000; l++) Assert.Equal((((l - 1) / 4) - 1) / 2 + 1, LogMelFrontend.AudioTokenCount(l));
    }

    [Theory]
    [InlineData(0, new[] { 0 })]
    [InlineData(1, new[] { 1 })]
    [InlineData(400_000, new[] { 400_000 })]
    [InlineData(400_001, new[] { 400_000, 1 })]
    [InlineData(1_000_000, new[] { 400_000, 400_000, 200_000 })]
    public void ChunkRanges_Cut25SecondPieces(int samples, int[] lengths)
    {
        var ranges = LogMelFrontend.ChunkRanges(samples);
        Assert.Equal(lengths, ranges.Select(r => r.GetOffsetAndLength(samples).Length).ToArray());
        Assert.Equal(lengths.Length, LogMelFrontend.Chunk(new float[samples]).Length);
        for (int i = 0; i < ranges.Length; i++) Assert.Equal(i * 400_000, ranges[i].GetOffsetAndLength(samples).Offset);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(200, false)] // reflect padding needs more than 200 samples
    public void TooShortForReflectPadding_Throws(int samples, bool pad479)
    {
        var ex = Assert.Throws<ArgumentException>(() => LogMelFrontend.Compute(new float[samples], pad479));
        Assert.Contains("too short", ex.Message);
    }

    [Theory]
    [InlineData(201, false, 1)]
    [InlineData(16_000, false, 100)]
    [InlineData(16_159, false, 100)]
    [InlineData(16_000, true, 102)]
    [InlineData(16_001, true, 103)]
    public void FrameCount_FollowsPaddingRule(int samples, bool pad479, int frames)
    {
        Assert.Equal(frames, LogMelFrontend.FrameCount(samples, pad479));
        var rng = new Random(samples);
        var wav = Enumerable.Range(0, samples).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        Assert.Equal(new[] { 128, frames }, LogMelFrontend.Compute(wav, pad479).Shape);
    }

    [Fact]
    public void ParallelAndSerial_GiveIdenticalBits()
    {
        var wav = SafetensorsFile.Open(DumpPath("short")).Get("input.wav").ToFloatArray();
        var stft = new MixedRadixStftPower(LogMelFrontend.NFft);
        var serial = LogMelFrontend.Compute(wav, true, stft, maxThreads: 1).ToFloatArray();
        var parallel = LogMelFrontend.Compute(wav, true, stft, maxThreads: 4).ToFloatArray();
        Assert.Equal(serial, parallel);
    }

    [Fact]
    public void Batch_PadsWithZerosAndPassesLMinus2()
    {
        var dump = SafetensorsFile.Open(DumpPath("two_chunks"));
        var mels = new[] { dump.Get("input.mel.1"), dump.Get("input.mel.0"), dump.Get("input.mel.1") };
        var batch = LogMelFrontend.Batch(mels);

        Assert.Equal(new[] { 3, 128, 2502 }, batch.Mels.Shape);
        Assert.Equal(DType.F32, batch.Mels.DType);
        Assert.Equal(DType.I64, batch.Lengths.DType);
        Assert.Equal(new long[] { 200, 2500, 200 }, batch.Lengths.ToInt64Array());
        var all = batch.Mels.AsSpan<float>();
        for (int i = 0; i < mels.Length; i++)
        {
            int len = mels[i].Shape[1];
            var src = mels[i].ToFloatArray();
            for (int b = 0; b < 128; b++)
            {
                var row = all.Slice((i * 128 + b) * 2502, 2502);
                Assert.True(row[..len].SequenceEqual(src.AsSpan(b * len, len)), $"mel {i} band {b} not copied");
                Assert.True(row[len..].IndexOfAnyExcept(0f) < 0, $"mel {i} band {b}: padding is not zero");
            }
        }
    }

    [Fact]
    public void Batch_RejectsMismatchedInput()
    {
        Assert.Throws<ArgumentException>(() => LogMelFrontend.Batch([]));
        Assert.Throws<ArgumentException>(() => LogMelFrontend.Batch([Tensor.Zeros(DType.F32, 128, 4), Tensor.Zeros(DType.F32, 80, 4)]));
        Assert.Throws<ArgumentException>(() => LogMelFrontend.Batch([Tensor.Zeros(DType.F64, 128, 4)]));
        Assert.Throws<ArgumentException>(() => LogMelFrontend.Batch([Tensor.Zeros(DType.F32, 128)]));
    }

    [Fact]
    public void AudioTokenCount_RejectsNegativeLength() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => LogMelFrontend.AudioTokenCount(-1));
}
