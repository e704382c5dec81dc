using System.Diagnostics;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;
using Trace = StepAudio2.Lab.Tracing.Trace;

namespace StepAudio2.Lab.Pipeline;

/// <summary>Wall-clock time of each stage of one request.</summary>
public sealed record StageTimings(TimeSpan Audio, TimeSpan Encoder, TimeSpan Prefill, TimeSpan Decode)
{
    public TimeSpan Total => Audio + Encoder + Prefill + Decode;
}

/// <summary>What a request returns: the reply text, its ids, the speech codes (for token2wav), timings and the trace.</summary>
public sealed record ChatResult(string Text, int[] TextIds, int[] AudioCodes, GenerationResult Generation, Prompt Prompt, StageTimings Timings, Trace? Trace);

/// <summary>The two-call think-mode result (docs/model.md §6.7): the thought (kept out of any history), the answer and, from
/// <see cref="StepAudio2Pipeline.ThinkAndSpeak"/>, the spoken answer.</summary>
public sealed record ThinkResult(string Thinking, string Text, int[] AudioCodes, ChatResult ThinkCall, ChatResult AnswerCall,
    Models.Token2Wav.Token2WavResult? Audio = null);

/// <summary>
/// The speech-in, text-out path of Step-Audio 2 mini for people: load a checkpoint folder once, then
/// <see cref="Transcribe(string, SamplingOptions?, Trace?)"/>, <see cref="Translate"/> and <see cref="Chat"/> with the
/// official prompts (docs/model.md §6.2–6.4). bf16 weights stay memory-mapped.
/// </summary>
public sealed partial class StepAudio2Pipeline : IDisposable
{
    /// <summary>The ASR system prompt of the official examples ("record what you hear").</summary>
    public const string AsrSystemPrompt = "请记录下你所听到的语音内容。";
    public const string DefaultSystemPrompt = "You are a helpful assistant.";

    private readonly ShardedCheckpoint _checkpoint;
    private readonly StepAudio2LogitsSource _source;

    private StepAudio2Pipeline(ShardedCheckpoint checkpoint, StepAudio2Model model, StepAudioTokenizer tokenizer, TimeSpan loadTime)
    {
        _checkpoint = checkpoint;
        Model = model;
        Tokenizer = tokenizer;
        LoadTime = loadTime;
        _source = new StepAudio2LogitsSource(model);
        Generator = new Generator(_source);
    }

    public StepAudio2Model Model { get; }
    public StepAudioTokenizer Tokenizer { get; }
    public Generator Generator { get; }
    public StepAudio2Config Config => Model.Config;
    public TimeSpan LoadTime { get; }
    /// <summary>The checkpoint folder (full path); its <c>token2wav/</c> is the default vocoder folder.</summary>
    public string ModelDirectory { get; private init; } = "";

    /// <summary>Loads config, weights (mapped) and tokenizer; the tokenizer files default to the checkpoint folder.</summary>
    /// <param name="backend">where the model runs (<see cref="Engine.Ops.Default"/>, the CPU, unless given; see <see cref="Engine.Backends"/>).</param>
    public static StepAudio2Pipeline Load(string modelDir, string? tokenizerDir = null, Engine.IBackend? backend = null)
    {
        var sw = Stopwatch.StartNew();
        var config = StepAudio2Config.Load(modelDir);
        var checkpoint = ShardedCheckpoint.Open(modelDir);
        try
        {
            var model = new StepAudio2Model(checkpoint, config, backend);
            var tokenizer = StepAudioTokenizer.Load(tokenizerDir ?? modelDir);
            return new StepAudio2Pipeline(checkpoint, model, tokenizer, sw.Elapsed) { ModelDirectory = Path.GetFullPath(modelDir) };
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>Speech recognition with the official ASR prompt, greedy by default.</summary>
    public ChatResult Transcribe(string audioPath, SamplingOptions? options = null, Trace? trace = null) =>
        Chat([ChatMessage.System(AsrSystemPrompt), ChatMessage.User(new AudioItem(AudioInput.Load16k(audioPath), audioPath)), ChatMessage.AssistantPrompt()],
            options ?? SamplingOptions.Greedy, trace);

    /// <summary>
    /// Speech recognition of several files as one batch (official ASR prompt, greedy by default): each is encoded and
    /// prefilled on its own, then decoded together, one batched forward per step (<see cref="BatchGenerator"/>), so the
    /// decoder's weights stream once per step for all. Results in the order of <paramref name="audioPaths"/>, each equal
    /// to what <see cref="Transcribe"/> gives it alone.
    /// </summary>
    public IReadOnlyList<ChatResult> TranscribeBatch(IReadOnlyList<string> audioPaths, SamplingOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(audioPaths);
        var prompts = new List<(Prompt Prompt, PromptAudio? Audio, TimeSpan AudioTime, TimeSpan EncoderTime)>();
        foreach (var path in audioPaths)
        {
            var sw = Stopwatch.StartNew();
            var prompt = PromptBuilder.Chat(Tokenizer, [ChatMessage.System(AsrSystemPrompt),
                ChatMessage.User(new AudioItem(AudioInput.Load16k(path), path)), ChatMessage.AssistantPrompt()]);
            var audioTime = sw.Elapsed;
            sw.Restart();
            var (features, lengths) = Model.EncodeAudio(prompt.Audio!.Batch.Mels, prompt.Audio.MelLengths);
            prompts.Add((prompt, new PromptAudio(features, lengths), audioTime, sw.Elapsed));
        }
        var results = new BatchGenerator(Model).Generate(
            prompts.Select(p => new BatchRequest(p.Prompt.Ids, p.Audio, options ?? SamplingOptions.Greedy)).ToList(), Decoder);
        return results.Select((g, i) => new ChatResult(g.Text ?? Tokenizer.Decode(g.TextIds), g.TextIds, g.AudioCodes, g, prompts[i].Prompt,
            new StageTimings(prompts[i].AudioTime, prompts[i].EncoderTime, g.Prefill, g.Decode), null)).ToList();
    }

    /// <summary>
    /// Speech translation: the audio with an instruction to translate into <paramref name="targetLanguage"/>
    /// (the official examples word this per task; the instruction here is ours), temperature 0.1 by default.
    /// </summary>
    public ChatResult Translate(string audioPath, string targetLanguage, SamplingOptions? options = null, Trace? trace = null) =>
        Chat([
            ChatMessage.System(DefaultSystemPrompt),
            ChatMessage.User(new TextItem($"Translate the speech into {targetLanguage}."), new AudioItem(AudioInput.Load16k(audioPath), audioPath)),
            ChatMessage.AssistantPrompt()], options ?? SamplingOptions.Translate, trace);

    /// <summary>Runs any conversation ending in a generation prompt; <paramref name="onToken"/> streams tokens as they come.</summary>
    public ChatResult Chat(IReadOnlyList<ChatMessage> messages, SamplingOptions? options = null, Trace? trace = null,
        Action<TokenGenerated>? onToken = null, CancellationToken cancellationToken = default)
    {
        var sw = Stopwatch.StartNew();
        var prompt = PromptBuilder.Chat(Tokenizer, messages);
        var audioTime = sw.Elapsed;
        if (trace is not null) RecordInputs(trace, prompt);
        sw.Restart();
        PromptAudio? audio = null;
        if (prompt.Audio is not null)
        {
            var (features, lengths) = Model.EncodeAudio(prompt.Audio.Batch.Mels, prompt.Audio.MelLengths, trace);
            audio = new PromptAudio(features, lengths);
        }
        var encoderTime = sw.Elapsed;
        _source.PrefillTrace = trace;
        GenerationResult result;
        try
        {
            result = Generator.Generate(prompt.Ids, options ?? SamplingOptions.Chat, audio, Decoder, onToken, cancellationToken);
        }
        finally
        {
            _source.PrefillTrace = null;
        }
        return new ChatResult(result.Text ?? Tokenizer.Decode(result.TextIds), result.TextIds, result.AudioCodes, result, prompt,
            new StageTimings(audioTime, encoderTime, result.Prefill, result.Decode), trace);
    }

    /// <summary>
    /// The inputs of a dump, as the reference dumper names them: <c>input.ids</c> and the audio's
    /// (<see cref="PreparedAudio.InputEntries"/>).
    /// </summary>
    public static void RecordInputs(Trace trace, Prompt prompt)
    {
        trace.Record("input.ids", Tensor.FromArray(prompt.Ids.Select(i => (long)i).ToArray(), prompt.Ids.Length));
        foreach (var (name, value) in prompt.Audio?.InputEntries() ?? []) trace.Record(name, value);
    }

    /// <summary>
    /// Think mode of Step-Audio-2-mini-Think (docs/model.md §6.7, official examples-think): call 1 pre-fills the assistant turn with
    /// <c>"\n&lt;think&gt;\n"</c> and stops on the decoded text <c>&lt;/think&gt;</c> (three ordinary tokens, so a stop
    /// string, not a stop id); call 2 pre-fills <c>"\n&lt;think&gt;\n" + thought + "&lt;/think&gt;\n\n"</c> plus
    /// <c>&lt;tts_start&gt;</c> for a speech reply. Separate budgets: <paramref name="thinkOptions"/> and
    /// <paramref name="answerOptions"/>. The thought streams through <paramref name="onThought"/>; callers keep it out of
    /// the history (only the answer goes back, as the official example does).
    /// </summary>
    /// <param name="messages">the conversation so far, without a generation prompt.</param>
    public ThinkResult Think(IReadOnlyList<ChatMessage> messages, bool speechReply = false, SamplingOptions? thinkOptions = null,
        SamplingOptions? answerOptions = null, Action<TokenGenerated>? onThought = null, Action<TokenGenerated>? onAnswer = null,
        CancellationToken cancellationToken = default)
    {
        var thinkCall = Chat([.. messages, ThinkMode.ThinkPrompt()], ThinkMode.WithStop(thinkOptions ?? SamplingOptions.Chat), null, onThought, cancellationToken);
        string thought = ThinkMode.Thought(thinkCall.Text);
        var answer = Chat([.. messages, ThinkMode.AnswerPrompt(thought, speechReply)], answerOptions ?? SamplingOptions.Chat, null, onAnswer, cancellationToken);
        return new ThinkResult(thought, answer.Text, answer.AudioCodes, thinkCall, answer);
    }

    /// <summary>
    /// A tool-using conversation (docs/model.md §6.8): the <c>tool_json_schemas</c> turn goes right after the system turn, each
    /// reply is parsed for <c>&lt;tool_call&gt;</c> blocks, the registered tools run and their results come back as an
    /// <c>input</c> turn, until a reply calls no tool or <paramref name="maxRounds"/> generations were made.
    /// </summary>
    /// <param name="history">system turn first, then the conversation; no generation prompt.</param>
    public Task<Tools.ToolLoopResult> ChatWithToolsAsync(IReadOnlyList<ChatMessage> history, Tools.ToolRegistry registry, int maxRounds = 4,
        SamplingOptions? options = null, Tools.ToolLoopOptions? toolOptions = null, Action<Tools.ToolLoopEvent>? onEvent = null,
        CancellationToken cancellationToken = default)
    {
        return Tools.ToolLoop.RunAsync(messages => Task.FromResult(Chat(messages, options, null, null, cancellationToken).Text),
            registry.WithSchemas(history), maxRounds, registry, toolOptions, onEvent, cancellationToken);
    }

    /// <summary>The tokenizer as the generator's streaming decoder.</summary>
    public ITokenDecoder Decoder => new DelegateTokenDecoder(ids => Tokenizer.Decode(ids.ToArray()));

    public void Dispose()
    {
        _checkpoint.Dispose();
        _token2wav?.Dispose();
    }
}
