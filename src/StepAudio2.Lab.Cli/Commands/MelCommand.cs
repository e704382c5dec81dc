using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab mel &lt;audio&gt; --out &lt;file&gt;</c>: the official 128-bin log-mel of each 25 s chunk. Writes a dump
/// (<c>input.mel.N</c> [128, L], <c>input.wav_lens</c>) as .safetensors or .npz, or one chunk's [128, L] as .npy.
/// </summary>
public static class MelCommand
{
    public static Command Create(CliOutput ui)
    {
        var audio = new Argument<string>("audio") { Description = "WAV, AIFF or AIFF-C file (channel 0 is used, resampled to 16 kHz)" };
        var output = new Option<string>("--out") { Description = "output .safetensors, .npz or .npy", Required = true };
        var cmd = new Command("mel", "Compute the official log-mel frontend of an audio file.") { audio, output };
        cmd.SetAction(p => Run(p.GetValue(audio)!, p.GetValue(output)!, ui));
        return cmd;
    }

    public static int Run(string audioPath, string output, CliOutput ui)
    {
        string ext = DumpOutput.Check(output); // before the audio decode: a typo costs nothing
        var prepared = AudioInput.Prepare([AudioInput.Load16k(audioPath)]);
        if (ext == ".npy")
        {
            if (prepared.Mels.Count != 1)
                throw new ArgumentException($"{audioPath} makes {prepared.Mels.Count} chunks; write .safetensors or .npz to keep them all");
            NpyWriter.Write(output, prepared.Mels[0]);
        }
        else
        {
            DumpFile.Save(output, prepared.InputEntries(), $"steplab mel {Path.GetFileName(audioPath)}");
        }
        for (int i = 0; i < prepared.Mels.Count; i++)
            ui.Out.WriteLine($"chunk {i}: {prepared.Chunks[i].Length} samples → mel [128, {prepared.Mels[i].Shape[1]}] → {prepared.TokenCounts[i]} audio tokens");
        ui.Out.WriteLine($"wrote {output}");
        return StepLabCli.Ok;
    }
}
