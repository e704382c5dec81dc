using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>
/// Renders a <see cref="DumpComparison"/> as a terminal/CI table, Markdown, or JSON. Rendering only: the data model stays in
/// <see cref="DumpComparison"/>/<see cref="TensorComparison"/> so other hosts (HTML in the notebook) render the same data.
/// </summary>
public static class ParityReport
{
    private static readonly string[] Headers = ["#", "name", "shape", "max|Δ| @ index", "mean|Δ|", "relL2", "cosine", "status", "hint"];
    // Numeric columns read best right-aligned.
    private static readonly bool[] RightAligned = [true, false, false, false, true, true, true, false, false];

    /// <summary>Plain-text table with aligned columns and a summary footer.</summary>
    public static string ToTable(DumpComparison comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        var cells = comparison.Rows.Select(Cells).ToList();
        var widths = new int[Headers.Length];
        for (int c = 0; c < Headers.Length; c++)
            widths[c] = Math.Max(Headers[c].Length, cells.Count == 0 ? 0 : cells.Max(r => r[c].Length));

        var sb = new StringBuilder();
        AppendLine(sb, Headers, widths);
        sb.AppendLine(string.Join("  ", widths.Take(widths.Length - 1).Select(w => new string('-', w))) + "  " + new string('-', Math.Clamp(widths[^1], 4, 40)));
        foreach (var row in cells) AppendLine(sb, row, widths);
        sb.AppendLine();
        foreach (var line in SummaryLines(comparison)) sb.AppendLine(line);
        return sb.ToString();
    }

    /// <summary>
    /// Several candidates against one reference, side by side (the three-way view: official dump vs our engine vs
    /// MLX): one row per name in the reference's order, rel-L2 and verdict per candidate, then each candidate's first
    /// departure with its hint. All comparisons must share the reference.
    /// </summary>
    public static string ToSideBySide(IReadOnlyList<(string Label, DumpComparison Comparison)> candidates)
    {
        ArgumentNullException.ThrowIfNull(candidates);
        if (candidates.Count == 0) throw new ArgumentException("side by side: no candidates");
        var names = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, c) in candidates)
            foreach (var r in c.Rows)
                if (seen.Add(r.Name)) names.Add(r.Name);
        var byName = candidates.Select(c => c.Comparison.Rows.ToDictionary(r => r.Name, StringComparer.Ordinal)).ToList();
        var header = new List<string> { "name" };
        foreach (var (label, _) in candidates) { header.Add(label + " relL2"); header.Add(label); }
        var rows = names.Select(n =>
        {
            var cells = new List<string> { n };
            foreach (var d in byName)
            {
                if (!d.TryGetValue(n, out var r)) { cells.Add(""); cells.Add("—"); continue; }
                cells.Add(r.Comparison is { ElementCount: > 0 } c ? N(c.RelL2) : "");
                cells.Add(r.IsFailure && r.Status != RowStatus.Fail ? StatusName(r.Status) + " (FAIL)" : r.IsFailure ? "FAIL" : StatusName(r.Status));
            }
            return cells.ToArray();
        }).ToList();
        var widths = header.Select((h, i) => Math.Max(h.Length, rows.Count == 0 ? 0 : rows.Max(r => r[i].Length))).ToArray();
        var sb = new StringBuilder();
        void Line(string[] cells)
        {
            var line = string.Join("  ", cells.Select((c, i) => i == 0 || i % 2 == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i])));
            sb.AppendLine(line.TrimEnd());
        }
        Line(header.ToArray());
        sb.AppendLine(string.Join("  ", widths.Select(w => new string('-', w))));
        foreach (var r in rows) Line(r);
        sb.AppendLine();
        sb.AppendLine($"reference: {candidates[0].Comparison.ReferencePath}");
        foreach (var (label, c) in candidates)
        {
            string verdict = c.AllPassed ? "PASSED" : c.Compared == 0 ? "FAILED (nothing compared)" : "FAILED";
            string first = c.FirstFailure is { } f
                ? $"; first departure #{f.Ordinal} {f.Name} — {(f.Comparison?.Hint.Text is { Length: > 0 } h ? h : f.Error ?? StatusName(f.Status))}"
                : "";
            sb.AppendLine($"{label} ({c.CandidatePath}): {c.Compared} compared, {c.Failed} failing: {verdict}{first}");
        }
        return sb.ToString();
    }

    /// <summary>A Markdown table (GitHub flavour) with the summary as a list above it.</summary>
    public static string ToMarkdown(DumpComparison comparison)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        var sb = new StringBuilder();
        sb.AppendLine($"### Parity: {(comparison.AllPassed ? "PASSED" : "FAILED")}");
        sb.AppendLine();
        foreach (var line in SummaryLines(comparison)) sb.AppendLine("- " + EscapeMarkdown(line));
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", Headers.Select(EscapeMarkdown)) + " |");
        sb.AppendLine("|" + string.Join("|", RightAligned.Select(r => r ? "---:" : ":---")) + "|");
        foreach (var row in comparison.Rows)
            sb.AppendLine("| " + string.Join(" | ", Cells(row).Select(EscapeMarkdown)) + " |");
        return sb.ToString();
    }

    /// <summary>One line for a single comparison: "PASS name [2, 3] max|Δ| 1e-07 @ [0, 1] relL2 … cos …".</summary>
    public static string Summary(TensorComparison c)
    {
        ArgumentNullException.ThrowIfNull(c);
        var sb = new StringBuilder();
        sb.Append(c.Passed ? "PASS " : "FAIL ").Append(c.Name).Append(' ').Append(ShapeCell(c));
        if (c.ElementCount > 0)
            sb.Append($"  max|Δ| {N(c.MaxAbsDiff)} @ {TensorComparer.IndexString(c.MaxAbsIndex)}  mean|Δ| {N(c.MeanAbsDiff)}  relL2 {N(c.RelL2)}  cos {Cos(c.Cosine)}");
        if (!c.Passed && c.Hint.Text.Length > 0) sb.Append("  — ").Append(c.Hint.Text);
        return sb.ToString();
    }

    /// <summary>
    /// JSON with stable snake_case names. Non-finite numbers are written as the strings "NaN", "Infinity" and "-Infinity"
    /// (the spellings System.Text.Json reads back with <c>JsonNumberHandling.AllowNamedFloatingPointLiterals</c>, and
    /// Python's <c>float()</c> accepts), so the document is always valid JSON. Absent values are null.
    /// </summary>
    public static string ToJson(DumpComparison comparison, bool indented = true)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions(indented)))
        {
            w.WriteStartObject();
            w.WriteBoolean("passed", comparison.AllPassed);
            var first = comparison.FirstFailure;
            if (first is null) w.WriteNull("first_failure"); else w.WriteString("first_failure", first.Name);
            if (first is null) w.WriteNull("first_failure_ordinal"); else w.WriteNumber("first_failure_ordinal", first.Ordinal);
            w.WriteNumber("compared", comparison.Compared);
            w.WriteNumber("failed", comparison.Failed);
            w.WriteBoolean("require_all", comparison.RequireAll);
            w.WriteString("candidate", comparison.CandidatePath);
            w.WriteString("reference", comparison.ReferencePath);
            w.WritePropertyName("tolerance");
            WriteTolerance(w, comparison.Tolerance);
            w.WriteStartArray("rules_applied");
            foreach (var (rule, tol, rows) in comparison.RulesApplied)
            {
                w.WriteStartObject();
                w.WriteString("rule", rule);
                w.WritePropertyName("tolerance");
                WriteTolerance(w, tol);
                w.WriteNumber("rows", rows);
                w.WriteEndObject();
            }
            w.WriteEndArray();
            WriteStrings(w, "batch_dim_only", comparison.BatchDimOnly);
            WriteStrings(w, "missing_in_candidate", comparison.MissingInCandidate);
            WriteStrings(w, "missing_in_reference", comparison.MissingInReference);
            w.WriteStartArray("rows");
            foreach (var row in comparison.Rows) WriteRow(w, row);
            w.WriteEndArray();
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>The JSON object of one comparison (same fields as a row of <see cref="ToJson(DumpComparison, bool)"/>).</summary>
    public static string ToJson(TensorComparison comparison, bool indented = true)
    {
        ArgumentNullException.ThrowIfNull(comparison);
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions(indented)))
        {
            w.WriteStartObject();
            w.WriteString("name", comparison.Name);
            w.WriteString("status", comparison.Passed ? "pass" : "fail");
            WriteComparisonFields(w, comparison);
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    // Hints are full of ≈, Δ, ← and ᵀ: keep them readable in the file; the output is a file/log, never inlined into HTML.
    private static JsonWriterOptions WriterOptions(bool indented) =>
        new() { Indented = indented, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Stable snake_case spelling of a hint kind, as used in the JSON.</summary>
    public static string HintName(HintKind kind) => kind switch
    {
        HintKind.None => "none",
        HintKind.ShapeMismatch => "shape_mismatch",
        HintKind.Reshaped => "reshaped",
        HintKind.NaNAppeared => "nan_appeared",
        HintKind.AllZeros => "all_zeros",
        HintKind.ZeroSlices => "zero_slices",
        HintKind.SignFlip => "sign_flip",
        HintKind.Scaled => "scaled",
        HintKind.ConstantOffset => "constant_offset",
        HintKind.ChannelOffset => "channel_offset",
        HintKind.ChannelScaled => "channel_scaled",
        HintKind.Transposed => "transposed",
        HintKind.PermutedAxes => "permuted_axes",
        HintKind.Shifted => "shifted",
        HintKind.SlicesPermuted => "slices_permuted",
        HintKind.ValuesPermuted => "values_permuted",
        HintKind.Outliers => "outliers",
        HintKind.Rounding => "rounding",
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, null),
    };

    /// <summary>Stable snake_case spelling of a row status, as used in the JSON.</summary>
    public static string StatusName(RowStatus status) => status switch
    {
        RowStatus.Pass => "pass",
        RowStatus.Fail => "fail",
        RowStatus.MissingInCandidate => "missing_in_candidate",
        RowStatus.MissingInReference => "missing_in_reference",
        RowStatus.Error => "error",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };

    // ------------------------------------------------------------------ table cells

    private static string[] Cells(DumpRow row)
    {
        var c = row.Comparison;
        string status = row.Status switch
        {
            RowStatus.Pass => "PASS",
            RowStatus.Fail => "FAIL",
            RowStatus.MissingInCandidate => row.IsFailure ? "NO-CAND!" : "no-cand",
            RowStatus.MissingInReference => row.IsFailure ? "NO-REF!" : "no-ref",
            _ => "ERROR",
        };
        if (c is null)
        {
            var info = row.CandidateInfo ?? row.ReferenceInfo;
            string shape = info is null ? "" : Compact(info.Shape) + " " + info.DType.ShortName();
            string note = row.Error ?? row.Status switch
            {
                RowStatus.MissingInCandidate => "not in the candidate",
                RowStatus.MissingInReference => "not in the reference",
                _ => "",
            };
            return [Int(row.Ordinal), row.Name, shape, "", "", "", "", status, note];
        }
        string maxCell = c.ElementCount > 0 ? $"{N(c.MaxAbsDiff)} @ {CompactIndex(c.MaxAbsIndex)}" : "";
        return
        [
            Int(row.Ordinal),
            row.Name,
            ShapeCell(c),
            maxCell,
            c.ElementCount > 0 ? N(c.MeanAbsDiff) : "",
            c.ElementCount > 0 ? N(c.RelL2) : "",
            c.ElementCount > 0 ? Cos(c.Cosine) : "",
            status,
            c.Passed ? (c.BatchDimOnly ? "note: only a leading batch dim of 1 differs" : "") : c.Hint.Text,
        ];
    }

    private static string ShapeCell(TensorComparison c)
    {
        string shape = c.ShapeMatch ? Compact(c.ReferenceShape)
            : c.BatchDimOnly ? $"{Compact(c.CandidateShape)}≈{Compact(c.ReferenceShape)}" : $"{Compact(c.CandidateShape)}≠{Compact(c.ReferenceShape)}";
        string dtype = c.DTypeMatch ? c.ReferenceDType.ShortName() : $"{c.CandidateDType.ShortName()}≠{c.ReferenceDType.ShortName()}";
        return shape + " " + dtype;
    }

    /// <summary>
    /// The rules that judged the compared rows, one per line: "port (rtol 0.0001, atol 0, 0.0001·rms(b), rel-L2 ≤ 1e-05)
    /// — 30 tensors". What `compare` prints before its verdict, so every bound that was applied is named.
    /// </summary>
    public static IEnumerable<string> RuleLines(DumpComparison d)
    {
        foreach (var (rule, tol, rows) in d.RulesApplied)
        {
            yield return $"  {RuleText(rule, tol)} — {rows} tensor{(rows == 1 ? "" : "s")}";
        }
    }

    /// <summary>A rule and its bounds: "port (rtol …)" for a tier, "mel floor (input.mel.*): rtol …" for a named rule.</summary>
    public static string RuleText(string rule, Tolerance tol) => tol.Name is not null && rule == tol.Name ? tol.ToString() : $"{rule}: {tol}";

    private static IEnumerable<string> SummaryLines(DumpComparison d)
    {
        yield return $"candidate: {d.CandidatePath}";
        yield return $"reference: {d.ReferencePath}";
        yield return "rules applied:";
        foreach (var line in RuleLines(d)) yield return line;
        if (d.BatchDimOnly.Count > 0)
            yield return $"note: {d.BatchDimOnly.Count} tensor(s) differ from the reference only by a leading batch dim of 1 " +
                $"(e.g. {d.BatchDimOnly[0]}); compared element for element (official LLM modules return [1, T, C])";
        string verdict = d.AllPassed ? "PASSED" : d.Compared == 0 ? "FAILED (nothing compared)" : "FAILED";
        yield return $"{d.Compared} compared, {d.Failed} failing, {d.MissingInCandidate.Count} missing in candidate, {d.MissingInReference.Count} missing in reference{(d.RequireAll ? " (required)" : "")}: {verdict}";
        if (d.FirstFailure is { } f)
        {
            string why = f.Comparison?.Hint.Text is { Length: > 0 } h ? h : f.Error ?? StatusName(f.Status);
            yield return $"first failure: #{f.Ordinal} {f.Name} — {why}";
        }
    }

    private static void AppendLine(StringBuilder sb, string[] cells, int[] widths)
    {
        for (int c = 0; c < cells.Length; c++)
        {
            bool last = c == cells.Length - 1;
            if (c > 0) sb.Append("  ");
            if (last) sb.Append(cells[c]);
            else if (RightAligned[c]) sb.Append(cells[c].PadLeft(widths[c]));
            else sb.Append(cells[c].PadRight(widths[c]));
        }
        // Keep lines free of trailing blanks so CI logs and golden files diff cleanly.
        int end = sb.Length;
        while (end > 0 && sb[end - 1] == ' ') end--;
        sb.Length = end;
        sb.AppendLine();
    }

    private static string EscapeMarkdown(string s) => s.Replace("\\", "\\\\").Replace("|", "\\|").Replace("\n", " ");

    private static string Compact(int[] shape) => "[" + string.Join(",", shape) + "]";
    private static string CompactIndex(int[]? index) => index is null ? "-" : Compact(index);
    private static string Int(int v) => v.ToString(CultureInfo.InvariantCulture);
    private static string N(double v) => ParityFormat.Number(v);
    private static string Cos(double v) => ParityFormat.Cosine(v);

    // ------------------------------------------------------------------ JSON

    private static void WriteRow(Utf8JsonWriter w, DumpRow row)
    {
        w.WriteStartObject();
        w.WriteNumber("ordinal", row.Ordinal);
        w.WriteString("name", row.Name);
        w.WriteString("status", StatusName(row.Status));
        w.WriteBoolean("failed", row.IsFailure);
        w.WriteString("rule", row.Rule);
        w.WritePropertyName("tolerance");
        WriteTolerance(w, row.Comparison?.Tolerance ?? row.Tolerance);
        if (row.Comparison is { } c)
        {
            WriteComparisonFields(w, c);
        }
        else
        {
            WriteInfo(w, "candidate", row.CandidateInfo);
            WriteInfo(w, "reference", row.ReferenceInfo);
            w.WriteNull("hint");
            w.WriteNull("hint_text");
        }
        if (row.Error is null) w.WriteNull("error"); else w.WriteString("error", row.Error);
        w.WriteEndObject();
    }

    private static void WriteInfo(Utf8JsonWriter w, string side, TensorInfo? info)
    {
        if (info is null)
        {
            w.WriteNull("shape_" + side);
            w.WriteNull("dtype_" + side);
        }
        else
        {
            WriteInts(w, "shape_" + side, info.Shape);
            w.WriteString("dtype_" + side, info.DType.ShortName());
        }
    }

    private static void WriteComparisonFields(Utf8JsonWriter w, TensorComparison c)
    {
        WriteInts(w, "shape_candidate", c.CandidateShape);
        WriteInts(w, "shape_reference", c.ReferenceShape);
        w.WriteString("dtype_candidate", c.CandidateDType.ShortName());
        w.WriteString("dtype_reference", c.ReferenceDType.ShortName());
        w.WriteBoolean("shape_match", c.ShapeMatch);
        w.WriteBoolean("batch_dim_only", c.BatchDimOnly);
        w.WriteBoolean("dtype_match", c.DTypeMatch);
        w.WriteBoolean("integer", c.IsInteger);
        w.WriteNumber("element_count", c.ElementCount);
        WriteDouble(w, "max_abs_diff", c.MaxAbsDiff);
        WriteInts(w, "max_abs_index", c.MaxAbsIndex);
        WriteDouble(w, "mean_abs_diff", c.MeanAbsDiff);
        WriteDouble(w, "rel_l2", c.RelL2);
        WriteDouble(w, "cosine", c.Cosine);
        WriteDouble(w, "reference_norm", c.ReferenceNorm);
        w.WriteNumber("nan_candidate", c.CandidateNaN);
        w.WriteNumber("nan_reference", c.ReferenceNaN);
        w.WriteNumber("inf_candidate", c.CandidateInf);
        w.WriteNumber("inf_reference", c.ReferenceInf);
        w.WriteNumber("nonfinite_mismatches", c.NonFiniteMismatches);
        w.WriteNumber("out_of_tolerance", c.OutOfTolerance);
        WriteInts(w, "first_mismatch_index", c.FirstMismatchIndex);
        WriteDouble(w, "first_mismatch_candidate", c.FirstMismatchCandidate);
        WriteDouble(w, "first_mismatch_reference", c.FirstMismatchReference);
        var h = c.Hint;
        if (c.Passed)
        {
            w.WriteNull("hint");
            w.WriteNull("hint_text");
        }
        else
        {
            w.WriteString("hint", HintName(h.Kind));
            w.WriteString("hint_text", h.Text);
        }
        WriteDouble(w, "hint_value", h.Value);
        if (h.Axis is int axis) w.WriteNumber("hint_axis", axis); else w.WriteNull("hint_axis");
        WriteInts(w, "hint_axes", h.Axes);
        if (h.Count is long count) w.WriteNumber("hint_count", count); else w.WriteNull("hint_count");
        WriteInts(w, "hint_index", h.Index);
    }

    private static void WriteTolerance(Utf8JsonWriter w, Tolerance t)
    {
        w.WriteStartObject();
        if (t.Name is null) w.WriteNull("name"); else w.WriteString("name", t.Name);
        WriteDouble(w, "rtol", t.Rtol);
        WriteDouble(w, "atol", t.Atol);
        WriteDouble(w, "rms_scale", t.Scale);
        WriteDouble(w, "reference_rms", t.ReferenceRms);
        WriteDouble(w, "max_rel_l2", t.MaxRelL2);
        w.WriteEndObject();
    }

    private static void WriteDouble(Utf8JsonWriter w, string name, double? value)
    {
        if (value is not double v) w.WriteNull(name);
        else if (double.IsNaN(v)) w.WriteString(name, "NaN");
        else if (double.IsPositiveInfinity(v)) w.WriteString(name, "Infinity");
        else if (double.IsNegativeInfinity(v)) w.WriteString(name, "-Infinity");
        else w.WriteNumber(name, v);
    }

    private static void WriteInts(Utf8JsonWriter w, string name, int[]? values)
    {
        if (values is null) { w.WriteNull(name); return; }
        w.WriteStartArray(name);
        foreach (int v in values) w.WriteNumberValue(v);
        w.WriteEndArray();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, IEnumerable<string> values)
    {
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    }
}
