using System.Diagnostics;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Prompting;
using Trace = StepAudio2.Lab.Tracing.Trace;

namespace StepAudio2.Lab.Pipeline;

/// <summary>Wall-clock time of each stage of a speech reply: the LLM request, the voice prompt's features, flow and HiFT.</summary>
public sealed record SpeechTimings(StageTimings Llm, TimeSpan Prompt, TimeSpan Flow, TimeSpan Hift)
{
    public TimeSpan Token2Wav => Prompt + Flow + Hift;
    public TimeSpan Total => Llm.Total + Token2Wav;
}

/// <summary>
/// A speech reply: the text part, every speech code the LLM generated, the codes token2wav received (filtered to 0..6560)
/// and the 24 kHz waveform. When the reply holds no speech code, <see cref="Waveform"/> is empty and <see cref="HasAudio"/> false.
/// </summary>
/// <param name="AudioCodes">all generated speech codes (ids &gt; 151695 minus 151696), padding included.</param>
/// <param name="SpeechCodes">the codes given to token2wav (&lt; 6561).</param>
/// <param name="Chat">the LLM request (prompt, generated ids, stop reason).</param>
/// <param name="Audio">the token2wav run, or null when there was nothing to synthesise.</param>
public sealed record SpeechResult(string Text, int[] TextIds, int[] AudioCodes, int[] SpeechCodes, ChatResult Chat, Token2WavResult? Audio, SpeechTimings Timings)
{
    public int SampleRate => Models.Token2Wav.Token2Wav.SampleRate;
    public float[] Waveform => Audio?.Waveform ?? [];
    public bool HasAudio => Audio is not null;
    public double AudioSeconds => Waveform.Length / (double)SampleRate;
}

public sealed partial class StepAudio2Pipeline
{
    /// <summary>
    /// The system turn of the official TTS examples (“read the following text at a natural pace”, docs/model.md §6.3); the chat
    /// model gets it as a system turn, the text as the human turn, and <c>&lt;tts_start&gt;</c> opens the assistant turn.
    /// </summary>
    public const string TtsSystemPrompt = "以自然的语速读出下面的文字。\n";

    /// <summary>The token2wav folder inside a checkpoint folder.</summary>
    public const string Token2WavFolder = "token2wav";

    private Token2Wav? _token2wav;
    private readonly Lock _token2wavLock = new();

    /// <summary>
    /// Loads the vocoder side once: <paramref name="token2wavDir"/> (default <c>&lt;model&gt;/token2wav</c>) with its ONNX
    /// prompt models. Later calls return the loaded one; asking for another folder then is an error.
    /// </summary>
    public Token2Wav LoadToken2Wav(string? token2wavDir = null, string? promptCacheDirectory = null)
    {
        var dir = Path.GetFullPath(token2wavDir ?? Path.Combine(ModelDirectory, Token2WavFolder));
        lock (_token2wavLock)
        {
            if (_token2wav is not null)
            {
                if (!string.Equals(_token2wav.Directory, dir, StringComparison.Ordinal))
                    throw new InvalidOperationException($"token2wav is already loaded from {_token2wav.Directory}, not {dir}");
                return _token2wav;
            }
            return _token2wav = Token2Wav.Load(dir, promptModels: true, promptCacheDirectory, Model.Backend); // the same backend as the LLM
        }
    }

    /// <summary>The loaded token2wav (loading <c>&lt;model&gt;/token2wav</c> on first use).</summary>
    public Token2Wav Token2Wav => _token2wav ?? LoadToken2Wav();

    /// <summary>The official TTS conversation: system <see cref="TtsSystemPrompt"/>, human = <paramref name="text"/>, assistant <c>&lt;tts_start&gt;</c>.</summary>
    public static IReadOnlyList<ChatMessage> SynthesisMessages(string text, string systemPrompt = TtsSystemPrompt)
    {
        ArgumentException.ThrowIfNullOrEmpty(text);
        return [ChatMessage.System(systemPrompt), ChatMessage.User(text), ChatMessage.AssistantSpeechPrompt()];
    }

    /// <summary>Spoken conversation (docs/model.md §6.2 example): system turn, human = the audio, assistant <c>&lt;tts_start&gt;</c>.</summary>
    public static IReadOnlyList<ChatMessage> SpeechToSpeechMessages(float[] audio16k, string? source = null, string systemPrompt = DefaultSystemPrompt) =>
        [ChatMessage.System(systemPrompt), ChatMessage.User(new AudioItem(audio16k, source)), ChatMessage.AssistantSpeechPrompt()];

    /// <summary>
    /// Text → speech in the voice of <paramref name="voicePromptPath"/> with the official TTS prompt; sampling defaults to
    /// the examples' (T 0.7, top-p 0.9, top-k 50, repetition 1.05, 2048 new tokens).
    /// </summary>
    /// <param name="seed">token2wav's noise seed (the LLM's is <see cref="SamplingOptions.Seed"/>).</param>
    public SpeechResult Synthesize(string text, string voicePromptPath, SamplingOptions? options = null, int seed = 0,
        Action<TokenGenerated>? onToken = null, IProgress<Token2WavProgress>? progress = null, CancellationToken cancellationToken = default) =>
        SpeechReply(SynthesisMessages(text), voicePromptPath, options, seed, onToken, progress, cancellationToken);

    /// <summary>Speech in → text + speech out: the audio as the human turn, a spoken reply in the prompt's voice.</summary>
    public SpeechResult SpeechToSpeech(string audioPath, string voicePromptPath, SamplingOptions? options = null, string systemPrompt = DefaultSystemPrompt,
        int seed = 0, Action<TokenGenerated>? onToken = null, IProgress<Token2WavProgress>? progress = null, CancellationToken cancellationToken = default) =>
        SpeechReply(SpeechToSpeechMessages(AudioInput.Load16k(audioPath), audioPath, systemPrompt), voicePromptPath, options, seed, onToken, progress, cancellationToken);

    /// <summary>
    /// Any conversation ending in the speech prompt (<see cref="ChatMessage.AssistantSpeechPrompt"/>): generate, split text
    /// from speech codes (docs/model.md §6.4), keep codes &lt; 6561 and synthesise them. Token2wav and the voice prompt are checked
    /// before the LLM runs, so a missing file fails fast.
    /// </summary>
    public SpeechResult SpeechReply(IReadOnlyList<ChatMessage> messages, string voicePromptPath, SamplingOptions? options = null, int seed = 0,
        Action<TokenGenerated>? onToken = null, IProgress<Token2WavProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(messages);
        if (messages.Count == 0 || messages[^1] is not { Role: "assistant", Text: "<tts_start>", Eot: false })
            throw new ArgumentException("a speech reply needs a conversation ending in ChatMessage.AssistantSpeechPrompt()", nameof(messages));
        if (!File.Exists(voicePromptPath)) throw new FileNotFoundException($"no such voice prompt: {voicePromptPath}", voicePromptPath);
        var t2w = Token2Wav;

        var chat = Chat(messages, options ?? SamplingOptions.Chat, null, onToken, cancellationToken);
        var speech = SpeechCodes.Filter(chat.AudioCodes);
        if (speech.Length == 0)
            return new SpeechResult(chat.Text, chat.TextIds, chat.AudioCodes, speech, chat, null, new SpeechTimings(chat.Timings, TimeSpan.Zero, TimeSpan.Zero, TimeSpan.Zero));

        var clock = Stopwatch.StartNew();
        var prompt = t2w.PreparePrompt(voicePromptPath);
        var promptTime = clock.Elapsed;
        var audio = t2w.TokensToWav(speech, prompt, seed: seed, progress: progress);
        return new SpeechResult(chat.Text, chat.TextIds, chat.AudioCodes, speech, chat, audio, new SpeechTimings(chat.Timings, promptTime, audio.FlowTime, audio.HiftTime));
    }

    /// <summary>
    /// Think mode with a spoken answer (docs/model.md §6.7): <see cref="Think"/> with the <c>&lt;tts_start&gt;</c> answer prompt, then
    /// the answer's speech codes (&lt; 6561) through token2wav in the voice of <paramref name="voicePromptPath"/>.
    /// <see cref="ThinkResult.Audio"/> stays null when the answer holds no speech codes.
    /// </summary>
    public ThinkResult ThinkAndSpeak(IReadOnlyList<ChatMessage> messages, string voicePromptPath, SamplingOptions? thinkOptions = null,
        SamplingOptions? answerOptions = null, int seed = 0, Action<TokenGenerated>? onThought = null, Action<TokenGenerated>? onAnswer = null,
        CancellationToken cancellationToken = default)
    {
        if (!File.Exists(voicePromptPath)) throw new FileNotFoundException($"no such voice prompt: {voicePromptPath}", voicePromptPath);
        var t2w = Token2Wav; // loaded (and checked) before the LLM runs, so a missing folder fails fast
        var result = Think(messages, speechReply: true, thinkOptions, answerOptions, onThought, onAnswer, cancellationToken);
        var speech = SpeechCodes.Filter(result.AudioCodes);
        if (speech.Length == 0) return result;
        return result with { Audio = t2w.TokensToWav(speech, t2w.PreparePrompt(voicePromptPath), seed: seed) };
    }

    /// <summary>Speech codes (filtered to 0..6560) → 24 kHz audio in the voice of <paramref name="voicePromptPath"/>.</summary>
    public Token2WavResult TokensToWav(ReadOnlySpan<int> codes, string voicePromptPath, int seed = 0, Trace? trace = null, IProgress<Token2WavProgress>? progress = null)
    {
        var t2w = Token2Wav;
        var prompt = t2w.PreparePrompt(voicePromptPath);
        return t2w.TokensToWav(codes, prompt, seed: seed, trace: trace, progress: progress);
    }
}
