using System.Text;
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

/// <summary>Spectrogram views: a plotly heatmap (seconds × mel bin, hover values, chunk boundaries) and a static inline SVG.</summary>
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
    /// A static SVG rendering (no script needed): frames averaged into at most <paramref name="maxColumns"/> columns, low bins at
    /// the bottom, a viridis-like ramp, red lines at chunk starts.
    /// </summary>
    public static string Svg(SpectrogramData s, int maxColumns = 400)
    {
        int cols = Math.Min(maxColumns, s.Frames), per = (s.Frames + cols - 1) / cols;
        cols = (s.Frames + per - 1) / per;
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var v in s.Values) if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }
        var sb = new StringBuilder();
        sb.Append($"<svg class=\"spectrogram-svg\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {cols} {s.Bins}\" preserveAspectRatio=\"none\" width=\"100%\" height=\"160\" shape-rendering=\"crispEdges\">");
        for (int b = 0; b < s.Bins; b++)
        {
            int yPix = s.Bins - 1 - b;
            for (int c = 0; c < cols; c++)
            {
                double sum = 0; int n = 0;
                for (int f = c * per; f < Math.Min(s.Frames, (c + 1) * per); f++) { sum += s.Values[(long)b * s.Frames + f]; n++; }
                double u = hi > lo ? (sum / n - lo) / (hi - lo) : 0;
                sb.Append($"<rect x=\"{c}\" y=\"{yPix}\" width=\"1\" height=\"1\" fill=\"{Ramp(u)}\"/>");
            }
        }
        foreach (var start in s.ChunkStarts.Skip(1))
            sb.Append($"<line x1=\"{start / per}\" x2=\"{start / per}\" y1=\"0\" y2=\"{s.Bins}\" stroke=\"red\" stroke-width=\"1\"/>");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    // Piecewise-linear approximation of viridis through five of its stops.
    private static readonly (double R, double G, double B)[] Stops = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)];

    internal static string Ramp(double u)
    {
        u = Math.Clamp(double.IsFinite(u) ? u : 0, 0, 1) * (Stops.Length - 1);
        int i = Math.Min((int)u, Stops.Length - 2);
        double f = u - i;
        var (a, b) = (Stops[i], Stops[i + 1]);
        return $"#{(int)(a.R + f * (b.R - a.R)):x2}{(int)(a.G + f * (b.G - a.G)):x2}{(int)(a.B + f * (b.B - a.B)):x2}";
    }
}
