using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Diagnostics;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab synthesize --model &lt;dir&gt; [--token2wav &lt;dir&gt;] --prompt &lt;wav&gt; --text "..." --out out.wav</c> (TTS) and
/// <c>steplab s2st --model &lt;dir&gt; --audio &lt;in.wav&gt; --prompt &lt;wav&gt; --out out.wav</c> (speech in → text + speech out):
/// the official speech-reply prompts (assistant turn opened with <c>&lt;tts_start&gt;</c>), the examples' sampling
/// (T 0.7, top-p 0.9, top-k 50, repetition 1.05; --greedy for greedy), then token2wav on the codes &lt; 6561. Prints the
/// reply text on stdout and the stage times on stderr. Exit 0 with the WAV written; exit 1 when the reply holds no speech
/// code (nothing to synthesise; no WAV is written, the text is still printed); exit 2 on bad input.
/// </summary>
public static class SynthesizeCommand
{
    public static Command Create(CliOutput ui)
    {
        var common = new SpeechOptions();
        var text = new Option<string>("--text") { Description = "the text to speak", Required = true };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => StepAudio2Pipeline.TtsSystemPrompt };
        var cmd = new Command("synthesize", "Text to speech with Step-Audio 2 in the voice of a prompt (LLM → speech codes → flow → HiFT).") { text, system };
        common.AddTo(cmd);
        cmd.SetAction(p => SpeechOptions.Run(common.Read(p), ui, pipeline =>
            StepAudio2Pipeline.SynthesisMessages(p.GetValue(text)!, p.GetValue(system)!)));
        return cmd;
    }
}

/// <summary><c>steplab s2st</c>: see <see cref="SynthesizeCommand"/>.</summary>
public static class S2stCommand
{
    public static Command Create(CliOutput ui)
    {
        var common = new SpeechOptions();
        var audio = new Option<string>("--audio") { Description = "the spoken input (WAV, AIFF or AIFF-C)", Required = true };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => StepAudio2Pipeline.DefaultSystemPrompt };
        var cmd = new Command("s2st", "Speech in → text + speech out with Step-Audio 2, the reply in the voice of a prompt.") { audio, system };
        common.AddTo(cmd);
        cmd.SetAction(p =>
        {
            var path = p.GetValue(audio)!;
            var wav = Audio.AudioInput.Load16k(path); // read before the model loads: a bad file fails fast
            return SpeechOptions.Run(common.Read(p), ui, _ => StepAudio2Pipeline.SpeechToSpeechMessages(wav, path, p.GetValue(system)!));
        });
        return cmd;
    }
}

/// <summary>The options and the run shared by <c>synthesize</c> and <c>s2st</c>.</summary>
internal sealed class SpeechOptions
{
    private readonly Option<string> _model = new("--model") { Description = "checkpoint folder", Required = true };
    private readonly Option<string?> _tokenizer = new("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
    private readonly Option<string?> _token2wav = new("--token2wav") { Description = "token2wav folder (default: <model>/token2wav)" };
    private readonly Option<string> _prompt = new("--prompt") { Description = "voice prompt WAV/AIFF (the voice to imitate)", Required = true };
    private readonly Option<string> _out = new("--out") { Description = "output .wav (24 kHz mono)", Required = true };
    private readonly Option<int> _maxTokens = new("--max-tokens") { Description = "generation limit", DefaultValueFactory = _ => 2048 };
    private readonly Option<bool> _greedy = new("--greedy") { Description = "greedy decoding instead of the examples' sampling" };
    private readonly Option<int> _seed = new("--seed") { Description = "seed of the LLM sampling and of token2wav's noises", DefaultValueFactory = _ => 0 };
    private readonly Option<bool> _pcm16 = new("--pcm16") { Description = "write 16-bit PCM instead of 32-bit float" };
    private readonly Option<bool> _json = new("--json") { Description = "machine-readable summary" };

    public void AddTo(Command cmd)
    {
        foreach (var o in new Option[] { _model, _tokenizer, _token2wav, _prompt, _out, _maxTokens, _greedy, _seed, _pcm16, _json }) cmd.Options.Add(o);
    }

    public sealed record Values(string Model, string? Tokenizer, string? Token2Wav, string Prompt, string Output, int MaxTokens, bool Greedy, int Seed, bool Pcm16, bool Json);

    public Values Read(ParseResult p) => new(p.GetValue(_model)!, p.GetValue(_tokenizer), p.GetValue(_token2wav), p.GetValue(_prompt)!, p.GetValue(_out)!,
        p.GetValue(_maxTokens), p.GetValue(_greedy), p.GetValue(_seed), p.GetValue(_pcm16), p.GetValue(_json));

    public static int Run(Values v, CliOutput ui, Func<StepAudio2Pipeline, IReadOnlyList<Prompting.ChatMessage>> messages)
    {
        if (v.MaxTokens < 1) throw new ArgumentException("--max-tokens must be at least 1");
        if (!File.Exists(v.Prompt)) throw new FileNotFoundException($"no such voice prompt: {v.Prompt}", v.Prompt);
        SpeechOutput.CheckOutput(v.Output);
        using var pipeline = StepAudio2Pipeline.Load(v.Model, v.Tokenizer);
        pipeline.LoadToken2Wav(v.Token2Wav);
        var options = (v.Greedy ? SamplingOptions.Greedy : SamplingOptions.Chat) with { MaxNewTokens = v.MaxTokens, Seed = v.Seed };
        var r = ui.WithProgress("speaking", bar => pipeline.SpeechReply(messages(pipeline), v.Prompt, options, v.Seed,
            onToken: t => bar.Report((t.Index + 1, v.MaxTokens, "LLM")), progress: SpeechOutput.Relay(bar)));
        if (r.HasAudio) SpeechOutput.WriteWav(v.Output, r.Waveform, v.Pcm16);
        var g = r.Chat.Generation;
        long peak = ProcessMemory.PeakRssBytes();
        string noAudio = $"the reply holds no speech codes ({g.GeneratedIds.Length} ids generated, {r.AudioCodes.Length} audio ids, stop: {g.StopReason}); no WAV written";
        if (v.Json)
        {
            ui.Out.WriteLine(JsonSerializer.Serialize(new
            {
                text = r.Text,
                text_ids = r.TextIds,
                audio_codes = r.AudioCodes,
                speech_codes = r.SpeechCodes,
                generated_ids = g.GeneratedIds,
                stop_reason = g.StopReason.ToString(),
                prompt_tokens = g.PromptIds.Length,
                output = r.HasAudio ? v.Output : null,
                samples = r.Waveform.Length,
                sample_rate = r.SampleRate,
                audio_s = r.AudioSeconds,
                llm_s = r.Timings.Llm.Total.TotalSeconds,
                prompt_features_s = r.Timings.Prompt.TotalSeconds,
                flow_s = r.Timings.Flow.TotalSeconds,
                hift_s = r.Timings.Hift.TotalSeconds,
                peak_rss_bytes = peak,
                error = r.HasAudio ? null : noAudio,
            }, SpeechOutput.Json));
            return r.HasAudio ? StepLabCli.Ok : StepLabCli.Failed;
        }
        ui.Out.WriteLine(r.Text);
        if (!r.HasAudio)
        {
            ui.Error.WriteLine($"steplab: {noAudio}");
            return StepLabCli.Failed;
        }
        ui.Error.WriteLine($"{r.SpeechCodes.Length} speech codes → {r.AudioSeconds:F2} s written to {v.Output} · LLM {r.Timings.Llm.Total.TotalSeconds:F2} s " +
            $"({g.GeneratedIds.Length} tokens) · prompt {r.Timings.Prompt.TotalSeconds:F2} s · flow {r.Timings.Flow.TotalSeconds:F2} s · hift {r.Timings.Hift.TotalSeconds:F2} s · peak RSS {peak / 1e9:F2} GB");
        return StepLabCli.Ok;
    }
}
