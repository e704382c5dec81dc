using System.Text.Json.Nodes;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>The log-mel of a request as one [128, L] matrix (chunks side by side) with the frame where each chunk starts.</summary>
public sealed record SpectrogramData(float[] Values, int Bins, int Frames, int[] ChunkStarts, double SecondsPerFrame)
{
    /// <summary>Concatenates the per-chunk mels ([128, L_i] each) along time.</summary>
    public static SpectrogramData FromChunks(IReadOnlyList<Tensor> mels)
    {
        if (mels.Count == 0) throw new ArgumentException("no mel chunks");
        int bins = mels[0].Shape[0];
        int frames = mels.Sum(m => m.Shape[1]);
        var values = new float[(long)bins * frames];
        var starts = new int[mels.Count];
        int at = 0;
        for (int i = 0; i < mels.Count; i++)
        {
            if (mels[i].Rank != 2 || mels[i].Shape[0] != bins) throw new ArgumentException($"chunk {i} mel is {mels[i]}, expected [{bins}, L]");
            var m = mels[i].ToFloatArray();
            int l = mels[i].Shape[1];
            for (int b = 0; b < bins; b++) Array.Copy(m, (long)b * l, values, (long)b * frames + at, l);
            starts[i] = at;
            at += l;
        }
        return new SpectrogramData(values, bins, frames, starts, (double)LogMelFrontend.HopLength / LogMelFrontend.SampleRate);
    }
}

/// <summary>Spectrogram views: a plotly heatmap (seconds × mel bin, hover values, chunk boundaries) and a static PNG.</summary>
public static class SpectrogramView
{
    /// <summary>The heatmap figure: z is [bins][frames], x in seconds, y the mel bin; dashed lines where chunks start.</summary>
    public static PlotlyFigure Figure(SpectrogramData s, string id = "spectrogram")
    {
        var x = Html.Array(Enumerable.Range(0, s.Frames).Select(f => f * s.SecondsPerFrame), 6);
        var y = new JsonArray(Enumerable.Range(0, s.Bins).Select(b => (JsonNode?)JsonValue.Create(b)).ToArray());
        var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(s.Values, s.Bins, s.Frames), x, y, "Viridis",
            "t %{x:.2f} s<br>mel bin %{y}<br>log-mel %{z:.3f}<extra></extra>");
        var layout = PlotlyFigure.BaseLayout($"log-mel [{s.Bins}, {s.Frames}], {s.ChunkStarts.Length} chunk(s)", "seconds", "mel bin");
        var shapes = new JsonArray();
        foreach (var start in s.ChunkStarts.Skip(1))
        {
            double t = start * s.SecondsPerFrame;
            shapes.Add(new JsonObject
            {
                ["type"] = "line", ["x0"] = t, ["x1"] = t, ["yref"] = "paper", ["y0"] = 0, ["y1"] = 1,
                ["line"] = new JsonObject { ["color"] = "white", ["width"] = 2, ["dash"] = "dash" },
            });
        }
        layout["shapes"] = shapes;
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }

    /// <summary>
    /// A static rendering that needs no script: one pixel per frame and mel bin (low bins at the bottom), a viridis-like ramp
    /// over the finite range, red columns where chunks start; a PNG in an <c>&lt;img&gt;</c> data URI.
    /// </summary>
    public static string Image(SpectrogramData s)
    {
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in s.Values) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        var rgb = new byte[(long)s.Frames * s.Bins * 3];
        var starts = s.ChunkStarts.Skip(1).ToHashSet();
        for (int b = 0; b < s.Bins; b++)
        {
            int row = s.Bins - 1 - b;
            for (int f = 0; f < s.Frames; f++)
            {
                var (r, g, bl) = starts.Contains(f) ? ((byte)255, (byte)0, (byte)0) : Ramp(hi > lo ? (s.Values[(long)b * s.Frames + f] - lo) / (hi - lo) : 0);
                long o = ((long)row * s.Frames + f) * 3;
                rgb[o] = r; rgb[o + 1] = g; rgb[o + 2] = bl;
            }
        }
        var png = PngImage.EncodeRgb(s.Frames, s.Bins, rgb);
        return $"<img class=\"spectrogram-png\" alt=\"log-mel [{s.Bins}, {s.Frames}]\" width=\"{Math.Min(1200, s.Frames * 2)}\" height=\"{s.Bins * 2}\" " +
               $"style=\"image-rendering:pixelated\" src=\"data:image/png;base64,{Convert.ToBase64String(png)}\">\n";
    }

    // Piecewise-linear approximation of viridis through five of its stops.
    private static readonly (double R, double G, double B)[] Stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)];

    private const int RampSteps = 240;

    internal static (byte R, byte G, byte B) Ramp(double u)
    {
        // 240 steps: invisible banding, and with the red marks the image fits a PNG palette (one byte per pixel)
        u = Math.Round(Math.Clamp(double.IsFinite(u) ? u : 0, 0, 1) * RampSteps) / RampSteps * (Stops.Length - 1);
        int i = Math.Min((int)u, Stops.Length - 2);
        double f = u - i;
        var (a, b) = (Stops[i], Stops[i + 1]);
        return ((byte)(a.R + f * (b.R - a.R)), (byte)(a.G + f * (b.G - a.G)), (byte)(a.B + f * (b.B - a.B)));
    }
}
