using System.Diagnostics;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Tensors;
using Trace = StepAudio2.Lab.Tracing.Trace;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>Where a synthesis is: the flow's Euler steps, then the vocoder.</summary>
/// <param name="Stage">"flow" or "hift".</param>
/// <param name="Done">steps done in this stage.</param>
/// <param name="Total">steps of this stage (10 CFM steps; 1 for the vocoder).</param>
public readonly record struct Token2WavProgress(string Stage, int Done, int Total);

/// <summary>
/// One synthesis: the 24 kHz mono waveform, the mel it came from, the codes given to the flow and the time of each stage.
/// </summary>
/// <param name="Waveform">float32 samples in [−0.99, 0.99], 480 per mel frame (2·480 per code).</param>
/// <param name="Mel">the flow's output [1, 80, 2N].</param>
/// <param name="Codes">the codes after <see cref="SpeechCodes.Filter"/>.</param>
/// <param name="DroppedCodes">how many given codes the filter removed (padding 6561 and above).</param>
public sealed record Token2WavResult(float[] Waveform, Tensor Mel, int[] Codes, int DroppedCodes, TimeSpan FlowTime, TimeSpan HiftTime)
{
    public int SampleRate => Token2Wav.SampleRate;
    public double AudioSeconds => Waveform.Length / (double)SampleRate;
    public TimeSpan Total => FlowTime + HiftTime;
    /// <summary>Wall time over audio time: below 1 is faster than real time.</summary>
    public double RealTimeFactor => Total.TotalSeconds / Math.Max(AudioSeconds, 1e-9);
    /// <summary>The waveform as a mono clip (shares the array).</summary>
    public AudioClip ToClip() => new([Waveform], SampleRate, AudioSourceFormat.InMemory);
}

/// <summary>
/// Speech codes + voice prompt → 24 kHz audio: mirrors the official <c>token2wav.py</c> <c>Token2wav</c> class
/// (non-streaming <c>__call__</c>): prompt features (<see cref="VoicePrompt"/>, S3 tokenizer + CAM++ ONNX), the flow
/// (<see cref="Models.Token2Wav.Flow"/>, flow.pt + flow.yaml) with 10 CFM steps, then HiFT (<see cref="Models.Token2Wav.Hift"/>,
/// hift.pt). Unlike the official class it returns float samples rather than WAV bytes, filters the codes itself
/// (docs/model.md §6.4) and takes both random inputs as arguments: the CFM noise <c>[1, 80, 2(P+N)]</c> (officially an unseeded
/// buffer drawn once) and the NSF noise <c>[1, 480·2N, 9]</c> (officially fresh every call). When absent they are drawn
/// from <c>seed</c> (CFM) and <c>seed + 1</c> (NSF) with System.Random, so one seed reproduces one waveform bit for bit.
/// Traced under <c>flow.*</c>, <c>hift.*</c> and <c>input.*</c> (codes, prompt tokens, x-vector, prompt mel, noise, hift_noise).
/// </summary>
public sealed class Token2Wav : IDisposable
{
    /// <summary>HiFT's output rate.</summary>
    public const int SampleRate = 24000;
    public const string HiftFileName = "hift.pt";

    private Token2Wav(string directory, Flow flow, Hift hift, VoicePrompt? prompts)
    {
        Directory = directory;
        Flow = flow;
        Hift = hift;
        Prompts = prompts;
    }

    /// <summary>The token2wav folder this was loaded from.</summary>
    public string Directory { get; }
    public Flow Flow { get; }
    public Hift Hift { get; }
    /// <summary>The voice-prompt front end (ONNX models), or null when loaded without them.</summary>
    public VoicePrompt? Prompts { get; }

    /// <summary>Audio samples per speech code: 2 mel frames × 480.</summary>
    public int SamplesPerCode => Flow.Config.TokenMelRatio * Hift.Config.SamplesPerFrame;

    /// <summary>
    /// Loads flow.pt, flow.yaml and hift.pt from a token2wav folder, and the two ONNX prompt models when
    /// <paramref name="promptModels"/> is true (the default) or, with null, when both files are present. Callers that
    /// bring their own <see cref="VoicePromptFeatures"/> (or a dump's inputs) pass false.
    /// </summary>
    /// <param name="promptCacheDirectory">where <see cref="VoicePrompt"/> keeps prompt features on disk (null: memory only).</param>
    /// <exception cref="DirectoryNotFoundException">no such folder.</exception>
    /// <exception cref="FileNotFoundException">a required file is missing (named).</exception>
    /// <param name="backend">the backend the flow and the vocoder run on (default: the one current when loaded, <see cref="Ops.Backend"/>).</param>
    public static Token2Wav Load(string token2wavDir, bool? promptModels = true, string? promptCacheDirectory = null, IBackend? backend = null)
    {
        ArgumentNullException.ThrowIfNull(token2wavDir);
        if (!System.IO.Directory.Exists(token2wavDir)) throw new DirectoryNotFoundException($"no such token2wav folder: {token2wavDir}");
        foreach (var f in new[] { Flow.CheckpointFileName, Config.FlowConfig.FileName, HiftFileName })
            if (!File.Exists(Path.Combine(token2wavDir, f)))
                throw new FileNotFoundException($"token2wav folder {token2wavDir} has no {f}", Path.Combine(token2wavDir, f));
        bool onnx = promptModels ?? (File.Exists(Path.Combine(token2wavDir, S3Tokenizer.FileName)) && File.Exists(Path.Combine(token2wavDir, CampPlus.FileName)));
        // the flow's weights stay in flow.pt's memory map, owned by the flow until Dispose
        var flow = Flow.Load(token2wavDir, backend);
        try
        {
            var hift = Hift.Load(Path.Combine(token2wavDir, HiftFileName), backend: backend);
            if (hift.MelChannels != flow.MelChannels)
                throw new IO.LabDataException(Path.Combine(token2wavDir, HiftFileName), $"the vocoder takes {hift.MelChannels} mel channels but the flow makes {flow.MelChannels}");
            var prompts = onnx ? VoicePrompt.Open(token2wavDir, promptCacheDirectory) : null;
            return new Token2Wav(Path.GetFullPath(token2wavDir), flow, hift, prompts);
        }
        catch
        {
            flow.Dispose();
            throw;
        }
    }

    /// <summary>The voice prompt's features (cached per file by <see cref="VoicePrompt"/>).</summary>
    /// <exception cref="InvalidOperationException">loaded without the ONNX prompt models.</exception>
    public VoicePromptFeatures PreparePrompt(string promptWav) =>
        (Prompts ?? throw new InvalidOperationException(
            $"token2wav at {Directory} was loaded without {S3Tokenizer.FileName} and {CampPlus.FileName}: supply prompt features instead of a prompt wav"))
        .Prepare(promptWav);

    /// <summary>
    /// Most speech codes one call synthesises: 1 500 codes = 60 s of speech at 25 Hz. The flow attends over the whole
    /// sequence, so its memory grows with the square of the code count (3 000 codes took 2.5 GB, 20 000 overflowed);
    /// longer speech is refused with this number rather than exhausting memory.
    /// </summary>
    public const int MaxCodes = 1500;

    /// <summary>Codes + a prompt wav → waveform; see <see cref="TokensToWav(ReadOnlySpan{int}, VoicePromptFeatures, Tensor?, Tensor?, int, Trace?, IProgress{Token2WavProgress}?)"/>.</summary>
    public Token2WavResult TokensToWav(ReadOnlySpan<int> codes, string promptWav, int seed = 0, Trace? trace = null, IProgress<Token2WavProgress>? progress = null) =>
        TokensToWav(codes, PreparePrompt(promptWav), null, null, seed, trace, progress);

    /// <summary>
    /// Codes (any ids; filtered to 0..6560 first) and a voice prompt's features → 24 kHz waveform of 480·2N samples.
    /// </summary>
    /// <param name="noise">CFM noise [1, 80, 2(P+N)], or null to draw it from <paramref name="seed"/>.</param>
    /// <param name="hiftNoise">NSF noise [1, 480·2N, 9], or null to draw it from <paramref name="seed"/> + 1.</param>
    /// <exception cref="ArgumentException">no valid code is left, or a noise/prompt shape is wrong.</exception>
    public Token2WavResult TokensToWav(ReadOnlySpan<int> codes, VoicePromptFeatures prompt, Tensor? noise = null, Tensor? hiftNoise = null,
        int seed = 0, Trace? trace = null, IProgress<Token2WavProgress>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        return Generate(codes, prompt.PromptTokens, prompt.PromptMel, prompt.Xvector, noise, hiftNoise, seed, trace, progress);
    }

    /// <summary>
    /// The whole chain from raw flow inputs (what a reference dump stores as <c>input.*</c>): codes [N] (filtered),
    /// prompt tokens [P], prompt mel [1, 2P, 80], x-vector [1, 192] (before normalisation), optional noises.
    /// </summary>
    public Token2WavResult Generate(ReadOnlySpan<int> codes, ReadOnlySpan<int> promptTokens, Tensor promptMel, Tensor xvector,
        Tensor? noise = null, Tensor? hiftNoise = null, int seed = 0, Trace? trace = null, IProgress<Token2WavProgress>? progress = null)
    {
        var kept = SpeechCodes.Filter(codes);
        if (kept.Length == 0)
            throw new ArgumentException(codes.Length == 0 ? "token2wav: no speech codes" : $"token2wav: none of the {codes.Length} codes is a speech code (0..{SpeechCodes.CodebookSize - 1})", nameof(codes));
        if (kept.Length > MaxCodes)
            throw new ArgumentException(
                $"token2wav: {kept.Length} codes ({kept.Length / 25.0:0.#} s of speech) exceed the limit of {MaxCodes} codes ({MaxCodes / 25} s) per call: " +
                "the flow's attention memory grows with the square of the length; synthesise the codes in shorter pieces", nameof(codes));
        int frames = Flow.Config.TokenMelRatio * kept.Length;
        int samples = frames * Hift.Config.SamplesPerFrame;
        if (hiftNoise is not null && (hiftNoise.Rank != 3 || hiftNoise.Shape[0] != 1 || hiftNoise.Shape[1] != samples || hiftNoise.Shape[2] != Hift.Config.Harmonics))
            throw new ArgumentException($"token2wav: NSF noise {Tensor.ShapeString(hiftNoise.Shape)} must be [1, {samples}, {Hift.Config.Harmonics}] for {kept.Length} codes", nameof(hiftNoise));

        var clock = Stopwatch.StartNew();
        var flowProgress = progress is null ? null : new StageProgress(progress);
        var mel = Flow.Generate(kept, promptTokens, promptMel, xvector, noise, seed, trace, flowProgress);
        var flowTime = clock.Elapsed;

        clock.Restart();
        hiftNoise ??= Hift.Source.SampleNoise(1, frames, unchecked(seed + 1));
        trace?.Record("input.hift_noise", hiftNoise);
        var wav = Hift.Forward(mel, hiftNoise, trace: trace);
        var hiftTime = clock.Elapsed;
        progress?.Report(new Token2WavProgress("hift", 1, 1));
        return new Token2WavResult(wav.ToHost().ToFloatArray(), mel.ToHost(), kept, codes.Length - kept.Length, flowTime, hiftTime);
    }

    /// <summary>Releases the ONNX sessions and flow.pt's mapping (the flow is unusable afterwards).</summary>
    public void Dispose()
    {
        Prompts?.Dispose();
        Flow.Dispose();
    }

    /// <summary>Relays the flow's per-step progress (reported synchronously on the calling thread).</summary>
    private sealed class StageProgress(IProgress<Token2WavProgress> target) : IProgress<FlowProgress>
    {
        public void Report(FlowProgress value) => target.Report(new Token2WavProgress("flow", value.Step, value.Steps));
    }
}
