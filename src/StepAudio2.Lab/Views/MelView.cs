using System.Text.Json.Nodes;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>
/// An 80-bin mel of the speech-out half ([bins, frames] row-major; the flow's output, a CFM state or a voice prompt's mel)
/// with its frame period and, when it starts with the voice prompt's frames, how many of them there are.
/// </summary>
public sealed record MelData(float[] Values, int Bins, int Frames, double SecondsPerFrame, int PromptFrames = 0, string Title = "mel")
{
    /// <summary>The flow's frame period: hop 480 at 24 kHz (docs/model.md §7.5), 50 frames per second.</summary>
    public const double FlowSecondsPerFrame = 480.0 / 24000;

    /// <summary>A channels-first mel, [1, bins, T] or [bins, T] (the flow's and the CFM's layout).</summary>
    public static MelData ChannelsFirst(Tensor mel, string title = "mel", int promptFrames = 0, double secondsPerFrame = FlowSecondsPerFrame)
    {
        var (bins, frames) = mel.Rank switch
        {
            2 => (mel.Shape[0], mel.Shape[1]),
            3 when mel.Shape[0] == 1 => (mel.Shape[1], mel.Shape[2]),
            _ => throw new ArgumentException($"mel {Tensor.ShapeString(mel.Shape)} must be [1, bins, T] or [bins, T]", nameof(mel)),
        };
        CheckPrompt(promptFrames, frames);
        return new MelData(mel.ToFloatArray(), bins, frames, secondsPerFrame, promptFrames, title);
    }

    /// <summary>A frames-first mel, [1, T, bins] or [T, bins] (the voice prompt's layout, <c>input.prompt_mel</c>).</summary>
    public static MelData FramesFirst(Tensor mel, string title = "mel", int promptFrames = 0, double secondsPerFrame = FlowSecondsPerFrame)
    {
        var (frames, bins) = mel.Rank switch
        {
            2 => (mel.Shape[0], mel.Shape[1]),
            3 when mel.Shape[0] == 1 => (mel.Shape[1], mel.Shape[2]),
            _ => throw new ArgumentException($"mel {Tensor.ShapeString(mel.Shape)} must be [1, T, bins] or [T, bins]", nameof(mel)),
        };
        CheckPrompt(promptFrames, frames);
        var v = mel.ToFloatArray();
        var t = new float[v.Length];
        for (int f = 0; f < frames; f++)
            for (int b = 0; b < bins; b++)
                t[(long)b * frames + f] = v[(long)f * bins + b];
        return new MelData(t, bins, frames, secondsPerFrame, promptFrames, title);
    }

    /// <summary>The same picture as a <see cref="SpectrogramData"/> (for its static PNG).</summary>
    public SpectrogramData ToSpectrogram() => new(Values, Bins, Frames, PromptFrames > 0 ? [0, PromptFrames] : [0], SecondsPerFrame);

    private static void CheckPrompt(int promptFrames, int frames)
    {
        if (promptFrames < 0 || promptFrames > frames)
            throw new ArgumentOutOfRangeException(nameof(promptFrames), $"prompt frames {promptFrames} outside 0..{frames}");
    }
}

/// <summary>
/// Views of the flow's mels (docs/model.md §7.6–7.8): one mel as a heatmap (seconds × mel bin, the voice prompt's frames shaded),
/// and a strip of mels on one colour scale — the CFM states after each Euler step, or any row of related mels.
/// </summary>
public static class MelView
{
    /// <summary>One mel as a heatmap; a translucent box and a dashed line mark the voice prompt's frames.</summary>
    public static PlotlyFigure Figure(MelData m, string id = "mel", string colorscale = "Viridis")
    {
        var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(m.Values, m.Bins, m.Frames), Seconds(m), Bins(m), colorscale,
            "t %{x:.2f} s<br>mel bin %{y}<br>%{z:.3f}<extra></extra>");
        var layout = PlotlyFigure.BaseLayout($"{m.Title} [{m.Bins}, {m.Frames}]{(m.PromptFrames > 0 ? $", first {m.PromptFrames} frames = voice prompt" : "")}",
            "seconds", "mel bin");
        if (m.PromptFrames > 0) layout["shapes"] = PromptMarks(m, "x", "y");
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }

    /// <summary>
    /// Several mels of the same shape side by side (<paramref name="columns"/> per row) on one shared colour scale, so that
    /// a state that is still noise and one that is already a mel look different; each panel titled with its
    /// <see cref="MelData.Title"/>.
    /// </summary>
    public static PlotlyFigure Strip(IReadOnlyList<MelData> mels, string title, string id = "mel-strip", int columns = 5, string colorscale = "Viridis")
    {
        if (mels.Count == 0) throw new ArgumentException("no mels for the strip", nameof(mels));
        ArgumentOutOfRangeException.ThrowIfLessThan(columns, 1);
        columns = Math.Min(columns, mels.Count);
        int rows = (mels.Count + columns - 1) / columns;
        float lo = float.PositiveInfinity, hi = float.NegativeInfinity;
        foreach (var m in mels)
            foreach (var v in m.Values)
                if (float.IsFinite(v)) { lo = Math.Min(lo, v); hi = Math.Max(hi, v); }

        var data = new JsonArray();
        var annotations = new JsonArray();
        var shapes = new JsonArray();
        var layout = new JsonObject
        {
            ["title"] = new JsonObject { ["text"] = title, ["font"] = new JsonObject { ["size"] = 13 } },
            ["grid"] = new JsonObject { ["rows"] = rows, ["columns"] = columns, ["pattern"] = "independent", ["xgap"] = 0.04, ["ygap"] = 0.25 },
            ["coloraxis"] = new JsonObject { ["colorscale"] = colorscale, ["cmin"] = Html.Json(lo), ["cmax"] = Html.Json(hi) },
            ["margin"] = new JsonObject { ["l"] = 40, ["r"] = 10, ["t"] = 50, ["b"] = 30 },
        };
        for (int i = 0; i < mels.Count; i++)
        {
            var m = mels[i];
            string k = i == 0 ? "" : (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var t = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(m.Values, m.Bins, m.Frames, 3), Seconds(m), Bins(m), colorscale,
                $"{Html.Esc(m.Title)}<br>t %{{x:.2f}} s<br>mel bin %{{y}}<br>%{{z:.3f}}<extra></extra>");
            t.Remove("colorscale");
            t["coloraxis"] = "coloraxis";
            t["xaxis"] = "x" + k;
            t["yaxis"] = "y" + k;
            data.Add(t);
            layout["xaxis" + k] = new JsonObject { ["showticklabels"] = i >= (rows - 1) * columns, ["tickfont"] = new JsonObject { ["size"] = 9 } };
            layout["yaxis" + k] = new JsonObject { ["showticklabels"] = i % columns == 0, ["tickfont"] = new JsonObject { ["size"] = 9 } };
            annotations.Add(new JsonObject
            {
                ["text"] = m.Title, ["showarrow"] = false, ["xref"] = $"x{k} domain", ["yref"] = $"y{k} domain",
                ["x"] = 0.5, ["y"] = 1.0, ["yanchor"] = "bottom", ["font"] = new JsonObject { ["size"] = 10 },
            });
            if (m.PromptFrames > 0)
                foreach (var s in PromptMarks(m, "x" + k, $"y{k} domain")) shapes.Add(s!.DeepClone());
        }
        layout["annotations"] = annotations;
        if (shapes.Count > 0) layout["shapes"] = shapes;
        return new PlotlyFigure(id, data, layout);
    }

    /// <summary>A line over frames (e.g. the HiFT's F0 per mel frame), x in seconds.</summary>
    public static PlotlyFigure Line(float[] values, double secondsPerPoint, string title, string yTitle, string id = "line", string name = "value")
    {
        var x = Html.Array(Enumerable.Range(0, values.Length).Select(i => i * secondsPerPoint), 6);
        var trace = new JsonObject
        {
            ["type"] = "scatter", ["mode"] = "lines", ["name"] = name, ["x"] = x, ["y"] = Html.Array(values.Select(v => (double)v)),
            ["hovertemplate"] = "t %{x:.3f} s<br>%{y:.4f}<extra></extra>",
        };
        return new PlotlyFigure(id, new JsonArray(trace), PlotlyFigure.BaseLayout(title, "seconds", yTitle));
    }

    private static JsonArray Seconds(MelData m) => Html.Array(Enumerable.Range(0, m.Frames).Select(f => f * m.SecondsPerFrame), 6);

    private static JsonArray Bins(MelData m) => new(Enumerable.Range(0, m.Bins).Select(b => (JsonNode?)JsonValue.Create(b)).ToArray());

    // The prompt's frames: a translucent white box over them and a dashed line where the generated frames begin.
    private static JsonArray PromptMarks(MelData m, string xref, string yref)
    {
        double end = (m.PromptFrames - 0.5) * m.SecondsPerFrame, start = -0.5 * m.SecondsPerFrame;
        bool paper = yref.EndsWith("domain", StringComparison.Ordinal);
        string yr = paper ? yref : "paper";
        return
        [
            new JsonObject
            {
                ["type"] = "rect", ["xref"] = xref, ["yref"] = yr, ["x0"] = start, ["x1"] = end, ["y0"] = 0, ["y1"] = 1,
                ["fillcolor"] = "rgba(255,255,255,0.18)", ["line"] = new JsonObject { ["width"] = 0 },
            },
            new JsonObject
            {
                ["type"] = "line", ["xref"] = xref, ["yref"] = yr, ["x0"] = end, ["x1"] = end, ["y0"] = 0, ["y1"] = 1,
                ["line"] = new JsonObject { ["color"] = "white", ["width"] = 2, ["dash"] = "dash" },
            },
        ];
    }
}
