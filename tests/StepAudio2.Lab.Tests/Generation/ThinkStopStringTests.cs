using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tests.Tools;

namespace StepAudio2.Lab.Tests.Generation;

/// <summary>Think mode's stop string on real token ids (docs/model.md §6.7: <c>&lt;/think&gt;</c> is three ordinary tokens) and its prompts.</summary>
public sealed class ThinkStopStringTests
{
    private const int FullVocab = 158720;

    private static ITokenDecoder RealDecoder => new DelegateTokenDecoder(ids => SharedTokenizer.Value.Decode(ids.ToArray()));

    [Fact]
    public void CloseTagIsThreeOrdinaryTokens()
    {
        // docs/model.md §6.1/§6.7: "</" = 522, "think" = 26865, ">" = 29; never the special ids 151669/151670
        Assert.Equal([522, 26865, 29], SharedTokenizer.Value.Encode(ThinkMode.Close));
    }

    [Fact]
    public void RecordedThoughtStopsOnTheTokenThatCompletesTheTagAcrossTokenBoundaries()
    {
        var tok = SharedTokenizer.Value;
        // a recorded thinking reply, as the model would emit it, followed by what it would say next if not stopped
        int[] thought = tok.Encode("The user asks why the sky is blue. Rayleigh scattering.");
        int[] close = [522, 26865, 29];
        int[] after = tok.Encode("\n\nThe sky is blue because");
        int[] script = [.. thought, .. close, .. after];
        var events = new List<TokenGenerated>();
        var result = new Generator(ScriptedLogitsSource.Forced(FullVocab, script))
            .Generate([7, 8, 9], ThinkMode.WithStop(SamplingOptions.Greedy with { MaxNewTokens = 200 }), decoder: RealDecoder, onToken: events.Add);

        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.Equal(ThinkMode.Close, result.MatchedStopString);
        Assert.Equal([.. thought, .. close], result.GeneratedIds); // not before the '>' token ("</", "</think" are no match), nothing after it
        Assert.Equal("The user asks why the sky is blue. Rayleigh scattering.</think>", result.Text);
        Assert.Equal(result.Text, string.Concat(events.Select(e => e.TextDelta)));
        Assert.Equal("The user asks why the sky is blue. Rayleigh scattering.", ThinkMode.Thought(result.Text!));
    }

    [Fact]
    public void TagInsideALargerTokenStopsToo()
    {
        var tok = SharedTokenizer.Value;
        // ">\n\n" may be one token in byte-level BPE: the stop string then ends inside the last token (HF stop_strings)
        int[] script = tok.Encode("ok</think>\n\nanswer");
        var result = new Generator(ScriptedLogitsSource.Forced(FullVocab, script))
            .Generate([7, 8, 9], ThinkMode.WithStop(SamplingOptions.Greedy with { MaxNewTokens = 50 }), decoder: RealDecoder);
        Assert.Equal(StopReason.StopString, result.StopReason);
        Assert.StartsWith("ok</think>", result.Text);
        Assert.DoesNotContain("answer", result.Text);
        Assert.Equal("ok", ThinkMode.Thought(result.Text!));
    }

    [Fact]
    public void PromptsOfBothCallsAreTheOfficialStrings()
    {
        var tok = SharedTokenizer.Value;
        int[] Ids(ChatMessage m) => PromptBuilder.Chat(tok, [m]).Ids;
        Assert.Equal(tok.Encode("<|BOT|>assistant\n\n<think>\n"), Ids(ThinkMode.ThinkPrompt()));
        Assert.Equal(tok.Encode("<|BOT|>assistant\n\n<think>\nhmm</think>\n\n"), Ids(ThinkMode.AnswerPrompt("hmm", speechReply: false)));
        int[] speech = Ids(ThinkMode.AnswerPrompt("hmm", speechReply: true));
        Assert.Equal(tok.Encode("<|BOT|>assistant\n\n<think>\nhmm</think>\n\n<tts_start>"), speech);
        Assert.Equal(StepAudio2.Lab.Text.StepAudioTokenizer.TtsStart, speech[^1]);
        Assert.DoesNotContain(StepAudio2.Lab.Text.StepAudioTokenizer.Eot, speech);

        var withStop = ThinkMode.WithStop(SamplingOptions.Chat with { StopStrings = ["x"] });
        Assert.Equal(["x", "</think>"], withStop.StopStrings);
        Assert.Same(withStop, ThinkMode.WithStop(withStop));
        Assert.Equal("unfinished", ThinkMode.Thought("unfinished"));
    }
}
