using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Diagnostics;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Token2Wav;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab token2wav --token2wav &lt;dir&gt; (--prompt &lt;wav&gt; | --prompt-features &lt;dump&gt;) (--codes "1 2 3" |
/// --codes-file &lt;txt|npy|safetensors&gt; [--codes-key K]) --out out.wav [--seed N] [--pcm16] [--json]</c>: speech codes →
/// 24 kHz mono WAV (float32; 16-bit PCM with --pcm16) of 960 samples per code. Codes must all be 0..6560 (a code of
/// 6561 or more is bad input, exit 2: filter LLM padding first). The CFM and NSF noises come from --seed (default 0).
/// </summary>
public static class Token2WavCommand
{
    public static Command Create(CliOutput ui)
    {
        var dir = new Option<string>("--token2wav") { Description = "token2wav folder (flow.pt, flow.yaml, hift.pt, campplus.onnx, speech_tokenizer_v2_25hz.onnx)", Required = true };
        var prompt = new Option<string?>("--prompt") { Description = "voice prompt WAV/AIFF (the voice to imitate)" };
        var promptFeatures = new Option<string?>("--prompt-features") { Description = "instead of --prompt: a dump holding input.prompt_tokens, input.xvector, input.prompt_mel (needs no ONNX models)" };
        var codes = new Option<string?>("--codes") { Description = "speech codes 0..6560, separated by spaces or commas" };
        var codesFile = new Option<string?>("--codes-file") { Description = "speech codes from a text file, .npy or safetensors (input.codes or its only tensor)" };
        var codesKey = new Option<string?>("--codes-key") { Description = "tensor name in --codes-file" };
        var output = new Option<string>("--out") { Description = "output .wav (24 kHz mono)", Required = true };
        var seed = new Option<int>("--seed") { Description = "seed of the CFM noise (seed) and the NSF noise (seed + 1)", DefaultValueFactory = _ => 0 };
        var pcm16 = new Option<bool>("--pcm16") { Description = "write 16-bit PCM instead of 32-bit float" };
        var json = new Option<bool>("--json") { Description = "machine-readable summary" };
        var cmd = new Command("token2wav", "Turn speech codes into 24 kHz audio in the voice of a prompt (flow + HiFT).")
        {
            dir, prompt, promptFeatures, codes, codesFile, codesKey, output, seed, pcm16, json,
        };
        cmd.SetAction(p => Run(new Request(p.GetValue(dir)!, p.GetValue(prompt), p.GetValue(promptFeatures), p.GetValue(codes), p.GetValue(codesFile),
            p.GetValue(codesKey), p.GetValue(output)!, p.GetValue(seed), p.GetValue(pcm16), p.GetValue(json)), ui));
        return cmd;
    }

    public sealed record Request(string Token2Wav, string? Prompt, string? PromptFeatures, string? Codes, string? CodesFile, string? CodesKey,
        string Output, int Seed, bool Pcm16, bool Json);

    public static int Run(Request r, CliOutput ui)
    {
        // everything cheap is checked before the models load
        if ((r.Codes is null) == (r.CodesFile is null)) throw new ArgumentException("give exactly one of --codes and --codes-file");
        if ((r.Prompt is null) == (r.PromptFeatures is null)) throw new ArgumentException("give exactly one of --prompt and --prompt-features");
        var codes = r.Codes is not null ? SpeechCodes.Parse(r.Codes, "--codes") : SpeechCodes.Load(r.CodesFile!, r.CodesKey);
        if (r.Prompt is not null && !File.Exists(r.Prompt)) throw new FileNotFoundException($"no such voice prompt: {r.Prompt}", r.Prompt);
        SpeechOutput.CheckOutput(r.Output);
        Token2WavInputs? features = null;
        if (r.PromptFeatures is not null)
        {
            using var dump = TensorFiles.Open(r.PromptFeatures);
            features = Token2WavInputs.Read(dump);
            if (features.PromptTokens is null || features.Xvector is null || features.PromptMel is null)
                throw new LabDataException(r.PromptFeatures, $"a prompt-features file needs {Token2WavInputs.PromptTokensKey}, {Token2WavInputs.XvectorKey} and {Token2WavInputs.PromptMelKey}");
        }

        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var t2w = Token2Wav.Load(r.Token2Wav, promptModels: r.Prompt is not null);
        var loadTime = clock.Elapsed;
        var result = ui.WithProgress("token2wav", bar =>
        {
            var progress = SpeechOutput.Relay(bar);
            if (features is null) return t2w.TokensToWav(codes, r.Prompt!, r.Seed, progress: progress);
            try
            {
                return t2w.Generate(codes, features.PromptTokens, features.PromptMel!, features.Xvector!, seed: r.Seed, progress: progress);
            }
            catch (ArgumentException e) when (e.ParamName is "promptMel" or "xvector" or "promptTokens")
            {
                // A mis-shaped (e.g. transposed) prompt tensor is a fault of the features file: name it and the key.
                string key = e.ParamName switch
                {
                    "promptMel" => Token2WavInputs.PromptMelKey,
                    "xvector" => Token2WavInputs.XvectorKey,
                    _ => Token2WavInputs.PromptTokensKey,
                };
                throw new LabDataException(r.PromptFeatures!, e.Message.Split(" (Parameter")[0], key, inner: e);
            }
        });
        SpeechOutput.WriteWav(r.Output, result.Waveform, r.Pcm16);
        long peak = ProcessMemory.PeakRssBytes();
        if (r.Json)
        {
            ui.Out.WriteLine(JsonSerializer.Serialize(new
            {
                output = r.Output,
                codes = result.Codes.Length,
                prompt_tokens = features?.PromptTokens?.Length,
                samples = result.Waveform.Length,
                sample_rate = result.SampleRate,
                audio_s = result.AudioSeconds,
                load_s = loadTime.TotalSeconds,
                flow_s = result.FlowTime.TotalSeconds,
                hift_s = result.HiftTime.TotalSeconds,
                rtf = result.RealTimeFactor,
                seed = r.Seed,
                format = r.Pcm16 ? "pcm16" : "float32",
                peak_rss_bytes = peak,
            }, SpeechOutput.Json));
            return StepLabCli.Ok;
        }
        ui.Out.WriteLine($"{result.Codes.Length} codes → {result.AudioSeconds:F2} s of 24 kHz audio ({result.Waveform.Length} samples, {(r.Pcm16 ? "16-bit PCM" : "float32")}) written to {r.Output}");
        ui.Error.WriteLine($"flow {result.FlowTime.TotalSeconds:F2} s · hift {result.HiftTime.TotalSeconds:F2} s · RTF {result.RealTimeFactor:F2} · peak RSS {peak / 1e9:F2} GB");
        return StepLabCli.Ok;
    }
}
