using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab trace --model &lt;dir&gt; --audio &lt;file&gt; [--audio …] [--capture &lt;glob&gt;…] --out &lt;file&gt;</c>:
/// runs the audio path (mel → encoder → adaptor) of a checkpoint and writes every captured activation under its
/// official module path, plus the inputs (<c>input.mel.N</c>, <c>input.wav_lens</c>). The file is a dump
/// <c>steplab compare</c> reads.
/// </summary>
public static class TraceCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder (config.json + safetensors)", Required = true };
        var audio = new Option<string[]>("--audio") { Description = "audio file(s) of the request, in order", Required = true, AllowMultipleArgumentsPerToken = true };
        var capture = new Option<string[]>("--capture") { Description = "module-path globs to keep (default: all), e.g. 'encoder.blocks.*.attn' 'adapter*'", AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out") { Description = "output .safetensors (or .npz)", Required = true };
        var cmd = new Command("trace", "Run a checkpoint on audio and record module outputs by official module path.") { model, audio, capture, output };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(audio)!, p.GetValue(capture) ?? [], p.GetValue(output)!, ui));
        return cmd;
    }

    public static int Run(string modelDir, IReadOnlyList<string> audioFiles, IReadOnlyList<string> capture, string output, CliOutput ui)
    {
        var config = StepAudio2Config.Load(modelDir);
        using var checkpoint = ShardedCheckpoint.Open(modelDir);
        var model = new StepAudio2Model(checkpoint, config);
        var prepared = AudioInput.Prepare(audioFiles.Select(AudioInput.Load16k));
        // inputs are always kept: a dump without them cannot be replayed
        var trace = new Trace(capture.Count == 0 ? null : [.. capture, "input.*"]);
        foreach (var (name, tensor) in MelCommand.InputEntries(prepared)) trace.Record(name, tensor);
        var (_, lengths) = model.EncodeAudio(prepared.Batch.Mels, prepared.MelLengths, trace);
        DumpFile.Save(output, trace, $"steplab trace {string.Join(", ", audioFiles.Select(Path.GetFileName))}");
        ui.Out.WriteLine($"{prepared.Mels.Count} chunk(s), audio tokens {string.Join(" + ", lengths)}; {trace.Count} activations written to {output}");
        return StepLabCli.Ok;
    }
}
