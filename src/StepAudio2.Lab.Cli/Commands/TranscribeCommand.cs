using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Diagnostics;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab transcribe --model &lt;dir&gt; &lt;audio&gt; [--tokenizer DIR] [--max-tokens N] [--json]</c>: speech recognition
/// with the official ASR prompt, greedy; prints the text, then the time of each stage and the peak memory.
/// </summary>
public static class TranscribeCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var audio = new Argument<string>("audio") { Description = "WAV, AIFF or AIFF-C file" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "generation limit", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cmd = new Command("transcribe", "Transcribe speech with Step-Audio 2 (official ASR prompt, greedy).") { model, audio, tokenizer, maxTokens, json };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(audio)!, p.GetValue(tokenizer), p.GetValue(maxTokens), p.GetValue(json), ui));
        return cmd;
    }

    public static int Run(string modelDir, string audio, string? tokenizer, int maxTokens, bool json, CliOutput ui)
    {
        using var pipeline = StepAudio2Pipeline.Load(modelDir, tokenizer);
        var r = pipeline.Transcribe(audio, SamplingOptions.Greedy with { MaxNewTokens = maxTokens });
        var g = r.Generation;
        long peak = ProcessMemory.PeakRssBytes();
        if (json)
        {
            ui.Out.WriteLine(JsonSerializer.Serialize(new
            {
                text = r.Text,
                text_ids = r.TextIds,
                audio_codes = r.AudioCodes,
                generated_ids = g.GeneratedIds,
                stop_reason = g.StopReason.ToString(),
                prompt_tokens = g.PromptIds.Length,
                load_s = pipeline.LoadTime.TotalSeconds,
                audio_s = r.Timings.Audio.TotalSeconds,
                encoder_s = r.Timings.Encoder.TotalSeconds,
                prefill_s = g.Prefill.TotalSeconds,
                decode_s = g.Decode.TotalSeconds,
                prefill_tokens_per_s = g.PrefillTokensPerSecond,
                decode_tokens_per_s = g.DecodeTokensPerSecond,
                peak_rss_bytes = peak,
            }, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return StepLabCli.Ok;
        }
        ui.Out.WriteLine(r.Text);
        ui.Error.WriteLine($"load {pipeline.LoadTime.TotalSeconds:F1} s · audio {r.Timings.Audio.TotalSeconds:F2} s · encoder {r.Timings.Encoder.TotalSeconds:F2} s · " +
            $"prefill {g.PromptIds.Length} tokens in {g.Prefill.TotalSeconds:F2} s ({g.PrefillTokensPerSecond:F1} tok/s) · " +
            $"decode {g.GeneratedIds.Length} tokens in {g.Decode.TotalSeconds:F2} s ({g.DecodeTokensPerSecond:F2} tok/s) · stop: {g.StopReason} · peak RSS {peak / 1e9:F2} GB");
        return StepLabCli.Ok;
    }
}
