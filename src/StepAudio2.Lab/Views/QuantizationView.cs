using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using StepAudio2.Lab.Parity;

namespace StepAudio2.Lab.Views;

/// <summary>
/// Where quantization error enters (<see cref="QuantizationComparison"/>, one per quantized checkpoint against the same
/// float trace): a summary table, rel-L2 of every module against depth (one line per checkpoint, log scale), and the
/// next-token KL at every prompt position with the top-1 disagreements marked.
/// </summary>
public static class QuantizationView
{
    /// <summary>Summary, per-layer table, both figures.</summary>
    public static string Render(IReadOnlyList<(string Label, QuantizationComparison Comparison)> runs, string idPrefix = "quant")
    {
        ArgumentNullException.ThrowIfNull(runs);
        var sb = new StringBuilder(Summary(runs));
        sb.Append(ErrorByDepth(runs, idPrefix + "-depth").ToHtml(380));
        if (runs.Any(r => r.Comparison.Positions is not null)) sb.Append(KlByPosition(runs, idPrefix + "-kl").ToHtml(320));
        foreach (var (label, q) in runs) sb.Append(LayerTable(label, q));
        return sb.ToString();
    }

    /// <summary>One row per checkpoint: where error enters, last layer, KL, top-1, greedy divergence.</summary>
    public static string Summary(IReadOnlyList<(string Label, QuantizationComparison Comparison)> runs)
    {
        var sb = new StringBuilder("<table class=\"listing quantization\"><tr><th>checkpoint</th><th>error enters at</th><th>last module rel-L2</th>" +
                                   "<th>mean KL (nats)</th><th>max KL @ position</th><th>top-1 agreement</th><th>greedy ids</th></tr>\n");
        foreach (var (label, q) in runs)
        {
            var first = q.FirstDeparture;
            var last = q.Modules.Count > 0 ? q.Modules[^1] : null;
            string top1 = q.Positions is { Count: > 0 } p ? $"{q.Top1Agreeing}/{p.Count} ({(100 * q.Top1Agreement).ToString("0.0", CultureInfo.InvariantCulture)} %)" : "–";
            string greedy = q.Greedy is not { } g ? "–" : g.Step is null ? $"identical over {g.ReferenceLength}" : $"diverge at step {g.Step}";
            sb.Append($"<tr><td>{Html.Esc(label)}</td><td class=\"path\">{(first is null ? "nowhere (bit-identical)" : Html.Esc(first.Name))}</td>" +
                      $"<td>{(last is null ? "–" : $"{Html.Num(last.RelL2)} <span class=\"path\">{Html.Esc(last.Name)}</span>")}</td>" +
                      $"<td>{(q.Positions is null ? "–" : Html.Num(q.MeanKL))}</td><td>{(q.MaxKL is { } m ? $"{Html.Num(m.KL)} @ {m.Position}" : "–")}</td>" +
                      $"<td>{top1}</td><td>{greedy}</td></tr>\n");
        }
        sb.Append("</table>\n");
        foreach (var (label, q) in runs)
            foreach (var n in q.Notes) sb.Append($"<p class=\"note\">{Html.Esc(label)}: {Html.Esc(n)}</p>\n");
        return sb.ToString();
    }

    /// <summary>rel-L2 of each layer's output and its worst module.</summary>
    public static string LayerTable(string label, QuantizationComparison q)
    {
        var sb = new StringBuilder($"<details><summary>{Html.Esc(label)}: rel-L2 per layer</summary><table class=\"listing\"><tr><th>stack</th><th>layer</th><th>modules</th><th>output rel-L2</th><th>worst rel-L2</th><th>worst module</th></tr>\n");
        foreach (var l in q.Layers)
            sb.Append($"<tr><td>{Html.Esc(l.Stack)}</td><td>{l.Layer}</td><td>{l.Modules}</td><td>{Html.Num(l.OutputRelL2)}</td><td>{Html.Num(l.MaxRelL2)}</td><td class=\"path\">{Html.Esc(l.WorstModule)}</td></tr>\n");
        sb.Append("</table></details>\n");
        return sb.ToString();
    }

    /// <summary>
    /// rel-L2 against execution order, one line per checkpoint on a log axis (bit-identical modules are gaps: log 0 has no
    /// place); the hover names the module. Layer boundaries of the decoder are dotted lines.
    /// </summary>
    public static PlotlyFigure ErrorByDepth(IReadOnlyList<(string Label, QuantizationComparison Comparison)> runs, string id = "quant-depth")
    {
        var data = new JsonArray();
        foreach (var (label, q) in runs)
        {
            var x = new JsonArray();
            var y = new JsonArray();
            var text = new JsonArray();
            foreach (var m in q.Modules)
            {
                x.Add(m.Ordinal);
                y.Add(m.RelL2 > 0 && double.IsFinite(m.RelL2) ? Html.Json(m.RelL2, 4) : null);
                text.Add(m.Name);
            }
            data.Add(new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines+markers", ["name"] = label, ["x"] = x, ["y"] = y, ["text"] = text,
                ["hovertemplate"] = "#%{x} %{text}<br>rel-L2 %{y:.3g}<extra>" + label + "</extra>",
            });
        }
        var layout = PlotlyFigure.BaseLayout("rel-L2 of every traced module against the float trace (execution order)", "module # (execution order)", "rel-L2");
        ((JsonObject)layout["yaxis"]!)["type"] = "log";
        var shapes = new JsonArray();
        var modules = runs.Count > 0 ? runs[0].Comparison.Modules : [];
        for (int i = 1; i < modules.Count; i++)
            if (modules[i].Layer is { } l && (modules[i - 1].Layer != l || modules[i - 1].Stack != modules[i].Stack))
                shapes.Add(new JsonObject
                {
                    ["type"] = "line", ["xref"] = "x", ["yref"] = "paper", ["x0"] = modules[i].Ordinal - 0.5, ["x1"] = modules[i].Ordinal - 0.5,
                    ["y0"] = 0, ["y1"] = 1, ["line"] = new JsonObject { ["dash"] = "dot", ["width"] = 1, ["color"] = "#bbb" },
                });
        layout["shapes"] = shapes;
        return new PlotlyFigure(id, data, layout);
    }

    /// <summary>KL(p_ref ‖ p_cand) per prompt position (log axis), one line per checkpoint, crosses where the top-1 differs.</summary>
    public static PlotlyFigure KlByPosition(IReadOnlyList<(string Label, QuantizationComparison Comparison)> runs, string id = "quant-kl")
    {
        var data = new JsonArray();
        foreach (var (label, q) in runs)
        {
            if (q.Positions is not { } p) continue;
            data.Add(new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "lines", ["name"] = $"{label} KL",
                ["x"] = new JsonArray(p.Select(a => (JsonNode?)a.Position).ToArray()),
                ["y"] = new JsonArray(p.Select(a => a.KL > 0 ? Html.Json(a.KL, 4) : null).ToArray()),
                ["hovertemplate"] = "position %{x}<br>KL %{y:.3g} nats<extra>" + label + "</extra>",
            });
            var off = p.Where(a => !a.Top1Agrees && a.KL > 0).ToList();
            data.Add(new JsonObject
            {
                ["type"] = "scatter", ["mode"] = "markers", ["name"] = $"{label} top-1 differs ({off.Count})",
                ["marker"] = new JsonObject { ["symbol"] = "x", ["size"] = 8 },
                ["x"] = new JsonArray(off.Select(a => (JsonNode?)a.Position).ToArray()),
                ["y"] = new JsonArray(off.Select(a => Html.Json(a.KL, 4)).ToArray()),
                ["text"] = new JsonArray(off.Select(a => (JsonNode?)$"ref {a.ReferenceTop1} · cand {a.CandidateTop1}").ToArray()),
                ["hovertemplate"] = "position %{x}: %{text}<extra>" + label + "</extra>",
            });
        }
        var layout = PlotlyFigure.BaseLayout("next-token KL(p_ref ‖ p_cand) over the prompt", "prompt position", "KL (nats)");
        ((JsonObject)layout["yaxis"]!)["type"] = "log";
        return new PlotlyFigure(id, data, layout);
    }
}
