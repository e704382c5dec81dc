using System.Text.Json;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Models.Token2Wav;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>What the speech commands share: WAV output, the progress bar over flow steps + vocoder, JSON settings.</summary>
internal static class SpeechOutput
{
    public static JsonSerializerOptions Json { get; } = new() { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// Writes 24 kHz mono: IEEE float32 by default (lossless; what the official non-streaming path is assumed to write,
    /// docs/model.md §7.11), 16-bit PCM with <paramref name="pcm16"/> (clip to ±1, × 32767).
    /// </summary>
    public static void WriteWav(string path, float[] waveform, bool pcm16)
    {
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"--out: no such folder: {dir}");
        WavWriter.Write(path, waveform, Token2Wav.SampleRate, pcm16 ? WavSampleFormat.Pcm16 : WavSampleFormat.Float32);
    }

    /// <summary>A token2wav progress reporter feeding the CLI's bar: 10 flow steps, then one vocoder step.</summary>
    public static IProgress<Token2WavProgress> Relay(IProgress<(int Done, int Total, string Item)> bar) => new Relay(bar);

    /// <summary>Checks that --out can be written before minutes of work are spent.</summary>
    public static void CheckOutput(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (dir is not null && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"--out: no such folder: {dir}");
    }
}

internal sealed class Relay(IProgress<(int Done, int Total, string Item)> bar) : IProgress<Token2WavProgress>
{
    private int _flowSteps = 10;

    public void Report(Token2WavProgress p)
    {
        if (p.Stage == "flow")
        {
            _flowSteps = p.Total;
            bar.Report((p.Done, p.Total + 1, $"flow step {p.Done}/{p.Total}"));
        }
        else bar.Report((_flowSteps + p.Done, _flowSteps + 1, "vocoder"));
    }
}
