using System.Text;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Views;

/// <summary>One traced activation with its statistics, at its position in execution order.</summary>
public sealed record TraceEntry(int Ordinal, string Path, TensorStats Stats);

/// <summary>Trace explorer: module paths in execution order with shapes and stats, grouped into expandable sections.</summary>
public static class TraceExplorerView
{
    /// <summary>Statistics of every entry of <paramref name="trace"/>, in execution order.</summary>
    public static IReadOnlyList<TraceEntry> Entries(Trace trace) =>
        trace.Entries.Select((e, i) => new TraceEntry(i + 1, e.Path, TensorStats.Of(e.Value))).ToList();

    /// <summary>Group key: the module a path belongs to at the depth users navigate by (<c>encoder.blocks.3</c>, <c>adapter</c>, <c>input</c>).</summary>
    public static string Group(string path)
    {
        var parts = path.Split('.');
        return parts.Length >= 3 && parts[1] is "blocks" or "layers" ? string.Join('.', parts.Take(3)) : parts[0];
    }

    /// <summary>The explorer: one expandable section per module group, a statistics row per activation.</summary>
    public static string Render(IReadOnlyList<TraceEntry> entries) => Render(entries, null);

    /// <summary>
    /// The explorer with each activation expandable to a tensor view (<paramref name="detail"/>: the HTML shown under its
    /// row, e.g. <see cref="TensorPlotView.Image"/> of the tensor; null for plain rows).
    /// </summary>
    public static string Render(IReadOnlyList<TraceEntry> entries, Func<TraceEntry, string>? detail)
    {
        var sb = new StringBuilder($"<p>{entries.Count} activations.</p>\n");
        foreach (var g in entries.GroupBy(e => Group(e.Path)))
        {
            sb.Append($"<details class=\"trace-group\"><summary><code>{Html.Esc(g.Key)}</code> ({g.Count()})</summary>\n");
            sb.Append("<table class=\"stats\"><tr><th>#</th><th>path</th><th>dtype</th><th>shape</th><th>min</th><th>max</th><th>mean</th><th>std</th><th>NaN</th><th>Inf</th></tr>");
            foreach (var e in g)
            {
                sb.Append(TensorSummaryView.Row(e.Path, e.Stats).Insert(4, $"<td>{e.Ordinal}</td>"));
                if (detail is not null)
                    sb.Append($"<tr class=\"detail\"><td></td><td colspan=\"9\"><details><summary>tensor view</summary>{detail(e)}</details></td></tr>");
            }
            sb.Append("</table></details>\n");
        }
        return sb.ToString();
    }

    /// <summary>Cells per side of the explorer's thumbnails (a trace holds dozens; <c>Lab.Heatmap</c> draws one in full).</summary>
    public const int ThumbnailSide = 64;

    /// <summary>
    /// The explorer of <paramref name="trace"/> with every activation expandable to a PNG heatmap or line of its values,
    /// mean-pooled to <see cref="ThumbnailSide"/> cells per side (the title says over how many cells).
    /// </summary>
    public static string RenderWithTensors(Trace trace) =>
        Render(Entries(trace), e => TensorPlotView.Image(TensorPlotData.Of(e.Path, trace[e.Path], ThumbnailSide)));
}
