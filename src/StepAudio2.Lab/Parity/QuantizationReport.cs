using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Parity;

/// <summary>One traced module of a quantization comparison, in execution order (<see cref="Ordinal"/> is 1-based).</summary>
public sealed record ModuleError(int Ordinal, string Name, string? Stack, int? Layer, double RelL2, double Cosine, double MaxAbsDiff);

/// <summary>
/// One layer of a stack (<c>model.layers.3</c>, <c>encoder.blocks.0</c>): the rel-L2 of the layer's own output path
/// (NaN when that path was not traced) and its worst module, so the growth of the error through depth reads row by row.
/// </summary>
public sealed record LayerError(string Stack, int Layer, int Modules, double OutputRelL2, double MaxRelL2, string WorstModule);

/// <summary>The next-token distributions at one prompt position: KL(p_ref ‖ p_cand) in nats and both argmaxes.</summary>
public sealed record PositionAgreement(int Position, double KL, long ReferenceTop1, long CandidateTop1)
{
    public bool Top1Agrees => ReferenceTop1 == CandidateTop1;
}

/// <summary>Where the greedy continuations (<c>output.greedy_ids</c>) first part; <see cref="Step"/> is null when they never do.</summary>
public sealed record GreedyDivergence(int ReferenceLength, int CandidateLength, int? Step, long? ReferenceId, long? CandidateId);

/// <summary>
/// A quantized checkpoint's trace (candidate) against the float/bf16 checkpoint's trace (reference) of the same inputs:
/// per-module rel-L2, per-layer growth, next-token KL and top-1 agreement over the prompt, the first greedy divergence.
/// A measurement, not a verdict: there is no pass/fail.
/// </summary>
public sealed record QuantizationComparison
{
    public required string CandidatePath { get; init; }
    public required string ReferencePath { get; init; }
    /// <summary>Float modules traced on both sides with equal element counts, in execution order.</summary>
    public required IReadOnlyList<ModuleError> Modules { get; init; }
    /// <summary>Layers of every stack, in order of first appearance.</summary>
    public required IReadOnlyList<LayerError> Layers { get; init; }
    /// <summary>Every prompt position of <c>lm_head</c>; null when a side has no full logits.</summary>
    public IReadOnlyList<PositionAgreement>? Positions { get; init; }
    public int Vocab { get; init; }
    /// <summary>Null when a side has no <c>output.greedy_ids</c>.</summary>
    public GreedyDivergence? Greedy { get; init; }
    /// <summary>What could not be measured and why (missing paths, shape mismatches).</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>The first module whose output is not bit-identical: where quantization error enters.</summary>
    public ModuleError? FirstDeparture => Modules.FirstOrDefault(m => m.RelL2 != 0);

    public double MeanKL => Positions is { Count: > 0 } p ? p.Average(x => x.KL) : double.NaN;
    public PositionAgreement? MaxKL => Positions?.MaxBy(x => x.KL);
    public int Top1Agreeing => Positions?.Count(p => p.Top1Agrees) ?? 0;
    public double Top1Agreement => Positions is { Count: > 0 } p ? (double)Top1Agreeing / p.Count : double.NaN;
}

/// <summary>
/// Builds and renders a <see cref="QuantizationComparison"/>. The logits are widened to float64 and each row's
/// log-softmax is taken after subtracting its max (log-sum-exp), so a vocabulary of 158 720 with logits in the tens
/// neither overflows nor loses the tail that KL weighs.
/// </summary>
public static partial class QuantizationReport
{
    /// <summary>Full logits path written by <c>steplab trace --capture lm_head</c>: [T, vocab] or [1, T, vocab].</summary>
    public const string LogitsPath = "lm_head";
    public const string GreedyPath = "output.greedy_ids";

    [GeneratedRegex(@"^(?<stack>.+?\.(?:layers|blocks))\.(?<n>\d+)(?:\.|$)", RegexOptions.CultureInvariant)]
    private static partial Regex LayerPattern();

    /// <summary>
    /// Compares two traces in execution order: <paramref name="executionOrder"/>, else the order the reference dump records
    /// (<see cref="DumpFile.ExecutionOrder"/>), else module-path order.
    /// </summary>
    public static QuantizationComparison Compare(ITensorSource candidate, ITensorSource reference, IReadOnlyList<string>? executionOrder = null,
        IProgress<(int Done, int Total, string Name)>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(reference);
        executionOrder ??= DumpFile.ExecutionOrder(reference);
        var notes = new List<string>();
        // The rows are the parity machinery's; the tolerance only decides a status this report does not use.
        var dump = DumpComparer.Compare(candidate, reference, new CompareOptions
        {
            ExecutionOrder = executionOrder,
            Exclude = ["input.*", "output.*"],
            Progress = progress,
        });
        var modules = new List<ModuleError>();
        foreach (var r in dump.Rows)
        {
            var c = r.Comparison;
            if (r.Status == RowStatus.Error) notes.Add($"{r.Name}: {r.Error}");
            if (c is null || c.IsInteger) continue;
            if (c.ElementCount == 0 && double.IsNaN(c.RelL2))
            {
                notes.Add($"{r.Name}: shapes {c.CandidateShapeText} (candidate) and {c.ReferenceShapeText} (reference) differ; not compared");
                continue;
            }
            var m = LayerPattern().Match(r.Name);
            modules.Add(new ModuleError(modules.Count + 1, r.Name, m.Success ? m.Groups["stack"].Value : null,
                m.Success ? int.Parse(m.Groups["n"].Value, CultureInfo.InvariantCulture) : null, c.RelL2, c.Cosine, c.MaxAbsDiff));
        }
        if (dump.MissingInCandidate.Count > 0) notes.Add($"{dump.MissingInCandidate.Count} path(s) only in the reference, e.g. {dump.MissingInCandidate[0]}");
        if (dump.MissingInReference.Count > 0) notes.Add($"{dump.MissingInReference.Count} path(s) only in the candidate, e.g. {dump.MissingInReference[0]}");

        var layers = modules.Where(m => m.Stack is not null)
            .GroupBy(m => (m.Stack!, m.Layer!.Value))
            .Select(g =>
            {
                var worst = g.MaxBy(m => m.RelL2)!;
                var output = g.FirstOrDefault(m => m.Name == $"{g.Key.Item1}.{g.Key.Item2}");
                return new LayerError(g.Key.Item1, g.Key.Item2, g.Count(), output?.RelL2 ?? double.NaN, worst.RelL2, worst.Name);
            }).ToList();

        IReadOnlyList<PositionAgreement>? positions = null;
        int vocab = 0;
        if (candidate.Contains(LogitsPath) && reference.Contains(LogitsPath))
            (positions, vocab) = NextTokenAgreement(candidate.Get(LogitsPath), reference.Get(LogitsPath), candidate.Path, reference.Path);
        else
            notes.Add($"no full logits '{LogitsPath}' in {(reference.Contains(LogitsPath) ? "the candidate" : "the reference")}: trace both with --capture {LogitsPath} for KL and top-1");

        GreedyDivergence? greedy = null;
        if (candidate.Contains(GreedyPath) && reference.Contains(GreedyPath))
            greedy = Diverge(Ids(candidate, GreedyPath), Ids(reference, GreedyPath));
        else
            notes.Add($"no '{GreedyPath}' in {(reference.Contains(GreedyPath) ? "the candidate" : "the reference")}: trace both with --greedy N for the first divergence");

        return new QuantizationComparison
        {
            CandidatePath = candidate.Path,
            ReferencePath = reference.Path,
            Modules = modules,
            Layers = layers,
            Positions = positions,
            Vocab = vocab,
            Greedy = greedy,
            Notes = notes,
        };
    }

    private static long[] Ids(ITensorSource s, string name)
    {
        var t = s.Get(name);
        if (t.DType.IsFloating()) throw new LabDataException(s.Path, $"expected integer token ids, found {t.DType.ShortName()}", name);
        return TensorData.ToInt64s(t);
    }

    /// <summary>First step where the id sequences differ; a shorter sequence that is a prefix of the other parts at its end.</summary>
    public static GreedyDivergence Diverge(long[] candidate, long[] reference)
    {
        int n = Math.Min(candidate.Length, reference.Length);
        for (int i = 0; i < n; i++)
            if (candidate[i] != reference[i]) return new(reference.Length, candidate.Length, i, reference[i], candidate[i]);
        if (candidate.Length != reference.Length)
            return new(reference.Length, candidate.Length, n, n < reference.Length ? reference[n] : null, n < candidate.Length ? candidate[n] : null);
        return new(reference.Length, candidate.Length, null, null, null);
    }

    /// <summary>
    /// KL(p_ref ‖ p_cand) and both argmaxes (first maximum, as torch.argmax) at every row of two [T, V] / [1, T, V] logit
    /// tensors. A shape mismatch is bad input naming both files and the key.
    /// </summary>
    public static (IReadOnlyList<PositionAgreement> Positions, int Vocab) NextTokenAgreement(Tensor candidate, Tensor reference,
        string candidatePath = "candidate", string referencePath = "reference")
    {
        int[] cs = Squeeze(candidate.Shape, candidatePath), rs = Squeeze(reference.Shape, referencePath);
        if (cs[0] != rs[0] || cs[1] != rs[1])
            throw new LabDataException(candidatePath,
                $"logits are {Tensor.ShapeString(candidate.Shape)} but the reference's ({referencePath}) are {Tensor.ShapeString(reference.Shape)}: trace the same inputs with both checkpoints",
                LogitsPath);
        int rows = rs[0], vocab = rs[1];
        var result = new PositionAgreement[rows];
        var a = new double[vocab];
        var b = new double[vocab];
        for (int t = 0; t < rows; t++)
        {
            Row(candidate, t, vocab, a);
            Row(reference, t, vocab, b);
            int ia = LogSoftmaxInPlace(a), ib = LogSoftmaxInPlace(b);
            // Σ p_ref·(log p_ref − log p_cand); terms with p_ref = 0 contribute 0 (the limit), not 0·∞.
            double kl = 0;
            for (int v = 0; v < vocab; v++)
            {
                double p = Math.Exp(b[v]);
                if (p > 0) kl += p * (b[v] - a[v]);
            }
            result[t] = new PositionAgreement(t, Math.Max(kl, 0), ib, ia);
        }
        return (result, vocab);
    }

    private static int[] Squeeze(int[] shape, string file) => shape switch
    {
        [var t, var v] when t > 0 && v > 0 => [t, v],
        [1, var t, var v] when t > 0 && v > 0 => [t, v],
        _ => throw new LabDataException(file, $"logits have shape {Tensor.ShapeString(shape)}; expected [T, vocab] or [1, T, vocab]", LogitsPath),
    };

    private static void Row(Tensor logits, int t, int vocab, double[] dst)
    {
        // One row at a time: the full logits of a long prompt exceed what one span (or a float64 copy) should hold.
        var row = (logits.Rank == 3 ? logits.Select(0, 0) : logits).Select(0, t);
        if (row.IsContiguous && row.DType == DType.F32)
        {
            var src = row.AsSpan<float>();
            for (int i = 0; i < vocab; i++) dst[i] = src[i];
            return;
        }
        TensorData.ToDoubles(row).AsSpan().CopyTo(dst);
    }

    /// <summary>x ← x − max − log Σ exp(x − max), in place; returns the index of the first maximum.</summary>
    private static int LogSoftmaxInPlace(double[] x)
    {
        int arg = 0;
        double max = double.NegativeInfinity;
        for (int i = 0; i < x.Length; i++)
            if (x[i] > max || double.IsNaN(x[i]) && !double.IsNaN(max)) { max = x[i]; arg = i; }
        double sum = 0;
        for (int i = 0; i < x.Length; i++) sum += Math.Exp(x[i] - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < x.Length; i++) x[i] -= lse;
        return arg;
    }

    private static string G(double v) => double.IsNaN(v) ? "-" : v == 0 ? "0" : v.ToString("0.###e+0", CultureInfo.InvariantCulture);

    /// <summary>The per-layer table, the logits summary and the first greedy divergence, for a terminal.</summary>
    public static string ToTable(QuantizationComparison q)
    {
        ArgumentNullException.ThrowIfNull(q);
        var sb = new StringBuilder();
        sb.AppendLine($"quantization: candidate {q.CandidatePath} vs reference {q.ReferencePath}");
        sb.AppendLine($"{q.Modules.Count} modules compared in execution order; rel-L2 = ‖cand − ref‖₂ / ‖ref‖₂");
        sb.AppendLine();
        string[] head = ["stack", "layer", "modules", "output relL2", "worst relL2", "worst module"];
        var rows = q.Layers.Select(l => new[] { l.Stack, l.Layer.ToString(CultureInfo.InvariantCulture), l.Modules.ToString(CultureInfo.InvariantCulture), G(l.OutputRelL2), G(l.MaxRelL2), l.MaxRelL2 == 0 ? "(bit-identical)" : l.WorstModule }).ToList();
        var w = head.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        string Line(string[] c) => string.Join("  ", c.Select((s, i) => i is 1 or 2 or 3 or 4 ? s.PadLeft(w[i]) : i == c.Length - 1 ? s : s.PadRight(w[i])));
        sb.AppendLine(Line(head));
        sb.AppendLine(string.Join("  ", w.Select(x => new string('-', x))));
        foreach (var r in rows) sb.AppendLine(Line(r));
        sb.AppendLine();
        var first = q.FirstDeparture;
        sb.AppendLine(first is null ? "every compared module is bit-identical"
            : $"error enters at #{first.Ordinal} {first.Name} (rel-L2 {G(first.RelL2)})");
        var last = q.Modules.LastOrDefault();
        if (last is not null) sb.AppendLine($"last module #{last.Ordinal} {last.Name}: rel-L2 {G(last.RelL2)}");
        if (q.Positions is { Count: > 0 } p)
        {
            var max = q.MaxKL!;
            sb.AppendLine($"next token over {p.Count} prompt positions (vocab {q.Vocab}): KL(p_ref‖p_cand) mean {G(q.MeanKL)} nats, max {G(max.KL)} at position {max.Position}, last position {G(p[^1].KL)}");
            sb.AppendLine($"top-1 agreement: {q.Top1Agreeing}/{p.Count} ({(100.0 * q.Top1Agreement).ToString("0.0", CultureInfo.InvariantCulture)} %)" +
                          (q.Top1Agreeing < p.Count ? $", first disagreement at position {p.First(x => !x.Top1Agrees).Position}" : ""));
        }
        if (q.Greedy is { } g)
            sb.AppendLine(g.Step is null ? $"greedy ids: identical over {g.ReferenceLength} steps"
                : $"greedy ids first diverge at step {g.Step} of {Math.Max(g.ReferenceLength, g.CandidateLength)}: reference {Id(g.ReferenceId)}, candidate {Id(g.CandidateId)}");
        foreach (var n in q.Notes) sb.AppendLine($"note: {n}");
        return sb.ToString();
    }

    private static string Id(long? id) => id?.ToString(CultureInfo.InvariantCulture) ?? "(ended)";

    /// <summary>Everything, machine-readable (non-finite numbers as null).</summary>
    public static string ToJson(QuantizationComparison q)
    {
        ArgumentNullException.ThrowIfNull(q);
        using var ms = new MemoryStream();
        using (var j = new Utf8JsonWriter(ms, new JsonWriterOptions { Indented = true }))
        {
            j.WriteStartObject();
            j.WriteString("candidate", q.CandidatePath);
            j.WriteString("reference", q.ReferencePath);
            j.WriteStartArray("modules");
            foreach (var m in q.Modules)
            {
                j.WriteStartObject();
                j.WriteNumber("ordinal", m.Ordinal);
                j.WriteString("name", m.Name);
                if (m.Stack is null) j.WriteNull("stack"); else j.WriteString("stack", m.Stack);
                if (m.Layer is null) j.WriteNull("layer"); else j.WriteNumber("layer", m.Layer.Value);
                Num(j, "rel_l2", m.RelL2);
                Num(j, "cosine", m.Cosine);
                Num(j, "max_abs", m.MaxAbsDiff);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            j.WriteStartArray("layers");
            foreach (var l in q.Layers)
            {
                j.WriteStartObject();
                j.WriteString("stack", l.Stack);
                j.WriteNumber("layer", l.Layer);
                j.WriteNumber("modules", l.Modules);
                Num(j, "output_rel_l2", l.OutputRelL2);
                Num(j, "max_rel_l2", l.MaxRelL2);
                j.WriteString("worst_module", l.WorstModule);
                j.WriteEndObject();
            }
            j.WriteEndArray();
            if (q.FirstDeparture is { } f) j.WriteString("first_departure", f.Name); else j.WriteNull("first_departure");
            if (q.Positions is { } p)
            {
                j.WriteStartObject("logits");
                j.WriteNumber("positions", p.Count);
                j.WriteNumber("vocab", q.Vocab);
                Num(j, "mean_kl", q.MeanKL);
                Num(j, "max_kl", q.MaxKL?.KL ?? double.NaN);
                j.WriteNumber("top1_agreeing", q.Top1Agreeing);
                Num(j, "top1_agreement", q.Top1Agreement);
                j.WriteStartArray("kl");
                foreach (var x in p) { if (double.IsFinite(x.KL)) j.WriteNumberValue(x.KL); else j.WriteNullValue(); }
                j.WriteEndArray();
                j.WriteStartArray("reference_top1");
                foreach (var x in p) j.WriteNumberValue(x.ReferenceTop1);
                j.WriteEndArray();
                j.WriteStartArray("candidate_top1");
                foreach (var x in p) j.WriteNumberValue(x.CandidateTop1);
                j.WriteEndArray();
                j.WriteEndObject();
            }
            else j.WriteNull("logits");
            if (q.Greedy is { } g)
            {
                j.WriteStartObject("greedy");
                j.WriteNumber("reference_length", g.ReferenceLength);
                j.WriteNumber("candidate_length", g.CandidateLength);
                if (g.Step is null) j.WriteNull("first_divergence"); else j.WriteNumber("first_divergence", g.Step.Value);
                if (g.ReferenceId is null) j.WriteNull("reference_id"); else j.WriteNumber("reference_id", g.ReferenceId.Value);
                if (g.CandidateId is null) j.WriteNull("candidate_id"); else j.WriteNumber("candidate_id", g.CandidateId.Value);
                j.WriteEndObject();
            }
            else j.WriteNull("greedy");
            j.WriteStartArray("notes");
            foreach (var n in q.Notes) j.WriteStringValue(n);
            j.WriteEndArray();
            j.WriteEndObject();
        }
        return Encoding.UTF8.GetString(ms.ToArray());
    }

    private static void Num(Utf8JsonWriter j, string name, double v)
    {
        if (double.IsFinite(v)) j.WriteNumber(name, v); else j.WriteNull(name);
    }
}
