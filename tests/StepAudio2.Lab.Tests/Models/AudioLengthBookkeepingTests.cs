using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Models.AudioEncoder;

namespace StepAudio2.Lab.Tests.Models;

/// <summary>The model's own length bookkeeping (encoder then adaptor) against the prompt's <c>compute_token_num</c> (docs/model.md §2.6, §3.6, §4).</summary>
public sealed class AudioLengthBookkeepingTests
{
    [Fact]
    public void EncoderThenAdaptorLengthsEqualTheAudioTokenCountForEveryMelLength()
    {
        // L = 2 … 2502 covers every chunk length up to 25 s, including the ≤ 20 ms chunks whose blocks hold no patches
        for (int melLength = 2; melLength <= LogMelFrontend.FrameCount(LogMelFrontend.ChunkSamples); melLength++)
            Assert.Equal(LogMelFrontend.AudioTokenCount(melLength), Adaptor.OutputLength(AudioEncoder.OutputLength(melLength - 2)));
    }

    [Theory]
    [InlineData(0, 0)] // Python: (0 − 1) // 2 + 1 = 0; C#'s truncating division would give 1 and write a row over <audio_end>
    [InlineData(1, 1)]
    [InlineData(2, 1)]
    [InlineData(3, 2)]
    [InlineData(77, 39)]
    [InlineData(625, 313)]
    public void AdaptorOutputLengthUsesFloorDivision(int encoderLength, int expected) =>
        Assert.Equal(expected, Adaptor.OutputLength(encoderLength));

    [Fact]
    public void NegativeEncoderLengthIsRejected() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => Adaptor.OutputLength(-1));
}
