using System.Text.Json.Nodes;
using StepAudio2.Lab.Audio;

namespace StepAudio2.Lab.Views;

/// <summary>Waveform views: a min/max envelope scatter plot and an inline <c>&lt;audio&gt;</c> player with the clip as a WAV data URI.</summary>
public static class WaveformView
{
    /// <summary>
    /// The envelope figure: the samples split into at most <paramref name="maxBuckets"/> buckets, each drawn as its min and
    /// max (so peaks survive the reduction); exact samples when the clip is short.
    /// </summary>
    public static PlotlyFigure Figure(ReadOnlySpan<float> samples, int sampleRate, string id = "waveform", int maxBuckets = 2000)
    {
        var x = new List<double>();
        var y = new List<double>();
        int per = Math.Max(1, (samples.Length + maxBuckets - 1) / maxBuckets);
        for (int start = 0; start < samples.Length; start += per)
        {
            var b = samples.Slice(start, Math.Min(per, samples.Length - start));
            if (per == 1) { x.Add((double)start / sampleRate); y.Add(b[0]); continue; }
            float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
            foreach (var v in b) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
            double t = (double)start / sampleRate;
            x.Add(t); y.Add(lo);
            x.Add(t); y.Add(hi);
        }
        var trace = new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "lines", ["x"] = Html.Array(x, 7), ["y"] = Html.Array(y),
            ["line"] = new JsonObject { ["width"] = 1, ["color"] = "#1f77b4" },
            ["hovertemplate"] = "t %{x:.3f} s<br>%{y:.4f}<extra></extra>",
        };
        var layout = PlotlyFigure.BaseLayout($"waveform, {samples.Length} samples at {sampleRate} Hz ({(double)samples.Length / sampleRate:F2} s)", "seconds", "amplitude");
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }

    /// <summary>The clip as a 16-bit PCM mono WAV, base64 in a <c>data:audio/wav;base64,</c> URI.</summary>
    public static string WavDataUri(ReadOnlySpan<float> samples, int sampleRate)
    {
        using var ms = new MemoryStream();
        WavWriter.Write(ms, samples, 1, sampleRate, WavSampleFormat.Pcm16);
        return "data:audio/wav;base64," + Convert.ToBase64String(ms.GetBuffer(), 0, (int)ms.Length);
    }

    /// <summary>Caption, player and envelope plot of <paramref name="w"/> (figure id <paramref name="id"/>).</summary>
    public static string Render(Waveform w, string id, int heightPx = 220) =>
        $"<p><b>{Html.Esc(w.Title)}</b>: {w.Samples.Length} samples at {w.SampleRate} Hz ({w.Seconds:F2} s)</p>\n" +
        AudioPlayer(w.Samples, w.SampleRate) + Figure(w.Samples, w.SampleRate, id).ToHtml(heightPx);

    /// <summary>An <c>&lt;audio controls&gt;</c> element playing the embedded clip.</summary>
    public static string AudioPlayer(ReadOnlySpan<float> samples, int sampleRate) =>
        $"<audio controls preload=\"metadata\" src=\"{WavDataUri(samples, sampleRate)}\"></audio>\n";
}

/// <summary>Mono samples at a rate, with a caption: what the waveform view and the audio player show.</summary>
public sealed record Waveform(float[] Samples, int SampleRate, string Title = "waveform")
{
    /// <summary>Channel 0 of <paramref name="clip"/> at its own rate, captioned with its source.</summary>
    public static Waveform Of(AudioClip clip) =>
        new(clip.MonoChannel0(), clip.SampleRate, clip.SourcePath is null ? $"{clip.Duration.TotalSeconds:F2} s at {clip.SampleRate} Hz" : Path.GetFileName(clip.SourcePath));

    /// <summary>Duration in seconds.</summary>
    public double Seconds => (double)Samples.Length / SampleRate;
}
