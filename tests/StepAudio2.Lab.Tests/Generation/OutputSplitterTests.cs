using StepAudio2.Lab.Generation;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>Partition of generated ids into text ids and speech codes (docs/model.md §6.4, §6.5), on hand-made id lists.</summary>
public sealed class OutputSplitterTests
{
    private static readonly int[] Eot = [StepAudio2Tokens.EndOfTurn];

    [Fact]
    public void TextReplyDropsOnlyTheFinalStopToken()
    {
        var (text, codes) = OutputSplitter.Split([9707, 11, 1879, 0, 151665], Eot);
        Assert.Equal([9707, 11, 1879, 0], text);
        Assert.Empty(codes);

        // a reply cut by the length limit keeps its last token (the official runner would drop 1879)
        (text, _) = OutputSplitter.Split([9707, 11, 1879], Eot);
        Assert.Equal([9707, 11, 1879], text);

        // a stop id that is not last stays (as a text-range id); only one final stop id is removed
        (text, _) = OutputSplitter.Split([151665, 5, 151665, 151665], Eot);
        Assert.Equal([151665, 5, 151665], text);

        (text, codes) = OutputSplitter.Split([151665], Eot);
        Assert.Empty(text);
        Assert.Empty(codes);
        (text, codes) = OutputSplitter.Split([], Eot);
        Assert.Empty(text);
        Assert.Empty(codes);
    }

    [Fact]
    public void Ta4SpeechReplySplitsIntoTextAndCodesAndMarkersBelongToNeither()
    {
        // recorded layout: <tts_start> t0 a0..a3 t1 a4..a7 <tts_pad> a8 <audio_6561>×3 <tts_end> "\n" <|EOT|>
        int[] generated =
        [
            151693, 104198, 151696, 151696 + 6560, 151696 + 42, 151696 + 1,
            3837, 151696 + 2, 151696 + 3, 151696 + 4, 151696 + 5,
            151695, 151696 + 6, 158257, 158257, 158257,
            151694, 198, 151665,
        ];
        var (text, codes) = OutputSplitter.Split(generated, Eot);
        Assert.Equal([104198, 3837, 198], text);
        Assert.Equal([0, 6560, 42, 1, 2, 3, 4, 5, 6, 6561, 6561, 6561], codes);
        Assert.Equal([0, 6560, 42, 1, 2, 3, 4, 5, 6], OutputSplitter.SpeechCodesForToken2Wav(codes));
    }

    [Fact]
    public void EveryMarkerIdIsDroppedAndTheRangeEdgesAreExact()
    {
        int[] generated = [151687, .. Enumerable.Range(151688, 8), 151696, 158351];
        var (text, codes) = OutputSplitter.Split(generated, Eot);
        Assert.Equal([151687], text);            // last special id below <audio_start> counts as text, as in the runner
        Assert.Equal([0, 6655], codes);          // <audio_0> and the last added token <audio_6655>
        Assert.Equal([0], OutputSplitter.SpeechCodesForToken2Wav(codes));
        Assert.All(Enumerable.Range(151688, 8), id => Assert.True(StepAudio2Tokens.IsMarker(id)));
        Assert.False(StepAudio2Tokens.IsMarker(151687));
        Assert.False(StepAudio2Tokens.IsMarker(151696));
    }

    [Fact]
    public void Token2WavCodesKeepOrderAndDropPaddingAndHigherCodes()
    {
        Assert.Equal([6560, 0, 17], OutputSplitter.SpeechCodesForToken2Wav([6561, 6560, 6600, 0, 6655, 17, 6561]));
        Assert.Empty(OutputSplitter.SpeechCodesForToken2Wav([6561, 6562]));
    }

    [Fact]
    public void CustomStopIdsAndBadIds()
    {
        var (text, _) = OutputSplitter.Split([5, 151643], [151643]);
        Assert.Equal([5], text);
        (text, _) = OutputSplitter.Split([5, 151665], [151643]);
        Assert.Equal([5, 151665], text);
        Assert.Throws<ArgumentOutOfRangeException>(() => OutputSplitter.Split([5, -1], Eot));
    }
}
