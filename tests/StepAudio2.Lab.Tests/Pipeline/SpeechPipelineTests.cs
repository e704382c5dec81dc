using System.Text.Json;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tests.Cli;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Tests.Pipeline;

/// <summary>
/// Speech replies: the TTS and speech-to-speech prompts against docs/model.md §6.2 ids, and synthesize / s2st / TokensToWav on the
/// tiny checkpoint (random LLM: its codes are arbitrary, so what is checked is the contract between ids, codes and audio).
/// </summary>
public sealed class SpeechPipelineTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string FemalePrompt => Path.Combine(TestPaths.SharedAudio, "default_female.wav");
    private static string GreatWall => Path.Combine(TestPaths.SharedAudio, "give_me_a_brief_introduction_to_the_great_wall.wav");
    private static readonly Lazy<StepAudioTokenizer> Tokenizer = new(() => StepAudioTokenizer.Load(TestPaths.SharedModel));

    [Fact]
    public void SynthesisPromptIsTheOfficialTtsTurnsEndingInTtsStart()
    {
        var tok = Tokenizer.Value;
        const string text = "Hello, I am your assistant.";
        var ids = PromptBuilder.Chat(tok, StepAudio2Pipeline.SynthesisMessages(text)).Ids;
        // <|BOT|>system\n{TTS prompt}<|EOT|> <|BOT|>human\n{text}<|EOT|> <|BOT|>assistant\n<tts_start>  (docs/model.md §6.2, §6.3)
        int[] expected =
        [
            151666, 8948, 198, .. tok.Encode(StepAudio2Pipeline.TtsSystemPrompt), 151665,
            151666, 25312, 198, .. tok.Encode(text), 151665,
            151666, 77091, 198, 151693,
        ];
        Assert.Equal(expected, ids);
        Assert.Equal("以自然的语速读出下面的文字。\n", tok.Decode(tok.Encode(StepAudio2Pipeline.TtsSystemPrompt)));
        Assert.Equal(StepAudio2Tokens.TtsStart, ids[^1]);
        Assert.Throws<ArgumentException>(() => StepAudio2Pipeline.SynthesisMessages(""));
    }

    [Fact]
    public void SpeechToSpeechPromptOfFiveSecondsIsTheSpecsExample()
    {
        var tok = Tokenizer.Value;
        var wav = new float[5 * 16000];
        for (int i = 0; i < wav.Length; i++) wav[i] = 0.1f * MathF.Sin(2 * MathF.PI * 220 * i / 16000f);
        var ids = PromptBuilder.Chat(tok, StepAudio2Pipeline.SpeechToSpeechMessages(wav)).Ids;
        // docs/model.md §6.2: 151666 8948 198 ⟨"You are a helpful assistant."⟩ 151665 | 151666 25312 198 | 151688 151690×63 151689 | 151665 | 151666 77091 198 151693
        int[] expected =
        [
            151666, 8948, 198, .. tok.Encode("You are a helpful assistant."), 151665,
            151666, 25312, 198, 151688, .. Enumerable.Repeat(151690, 63), 151689, 151665,
            151666, 77091, 198, 151693,
        ];
        Assert.Equal(expected, ids);
    }

    /// <summary>
    /// The tiny LLM is random: greedy decoding of this prompt gives only text ids within 24 tokens, while seeded sampling
    /// (T 0.7, top-k 50) reaches speech codes. Both branches of the contract are checked and both must occur, so the
    /// "no speech" exit is exercised as well as the WAV path.
    /// </summary>
    [Fact]
    public void SynthesizeAndS2stKeepTheContractBetweenIdsCodesAndAudio()
    {
        using var tmp = TestPaths.Temp();
        var outcomes = new HashSet<bool>();
        string[][] runs =
        [
            ["synthesize", "--text", "Hello there.", "--greedy", "--max-tokens", "24"],
            ["synthesize", "--text", "Hello there.", "--seed", "0", "--max-tokens", "32"],
            ["s2st", "--audio", GreatWall, "--seed", "0", "--max-tokens", "32"],
        ];
        foreach (var run in runs)
        {
            var wav = tmp.File($"{run[0]}-{outcomes.Count}-{Guid.NewGuid():N}.wav");
            var (code, json, err) = InspectCliTests.Run([.. run, "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--prompt", FemalePrompt, "--out", wav, "--json"]);
            using var doc = JsonDocument.Parse(json);
            var root = doc.RootElement;
            int[] generated = root.GetProperty("generated_ids").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int[] audio = root.GetProperty("audio_codes").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            int[] speech = root.GetProperty("speech_codes").EnumerateArray().Select(e => e.GetInt32()).ToArray();
            var (textIds, codes) = OutputSplitter.Split(generated, [StepAudio2Tokens.EndOfTurn]);
            Assert.Equal(codes, audio);
            Assert.Equal(textIds, root.GetProperty("text_ids").EnumerateArray().Select(e => e.GetInt32()));
            Assert.Equal(audio.Where(c => c < 6561), speech);
            Assert.Equal(speech.Length * 960, root.GetProperty("samples").GetInt32());
            bool hasAudio = speech.Length > 0;
            outcomes.Add(hasAudio);
            Assert.True(code == (hasAudio ? StepLabCli.Ok : StepLabCli.Failed), err + json);
            Assert.Equal(hasAudio, File.Exists(wav));
            if (hasAudio)
            {
                var clip = AudioFile.Read(wav);
                Assert.Equal(24000, clip.SampleRate);
                Assert.Equal(speech.Length * 960, clip.Frames);
                Assert.True(root.GetProperty("flow_s").GetDouble() > 0);
            }
            else Assert.Contains("the reply holds no speech codes", root.GetProperty("error").GetString());
        }
        Assert.Equal(2, outcomes.Count);

        // plain output: the text on stdout, the reason on stderr
        var (plain, _, plainErr) = InspectCliTests.Run("synthesize", "--text", "Hello there.", "--greedy", "--max-tokens", "24",
            "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--prompt", FemalePrompt, "--out", tmp.File("plain.wav"));
        Assert.Equal(StepLabCli.Failed, plain);
        Assert.Contains("steplab: the reply holds no speech codes (24 ids generated, 0 audio ids, stop: MaxNewTokens); no WAV written", plainErr);
    }

    [Fact]
    public void SpeechCommandsRejectBadInputWithExit2()
    {
        using var tmp = TestPaths.Temp();
        string[] common = ["--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--out", tmp.File("o.wav")];
        var (c1, _, e1) = InspectCliTests.Run(["synthesize", "--text", "hi", "--prompt", tmp.File("none.wav"), .. common]);
        Assert.Equal(StepLabCli.BadInput, c1);
        Assert.Contains("no such voice prompt", e1);
        var (c2, _, e2) = InspectCliTests.Run(["s2st", "--audio", tmp.File("none.wav"), "--prompt", FemalePrompt, .. common]);
        Assert.Equal(StepLabCli.BadInput, c2);
        Assert.Contains("none.wav", e2);
        var (c3, _, e3) = InspectCliTests.Run(["synthesize", "--text", "hi", "--prompt", FemalePrompt, "--token2wav", tmp.File("nope"), .. common]);
        Assert.Equal(StepLabCli.BadInput, c3);
        Assert.Contains("no such token2wav folder", e3);
    }

    [Fact]
    public void PipelineTokensToWavUsesTheModelsToken2WavFolder()
    {
        using var pipeline = StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel);
        var r = pipeline.TokensToWav([5, 6561, 6, 7], FemalePrompt, seed: 1);
        Assert.Equal(Path.Combine(Path.GetFullPath(Tiny), "token2wav"), pipeline.Token2Wav.Directory);
        Assert.Equal([5, 6, 7], r.Codes);
        Assert.Equal(3 * 960, r.Waveform.Length);
        Assert.Throws<InvalidOperationException>(() => pipeline.LoadToken2Wav(Path.Combine(TestPaths.ReferenceData, "elsewhere")));
        Assert.Throws<ArgumentException>(() => pipeline.SpeechReply([ChatMessage.System("x"), ChatMessage.User("hi"), ChatMessage.AssistantPrompt()], FemalePrompt));
    }

    /// <summary>
    /// Think mode with a spoken answer: the answer call ends in <c>&lt;tts_start&gt;</c>, and the audio is exactly the
    /// answer's filtered codes through token2wav (960 samples per code) or absent when there are none. Seeded sampling on
    /// the random tiny LLM; both outcomes must occur over the seeds tried, so both branches are checked.
    /// </summary>
    [Fact]
    public void ThinkAndSpeakVoicesTheAnswersCodes()
    {
        using var pipeline = StepAudio2Pipeline.Load(Tiny, TestPaths.SharedModel);
        var outcomes = new HashSet<bool>();
        for (int seed = 0; seed < 6 && outcomes.Count < 2; seed++)
        {
            var think = SamplingOptions.Chat with { MaxNewTokens = 8, Seed = seed };
            var answer = SamplingOptions.Chat with { MaxNewTokens = 24, Seed = seed };
            var r = pipeline.ThinkAndSpeak([ChatMessage.System("You are a helpful assistant."), ChatMessage.User("Say hi.")], FemalePrompt, think, answer, seed: seed);
            Assert.Equal(StepAudio2Tokens.TtsStart, r.AnswerCall.Prompt.Ids[^1]);
            int[] speech = r.AudioCodes.Where(c => c < 6561).ToArray();
            Assert.Equal(speech.Length > 0, r.Audio is not null);
            if (r.Audio is { } audio)
            {
                Assert.Equal(speech, audio.Codes);
                Assert.Equal(speech.Length * 960, audio.Waveform.Length);
                Assert.All(audio.Waveform, v => Assert.True(float.IsFinite(v) && MathF.Abs(v) <= 0.99f));
            }
            outcomes.Add(r.Audio is not null);
        }
        Assert.Equal(2, outcomes.Count);
        Assert.Throws<FileNotFoundException>(() => pipeline.ThinkAndSpeak([ChatMessage.User("x")], "no-such-prompt.wav"));
    }
}
