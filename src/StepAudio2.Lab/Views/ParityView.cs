using System.Text;
using System.Text.Json.Nodes;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Views;

/// <summary>|a−b| of one tensor folded to 2-D ([product of leading dims, last dim]) and max-pooled so the worst cells stay visible.</summary>
public sealed record DiffMap(string Name, int[] Shape, float[] Values, int Rows, int Cols, int RowStride, int ColStride)
{
    /// <summary>Builds the map; the shapes must match.</summary>
    public static DiffMap Of(string name, Tensor candidate, Tensor reference, int maxSide = 200)
    {
        if (!candidate.Shape.AsSpan().SequenceEqual(reference.Shape)) throw new ArgumentException($"{name}: shapes {candidate} and {reference} differ");
        var a = candidate.ToDoubleArray();
        var b = reference.ToDoubleArray();
        int cols0 = candidate.Rank == 0 ? 1 : candidate.Shape[^1];
        int rows0 = cols0 == 0 ? 0 : (int)(a.LongLength / cols0);
        int rs = Math.Max(1, (rows0 + maxSide - 1) / maxSide), cs = Math.Max(1, (cols0 + maxSide - 1) / maxSide);
        int rows = (rows0 + rs - 1) / rs, cols = (cols0 + cs - 1) / cs;
        var v = new float[rows * cols];
        for (int r = 0; r < rows0; r++)
            for (int c = 0; c < cols0; c++)
            {
                long i = (long)r * cols0 + c;
                double d = Math.Abs(a[i] - b[i]);
                if (double.IsNaN(d)) d = double.PositiveInfinity; // a NaN on one side is the worst difference
                ref float cell = ref v[(r / rs) * cols + c / cs];
                cell = Math.Max(cell, (float)d);
            }
        return new DiffMap(name, candidate.Shape.ToArray(), v, rows, cols, rs, cs);
    }
}

/// <summary>Parity report view: summary, pass/fail-coloured table of every row, the first failing path with its hint, and |a−b|.</summary>
public static class ParityView
{
    /// <summary>The summary and table of a whole-dump comparison.</summary>
    public static string Render(DumpComparison c)
    {
        var sb = new StringBuilder();
        var first = c.FirstFailure;
        sb.Append($"<p class=\"verdict {(c.AllPassed ? "pass" : "fail")}\">{(c.AllPassed ? "PASS" : "FAIL")}: {c.Compared} compared, {c.Failed} failing");
        sb.Append($" — candidate <code>{Html.Esc(Path.GetFileName(c.CandidatePath))}</code> vs reference <code>{Html.Esc(Path.GetFileName(c.ReferencePath))}</code></p>\n");
        if (first is not null)
        {
            sb.Append($"<p class=\"first-failure\">first failing path (#{first.Ordinal}): <code>{Html.Esc(first.Name)}</code>");
            var hint = first.Comparison?.Hint.Text ?? first.Error ?? first.Status.ToString();
            if (!string.IsNullOrEmpty(hint)) sb.Append($" — <span class=\"hint\">{Html.Esc(hint)}</span>");
            sb.Append("</p>\n");
        }
        sb.Append("<p class=\"rules\">rules applied: " + string.Join("; ", ParityReport.RuleLines(c).Select(l => Html.Esc(l.Trim()))) + "</p>\n");
        if (c.BatchDimOnly.Count > 0)
            sb.Append($"<p class=\"note\">note: {c.BatchDimOnly.Count} tensor(s) differ from the reference only by a leading batch dim of 1 (e.g. <code>{Html.Esc(c.BatchDimOnly[0])}</code>); compared element for element</p>\n");
        if (c.MissingInCandidate.Count > 0) sb.Append($"<p>only in the reference: {Html.Esc(string.Join(", ", c.MissingInCandidate))}</p>\n");
        if (c.MissingInReference.Count > 0) sb.Append($"<p>only in the candidate: {Html.Esc(string.Join(", ", c.MissingInReference))}</p>\n");
        sb.Append("<table class=\"parity\"><tr><th>#</th><th>name</th><th>shape</th><th>tolerance</th><th>max|Δ| @ index</th><th>mean|Δ|</th><th>relL2</th><th>cosine</th><th>NaN/Inf</th><th>status</th><th>hint</th></tr>\n");
        foreach (var r in c.Rows)
        {
            var m = r.Comparison;
            string status = r.Status switch
            {
                RowStatus.Pass => "PASS", RowStatus.Fail => "FAIL", RowStatus.Error => "ERROR",
                RowStatus.MissingInCandidate => "missing in candidate", _ => "missing in reference",
            };
            string cls = r.IsFailure ? "fail" : r.Status == RowStatus.Pass ? "pass" : "missing";
            string shape = m is null ? Html.Esc(Tensor.ShapeString((r.ReferenceInfo ?? r.CandidateInfo)!.Shape))
                : m.ShapeMatch ? Html.Esc(m.ReferenceShapeText)
                : $"{Html.Esc(m.CandidateShapeText)} {(m.BatchDimOnly ? "≈" : "vs")} {Html.Esc(m.ReferenceShapeText)}";
            var tol = m?.Tolerance ?? r.Tolerance;
            string rule = ParityReport.RuleText(r.Rule, tol);
            sb.Append($"<tr class=\"{cls}\"{(r == first ? " id=\"first-failure\"" : "")}><td>{r.Ordinal}</td><td class=\"path\">{Html.Esc(r.Name)}</td><td>{shape}</td><td>{Html.Esc(rule)}</td>");
            if (m is not null && m.ElementCount > 0)
                sb.Append($"<td>{Html.Num(m.MaxAbsDiff)} @ {Html.Esc(TensorComparer.IndexString(m.MaxAbsIndex))}</td><td>{Html.Num(m.MeanAbsDiff)}</td><td>{Html.Num(m.RelL2)}</td><td>{Html.Num(m.Cosine)}</td>" +
                          $"<td>{m.CandidateNaN + m.CandidateInf}/{m.ReferenceNaN + m.ReferenceInf}</td>");
            else sb.Append("<td></td><td></td><td></td><td></td><td></td>");
            string note = m is { Passed: true, BatchDimOnly: true } ? "only a leading batch dim of 1 differs" : m?.Hint.Text ?? r.Error ?? "";
            sb.Append($"<td class=\"status\">{status}</td><td>{Html.Esc(note)}</td></tr>\n");
        }
        sb.Append("</table>\n");
        return sb.ToString();
    }

    /// <summary>The |a−b| heatmap of the first failing row whose shapes match (null when there is none).</summary>
    public static PlotlyFigure? FirstFailureHeatmap(DumpComparison c, ITensorSource candidate, ITensorSource reference, string id = "parity-diff")
    {
        var row = c.FirstFailure;
        if (row?.Comparison is not { ShapeMatch: true, ElementCount: > 0 }) return null;
        return DiffFigure(DiffMap.Of(row.Name, candidate.Get(row.Name), reference.Get(row.Name)), id);
    }

    /// <summary>
    /// The row whose |a−b| is most worth a look: the first failing row with matching shapes, else (all passing) the row
    /// with the largest max |a−b|; null when no row was compared element-wise.
    /// </summary>
    public static DumpRow? RowToMap(DumpComparison c)
    {
        var first = c.FirstFailure;
        if (first?.Comparison is { ShapeMatch: true, ElementCount: > 0 }) return first;
        if (first is not null) return null;
        return c.Rows.Where(r => r.Comparison is { ShapeMatch: true, ElementCount: > 0 })
            .OrderByDescending(r => r.Comparison!.MaxAbsDiff).FirstOrDefault();
    }

    /// <summary>A heatmap of a <see cref="DiffMap"/>.</summary>
    public static PlotlyFigure DiffFigure(DiffMap d, string id = "parity-diff")
    {
        string pooled = d.RowStride > 1 || d.ColStride > 1 ? $", max over {d.RowStride}×{d.ColStride} cells" : "";
        var trace = PlotlyFigure.Heatmap(PlotlyFigure.Matrix(d.Values, d.Rows, d.Cols), colorscale: "Reds", hover: "row %{y} col %{x}<br>|a−b| %{z:.3g}<extra></extra>");
        var layout = PlotlyFigure.BaseLayout($"|a−b| of {d.Name} {Tensor.ShapeString(d.Shape)}{pooled}", $"last dim{(d.ColStride > 1 ? $" / {d.ColStride}" : "")}", $"leading dims{(d.RowStride > 1 ? $" / {d.RowStride}" : "")}");
        ((JsonObject)layout["yaxis"]!)["autorange"] = "reversed";
        return new PlotlyFigure(id, new JsonArray(trace), layout);
    }
}
