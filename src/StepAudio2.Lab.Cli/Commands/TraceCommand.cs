using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
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
/// </summary>
public static class TraceCommand
{
    public const string DefaultSystem = "You are a helpful assistant.";

    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder (config.json + safetensors)", Required = true };
        var audio = new Option<string[]>("--audio") { Description = "audio file(s) of the human turn, in order", Required = true, AllowMultipleArgumentsPerToken = true };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => DefaultSystem };
        var instruction = new Option<string?>("--instruction") { Description = "text item placed before the audio in the human turn" };
        var greedy = new Option<int>("--greedy") { Description = "greedy continuation length recorded as output.greedy_ids", DefaultValueFactory = _ => 0 };
        var capture = new Option<string[]>("--capture") { Description = "module-path globs to keep (default: all), e.g. 'encoder.blocks.*.attn' 'model.layers.*'", AllowMultipleArgumentsPerToken = true };
        var stage = new Option<string>("--stage") { Description = "full (default) or audio (mel → encoder → adaptor only)", DefaultValueFactory = _ => "full" };
        stage.AcceptOnlyFromAmong("full", "audio");
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with vocab.json, merges.txt, tokenizer_config.json (default: the model folder)" };
        var output = new Option<string>("--out") { Description = "output .safetensors (or .npz)", Required = true };
        var cmd = new Command("trace", "Run a checkpoint on audio and record module outputs by official module path.")
        {
            model, audio, system, instruction, greedy, capture, stage, tokenizer, output,
        };
        cmd.SetAction(p => Run(new TraceRequest(p.GetValue(model)!, p.GetValue(audio)!, p.GetValue(system)!, p.GetValue(instruction), p.GetValue(greedy),
            p.GetValue(capture) ?? [], p.GetValue(stage) == "audio", p.GetValue(tokenizer), p.GetValue(output)!), ui));
        return cmd;
    }

    public sealed record TraceRequest(string Model, IReadOnlyList<string> Audio, string System, string? Instruction, int Greedy,
        IReadOnlyList<string> Capture, bool AudioOnly, string? Tokenizer, string Output);

    public static int Run(TraceRequest r, CliOutput ui)
    {
        if (r.Greedy < 0) throw new ArgumentException("--greedy must not be negative");
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
            return StepLabCli.Ok;
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
        return StepLabCli.Ok;
    }
}
