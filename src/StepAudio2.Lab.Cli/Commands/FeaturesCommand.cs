using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Audio.PromptFeatures;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab features &lt;audio&gt; --kind mel128|s3mel|fbank80|mel24k --out &lt;file&gt;</c>: one frontend's output as
/// tensor <c>features.&lt;kind&gt;</c> in a .safetensors, .npz or .npy file. Layouts: mel128 and s3mel [128, L] (16 kHz
/// channel 0; the LLM mel with the 479 pad, one 25 s chunk at most; the S3 tokenizer's without it), fbank80 [T, 80]
/// (Kaldi fbank after mean subtraction, the CAM++ input), mel24k [1, T, 80] (24 kHz channel mean, the unpadded prompt mel).
/// </summary>
public static class FeaturesCommand
{
    /// <summary>The frontends this command can run.</summary>
    public static IReadOnlyList<string> Kinds { get; } = ["mel128", "s3mel", "fbank80", "mel24k"];

    public static Command Create(CliOutput ui)
    {
        var audio = new Argument<string>("audio") { Description = "WAV, AIFF or AIFF-C file" };
        var kind = new Option<string>("--kind") { Description = "mel128 | s3mel | fbank80 | mel24k", Required = true };
        var output = new Option<string>("--out") { Description = "output .safetensors, .npz or .npy", Required = true };
        var cmd = new Command("features", "Write one audio frontend's output (LLM mel, S3 mel, CAM++ fbank, 24 kHz prompt mel).") { audio, kind, output };
        cmd.SetAction(p => Run(p.GetValue(audio)!, p.GetValue(kind)!, p.GetValue(output)!, ui));
        return cmd;
    }

    public static int Run(string audioPath, string kind, string output, CliOutput ui)
    {
        // Check the cheap things first, so that a typo does not cost an audio decode.
        if (!Kinds.Contains(kind))
            throw new ArgumentException($"unknown --kind '{kind}'; expected one of {string.Join(", ", Kinds)}");
        string ext = DumpOutput.Check(output);

        var features = Compute(AudioFile.RequireSamples(AudioFile.Read(audioPath), audioPath), kind, audioPath);
        string name = $"features.{kind}";
        switch (ext)
        {
            case ".safetensors":
                SafetensorsWriter.Write(output, [new(name, features)], new Dictionary<string, string> { ["steplab.source"] = Path.GetFileName(audioPath) });
                break;
            case ".npz":
                NpzWriter.Write(output, [(name, features)]);
                break;
            default:
                NpyWriter.Write(output, features);
                break;
        }
        ui.Out.WriteLine($"{name} [{string.Join(", ", features.Shape)}] → {output}");
        return StepLabCli.Ok;
    }

    /// <summary>The <paramref name="kind"/> features of a decoded clip (see the type's summary for layouts).</summary>
    public static Tensor Compute(AudioClip clip, string kind, string sourceName)
    {
        switch (kind)
        {
            case "mel24k":
            {
                var mono = clip.MonoMean();
                var wav24 = clip.SampleRate == Mel24k.SampleRate ? mono : Resampler.Resample(mono, clip.SampleRate, Mel24k.SampleRate);
                return Mel24k.Compute(wav24);
            }
            case "mel128":
            {
                var wav = AudioInput.To16k(clip);
                if (wav.Length > LogMelFrontend.ChunkSamples)
                    throw new ArgumentException($"{sourceName} is longer than 25 s; the LLM mel is made per 25 s chunk: use 'steplab mel' for all chunks");
                return LogMelFrontend.Compute(wav);
            }
            case "s3mel":
                return LogMelFrontend.Compute(AudioInput.To16k(clip), pad479: false);
            case "fbank80":
                return KaldiFbank.CmnFbank(AudioInput.To16k(clip));
            default:
                throw new ArgumentException($"unknown kind '{kind}'; expected one of {string.Join(", ", Kinds)}", nameof(kind));
        }
    }
}
