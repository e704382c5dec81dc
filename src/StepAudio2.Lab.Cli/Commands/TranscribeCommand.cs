using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Diagnostics;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab transcribe --model &lt;dir&gt; &lt;audio&gt;… [--tokenizer DIR] [--max-tokens N] [--json]</c>: speech recognition
/// with the official ASR prompt, greedy; prints the text, then the time of each stage and the peak memory. Several files
/// are decoded as one batch (one batched forward per step, each file stopping on its own): one line "file: text" each,
/// and the aggregate decode rate.
/// </summary>
public static class TranscribeCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var audio = new Argument<string[]>("audio") { Description = "WAV, AIFF or AIFF-C file(s); several are decoded as one batch", Arity = ArgumentArity.OneOrMore };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "generation limit", DefaultValueFactory = _ => 256 };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cmd = new Command("transcribe", "Transcribe speech with Step-Audio 2 (official ASR prompt, greedy).") { model, audio, tokenizer, maxTokens, json };
        cmd.SetAction(p => p.GetValue(audio) is { Length: > 1 } many
            ? RunBatch(p.GetValue(model)!, many, p.GetValue(tokenizer), p.GetValue(maxTokens), p.GetValue(json), ui)
            : Run(p.GetValue(model)!, p.GetValue(audio)![0], p.GetValue(tokenizer), p.GetValue(maxTokens), p.GetValue(json), ui));
        return cmd;
    }

    /// <summary>Several files as one batch; see the class summary.</summary>
    public static int RunBatch(string modelDir, IReadOnlyList<string> audio, string? tokenizer, int maxTokens, bool json, CliOutput ui)
    {
        if (maxTokens < 1) throw new ArgumentException("--max-tokens must be at least 1");
        using var pipeline = StepAudio2Pipeline.Load(modelDir, tokenizer);
        var results = pipeline.TranscribeBatch(audio, SamplingOptions.Greedy with { MaxNewTokens = maxTokens });
        long peak = ProcessMemory.PeakRssBytes();
        int tokens = results.Sum(r => r.Generation.GeneratedIds.Length - 1);
        double decode = results.Max(r => r.Generation.Decode.TotalSeconds);
        double aggregate = tokens / Math.Max(decode, 1e-9);
        if (json)
        {
            ui.Out.WriteLine(JsonSerializer.Serialize(new
            {
                batch = results.Select((r, i) => new
                {
                    audio = audio[i],
                    text = r.Text,
                    generated_ids = r.Generation.GeneratedIds,
                    stop_reason = r.Generation.StopReason.ToString(),
                    prompt_tokens = r.Generation.PromptIds.Length,
                    prefill_s = r.Generation.Prefill.TotalSeconds,
                    encoder_s = r.Timings.Encoder.TotalSeconds,
                }),
                load_s = pipeline.LoadTime.TotalSeconds,
                decode_s = decode,
                aggregate_decode_tokens_per_s = aggregate,
                peak_rss_bytes = peak,
            }, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return StepLabCli.Ok;
        }
        for (int i = 0; i < results.Count; i++) ui.Out.WriteLine($"{audio[i]}: {results[i].Text}");
        ui.Error.WriteLine($"load {pipeline.LoadTime.TotalSeconds:F1} s · batch of {results.Count} · decode {tokens} tokens in {decode:F2} s " +
            $"({aggregate:F2} tok/s aggregate) · peak RSS {peak / 1e9:F2} GB");
        return StepLabCli.Ok;
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
