using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab trace --model &lt;dir&gt; --audio &lt;file&gt;… [--system TEXT] [--instruction TEXT] [--greedy N]
/// [--capture &lt;glob&gt;…] [--stage audio|full] [--tokenizer DIR] --out &lt;file&gt;</c>: builds the official prompt
/// (system turn; human turn = optional instruction then the audio items; <c>&lt;|BOT|&gt;assistant\n</c>), runs the
/// full forward and writes every captured activation under its official module path with the inputs
/// (<c>input.ids</c>, <c>input.wav</c>, <c>input.mel.N</c>, <c>input.wav_lens</c>) and <c>output.greedy_ids</c>.
/// <c>--stage audio</c> stops after the adaptor (no tokenizer needed). The file is a dump <c>steplab compare</c> reads.
/// <para>
/// Token2wav: <c>steplab trace --token2wav &lt;dir&gt; --inputs &lt;dump&gt; [--prompt &lt;wav&gt;] [--seed N] [--capture …] --out &lt;file&gt;</c>
/// runs flow + HiFT from the dump's <c>input.*</c> tensors (<see cref="Token2WavInputs"/>) and writes <c>input.*</c>,
/// <c>flow.*</c> and <c>hift.*</c>. An absent <c>input.noise</c> / <c>input.hift_noise</c> is drawn from --seed / --seed + 1;
/// absent prompt features are computed from --prompt (needs the ONNX models); <c>input.codes</c> is required.
/// </para>
/// </summary>
public static class TraceCommand
{
    public const string DefaultSystem = "You are a helpful assistant.";

    public static Command Create(CliOutput ui)
    {
        var model = new Option<string?>("--model") { Description = "checkpoint folder (config.json + safetensors); required unless --token2wav" };
        var audio = new Option<string[]>("--audio") { Description = "audio file(s) of the human turn, in order; required with --model", AllowMultipleArgumentsPerToken = true };
        var token2wav = new Option<string?>("--token2wav") { Description = "token2wav folder: trace flow + HiFT from the input.* tensors of --inputs instead of the LLM" };
        var inputs = new Option<string?>("--inputs") { Description = "with --token2wav: dump holding input.codes and any of input.prompt_tokens/xvector/prompt_mel/noise/hift_noise" };
        var prompt = new Option<string?>("--prompt") { Description = "with --token2wav: voice prompt wav for prompt features the dump lacks" };
        var seed = new Option<int>("--seed") { Description = "with --token2wav: seed of absent noises (CFM: seed, NSF: seed + 1)", DefaultValueFactory = _ => 0 };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => DefaultSystem };
        var instruction = new Option<string?>("--instruction") { Description = "text item placed before the audio in the human turn" };
        var greedy = new Option<int>("--greedy") { Description = "greedy continuation length recorded as output.greedy_ids", DefaultValueFactory = _ => 0 };
        var capture = new Option<string[]>("--capture") { Description = "module-path globs to keep (default: all), e.g. 'encoder.blocks.*.attn' 'model.layers.*'", AllowMultipleArgumentsPerToken = true };
        var stage = new Option<string>("--stage") { Description = "full (default) or audio (mel → encoder → adaptor only)", DefaultValueFactory = _ => "full" };
        stage.AcceptOnlyFromAmong("full", "audio");
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with vocab.json, merges.txt, tokenizer_config.json (default: the model folder)" };
        var output = new Option<string>("--out") { Description = "output .safetensors or .npz", Required = true };
        var cmd = new Command("trace", "Run a checkpoint on audio (or flow + HiFT on a dump's inputs) and record module outputs by official module path.")
        {
            model, audio, system, instruction, greedy, capture, stage, tokenizer, output, token2wav, inputs, prompt, seed,
        };
        cmd.SetAction(p =>
        {
            if (p.GetValue(token2wav) is { } t2w)
            {
                if (p.GetValue(model) is not null || p.GetValue(audio) is { Length: > 0 })
                    throw new ArgumentException("--token2wav traces flow + HiFT from --inputs: it takes no --model or --audio");
                return RunToken2Wav(new Token2WavTraceRequest(t2w, p.GetValue(inputs) ?? throw new ArgumentException("--token2wav needs --inputs <dump>"),
                    p.GetValue(prompt), p.GetValue(seed), p.GetValue(capture) ?? [], p.GetValue(output)!), ui);
            }
            var modelDir = p.GetValue(model) ?? throw new ArgumentException("trace needs --model <dir> (or --token2wav <dir> --inputs <dump>)");
            var audioFiles = p.GetValue(audio) is { Length: > 0 } a ? a : throw new ArgumentException("trace --model needs --audio <file>…");
            return Run(new TraceRequest(modelDir, audioFiles, p.GetValue(system)!, p.GetValue(instruction), p.GetValue(greedy),
                p.GetValue(capture) ?? [], p.GetValue(stage) == "audio", p.GetValue(tokenizer), p.GetValue(output)!), ui);
        });
        return cmd;
    }

    public sealed record TraceRequest(string Model, IReadOnlyList<string> Audio, string System, string? Instruction, int Greedy,
        IReadOnlyList<string> Capture, bool AudioOnly, string? Tokenizer, string Output);

    public sealed record Token2WavTraceRequest(string Token2Wav, string Inputs, string? Prompt, int Seed, IReadOnlyList<string> Capture, string Output);

    /// <summary>Flow + HiFT from a dump's inputs; see the class summary.</summary>
    public static int RunToken2Wav(Token2WavTraceRequest r, CliOutput ui)
    {
        DumpOutput.Check(r.Output, manyTensors: true);
        Token2WavInputs given;
        using (var dump = TensorFiles.Open(r.Inputs)) given = Token2WavInputs.Read(dump);
        if (given.Codes is null) throw new LabDataException(r.Inputs, $"has no {Token2WavInputs.CodesKey}: the speech codes to synthesise", Token2WavInputs.CodesKey);
        bool needPrompt = given.PromptTokens is null || given.Xvector is null || given.PromptMel is null;
        if (needPrompt && r.Prompt is null)
        {
            var missing = new List<string>();
            if (given.PromptTokens is null) missing.Add(Token2WavInputs.PromptTokensKey);
            if (given.Xvector is null) missing.Add(Token2WavInputs.XvectorKey);
            if (given.PromptMel is null) missing.Add(Token2WavInputs.PromptMelKey);
            throw new LabDataException(r.Inputs, $"lacks {string.Join(", ", missing)}: give --prompt <wav> to compute the prompt features");
        }

        using var t2w = Token2Wav.Load(r.Token2Wav, promptModels: needPrompt);
        var computed = needPrompt ? t2w.PreparePrompt(r.Prompt!) : null;
        // a computed prompt replaces all three features together: mixing a dump's tokens with another prompt's mel would misalign them
        int[] tokens = computed?.PromptTokens ?? given.PromptTokens!;
        var mel = computed?.PromptMel ?? given.PromptMel!;
        var xvector = computed?.Xvector ?? given.Xvector!;
        var trace = new Trace(r.Capture.Count == 0 ? null : [.. r.Capture, "input.*"]);
        var result = ui.WithProgress("token2wav", bar => t2w.Generate(given.Codes, tokens, mel, xvector, given.Noise, given.HiftNoise, r.Seed, trace, SpeechOutput.Relay(bar)));
        DumpFile.Save(r.Output, trace, $"steplab trace --token2wav {Path.GetFileName(r.Inputs)}");
        var made = new List<string>();
        if (given.Noise is null) made.Add($"input.noise (seed {r.Seed})");
        if (given.HiftNoise is null) made.Add($"input.hift_noise (seed {r.Seed + 1})");
        if (computed is not null) made.Add($"prompt features from {Path.GetFileName(r.Prompt)}");
        ui.Out.WriteLine($"{result.Codes.Length} codes, {tokens.Length} prompt tokens → mel [1, {result.Mel.Shape[1]}, {result.Mel.Shape[2]}] → {result.Waveform.Length} samples; " +
            $"{trace.Count} activations written to {r.Output}" + (made.Count > 0 ? $" (generated: {string.Join(", ", made)})" : ""));
        ui.Error.WriteLine($"flow {result.FlowTime.TotalSeconds:F2} s · hift {result.HiftTime.TotalSeconds:F2} s");
        return StepLabCli.Ok;
    }

    public static int Run(TraceRequest r, CliOutput ui)
    {
        if (r.Greedy < 0) throw new ArgumentException("--greedy must not be negative");
        DumpOutput.Check(r.Output, manyTensors: true);
        var wavs = r.Audio.Select(AudioInput.Load16k).ToList();
        // inputs and outputs are always kept: a dump without them cannot be replayed
        var trace = new Trace(r.Capture.Count == 0 ? null : [.. r.Capture, "input.*", "output.*"]);
        string note = $"steplab trace {string.Join(", ", r.Audio.Select(Path.GetFileName))}";

        if (r.AudioOnly)
        {
            using var checkpoint = ShardedCheckpoint.Open(r.Model);
            var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(r.Model));
            var prepared = AudioInput.Prepare(wavs);
            foreach (var (name, tensor) in prepared.InputEntries()) trace.Record(name, tensor);
            var (_, lengths) = model.EncodeAudio(prepared.Batch.Mels, prepared.MelLengths, trace);
            DumpFile.Save(r.Output, trace, note);
            ui.Out.WriteLine($"{prepared.Mels.Count} chunk(s), audio tokens {string.Join(" + ", lengths)}; {trace.Count} activations written to {r.Output}");
            return NonFiniteVerdict(trace, r.Model, ui);
        }

        using var pipeline = StepAudio2Pipeline.Load(r.Model, r.Tokenizer);
        var items = new List<ContentItem>();
        if (r.Instruction is not null) items.Add(new TextItem(r.Instruction));
        items.AddRange(wavs.Select((w, i) => new AudioItem(w, r.Audio[i])));
        // greedy without stop tokens: the reference continuation runs its full length, as the official runner's greedy does
        var options = SamplingOptions.Greedy with { MaxNewTokens = Math.Max(r.Greedy, 1), StopTokenIds = [] };
        var reply = pipeline.Chat([ChatMessage.System(r.System), ChatMessage.User([.. items]), ChatMessage.AssistantPrompt()], options, trace);
        var prompt = reply.Prompt;
        var featLens = prompt.Audio!.TokenCounts;
        var greedy = reply.Generation.GeneratedIds.Take(r.Greedy).Select(i => (long)i).ToList();
        if (r.Greedy > 0) trace.Record("output.greedy_ids", Tensor.FromArray(greedy.ToArray(), greedy.Count));
        DumpFile.Save(r.Output, trace, note);
        ui.Out.WriteLine($"prompt {prompt.Ids.Length} ids ({prompt.Audio.Mels.Count} audio chunk(s), {string.Join(" + ", featLens)} audio tokens); {trace.Count} activations written to {r.Output}");
        if (greedy.Count > 0) ui.Out.WriteLine($"greedy: {string.Join(" ", greedy)} → {pipeline.Tokenizer.Decode(greedy.Select(g => (int)g).ToArray())}");
        return NonFiniteVerdict(trace, r.Model, ui);
    }

    /// <summary>
    /// A forward that produced NaN/Inf is not a result: the dump is kept for inspection, but the run exits 2 naming the
    /// module path where non-finite values first appeared (inputs are checked finite, so the weights are at fault).
    /// </summary>
    private static int NonFiniteVerdict(Trace trace, string model, CliOutput ui)
    {
        if (trace.FirstNonFinite() is not { } bad) return StepLabCli.Ok;
        ui.Error.WriteLine($"steplab: {model}: the forward produced {bad.Value} first at {bad.Path} (element {bad.Index}); " +
            "non-finite weights or an overflow upstream of it — the dump was written for inspection");
        return StepLabCli.BadInput;
    }
}
