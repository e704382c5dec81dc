using System.Text;
using System.Text.Json.Nodes;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>
/// Softmaxed attention of one encoder layer for one batch item: [heads, T, T] over the valid frames only (padding keys, whose
/// pre-softmax score carries the −1e10 mask bias, are dropped, and so are the padded query rows).
/// </summary>
public sealed record AttentionMaps(string Path, int Heads, int Frames, float[] Probabilities)
{
    /// <summary>Scores at or below this are the mask bias of padding keys (the encoder adds −1e10).</summary>
    public const float MaskThreshold = -1e9f;

    /// <summary>Probabilities of head <paramref name="h"/>, row-major [query, key].</summary>
    public ReadOnlySpan<float> Head(int h) => Probabilities.AsSpan(h * Frames * Frames, Frames * Frames);

    /// <summary>Builds the maps from <c>encoder.blocks.N.attn.qk</c> ([B, H, T, T] pre-softmax scores with the mask bias).</summary>
    public static AttentionMaps FromScores(string path, Tensor qk, int batchIndex = 0)
    {
        if (qk.Rank != 4 || qk.Shape[2] != qk.Shape[3]) throw new ArgumentException($"{path}: expected [B, H, T, T] scores, got {qk}");
        if ((uint)batchIndex >= (uint)qk.Shape[0]) throw new ArgumentOutOfRangeException(nameof(batchIndex));
        int heads = qk.Shape[1], t = qk.Shape[2];
        var s = qk.Select(0, batchIndex).Contiguous().ToFloatArray();
        // valid keys: those of row 0 of head 0 above the mask threshold (the mask is the same for every row and head)
        int valid = 0;
        while (valid < t && s[valid] > MaskThreshold) valid++;
        var p = new float[heads * valid * valid];
        for (int h = 0; h < heads; h++)
            for (int q = 0; q < valid; q++)
            {
                var row = s.AsSpan((h * t + q) * t, valid);
                var dst = p.AsSpan((h * valid + q) * valid, valid);
                float max = float.NegativeInfinity;
                foreach (var v in row) max = Math.Max(max, v);
                double sum = 0;
                for (int k = 0; k < valid; k++) { dst[k] = MathF.Exp(row[k] - max); sum += dst[k]; }
                for (int k = 0; k < valid; k++) dst[k] = (float)(dst[k] / sum);
            }
        return new AttentionMaps(path, heads, valid, p);
    }

    /// <summary>Frames per pooled cell when a head is pooled to at most <paramref name="size"/> cells a side (1: not pooled).</summary>
    public int PoolStride(int size) => Math.Max(1, (Frames + size - 1) / size);

    /// <summary>Head <paramref name="h"/> average-pooled to at most <paramref name="size"/>×<paramref name="size"/> (returns the pooled size).</summary>
    public (float[] Values, int Size) Pooled(int h, int size)
    {
        int per = PoolStride(size), n = (Frames + per - 1) / per;
        var head = Head(h);
        var o = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0; int c = 0;
                for (int q = i * per; q < Math.Min(Frames, (i + 1) * per); q++)
                    for (int k = j * per; k < Math.Min(Frames, (j + 1) * per); k++) { sum += head[q * Frames + k]; c++; }
                o[i * n + j] = (float)(sum / c);
            }
        return (o, n);
    }
}

/// <summary>Attention map views: a grid of all heads of a layer, and one head zoomed.</summary>
public static class AttentionView
{
    /// <summary>One plotly figure per layer with a heatmap per head side by side (pooled to <paramref name="gridSize"/> frames).</summary>
    public static PlotlyFigure LayerGrid(AttentionMaps maps, string id, int gridSize = 64)
    {
        var data = new JsonArray();
        int per = maps.PoolStride(gridSize);
        var layout = PlotlyFigure.BaseLayout($"{maps.Path} (softmax; {maps.Heads} heads, {maps.Frames} valid frames{PooledNote(per)})", "", "");
        double w = 1.0 / maps.Heads;
        for (int h = 0; h < maps.Heads; h++)
        {
            var (v, n) = maps.Pooled(h, gridSize);
            var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(v, n, n, 3), colorscale: "Blues",
                hover: $"head {h}<br>query frame %{{y}} key frame %{{x}}<br>p %{{z:.3f}}<extra></extra>");
            InFrames(trace, per);
            trace["showscale"] = false;
            string sfx = h == 0 ? "" : (h + 1).ToString(System.Globalization.CultureInfo.InvariantCulture);
            trace["xaxis"] = "x" + sfx;
            trace["yaxis"] = "y" + sfx;
            trace["name"] = $"head {h}";
            data.Add(trace);
            layout["xaxis" + sfx] = new JsonObject
            {
                ["domain"] = new JsonArray(h * w + 0.01, (h + 1) * w - 0.01), ["anchor"] = "y" + sfx,
                ["title"] = new JsonObject { ["text"] = $"head {h}" }, ["showticklabels"] = false,
            };
            layout["yaxis" + sfx] = new JsonObject { ["anchor"] = "x" + sfx, ["autorange"] = "reversed", ["showticklabels"] = h == 0 };
        }
        return new PlotlyFigure(id, data, layout);
    }

    /// <summary>One head at up to <paramref name="size"/> frames with a colour bar.</summary>
    public static PlotlyFigure Zoom(AttentionMaps maps, int head, string id, int size = 256)
    {
        var (v, n) = maps.Pooled(head, size);
        int per = maps.PoolStride(size);
        var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(v, n, n, 3), colorscale: "Blues", hover: "query frame %{y} key frame %{x}<br>p %{z:.4f}<extra></extra>");
        InFrames(trace, per);
        var layout = PlotlyFigure.BaseLayout($"{maps.Path}, head {head}{PooledNote(per)}", "key frame", "query frame");
        ((JsonObject)layout["yaxis"]!)["autorange"] = "reversed";
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }

    /// <summary>
    /// Places pooled cells at frame positions (cell i, frames i·<paramref name="per"/> … (i+1)·per − 1, is centred on the
    /// middle of those frames), so the axes read in encoder frames whatever the pooling, not in cell indices.
    /// </summary>
    private static void InFrames(JsonObject trace, int per)
    {
        if (per == 1) return;
        double first = (per - 1) / 2.0;
        trace["x0"] = first; trace["dx"] = per;
        trace["y0"] = first; trace["dy"] = per;
    }

    private static string PooledNote(int per) => per == 1 ? "" : $"; downsampled: {per}×{per} frames per cell";

    /// <summary>Grid per layer plus one zoomed head of the first layer given.</summary>
    public static string Render(IReadOnlyList<AttentionMaps> layers, int zoomLayer = 0, int zoomHead = 0)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < layers.Count; i++)
            sb.Append(LayerGrid(layers[i], $"attention-layer-{i}").ToHtml(260));
        if (layers.Count > 0)
        {
            zoomLayer = Math.Clamp(zoomLayer, 0, layers.Count - 1);
            sb.Append(Zoom(layers[zoomLayer], Math.Clamp(zoomHead, 0, layers[zoomLayer].Heads - 1), "attention-zoom").ToHtml(480));
        }
        return sb.ToString();
    }
}
