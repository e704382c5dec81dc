using System.CommandLine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab compare &lt;candidate&gt; &lt;reference&gt; [--rtol R] [--atol A] [--tier NAME] [--no-default-rules] [--json] [--require-all]</c>:
/// tensor-by-tensor parity of two dumps in the reference's execution order, under the default rules (docs/parity.md)
/// unless told otherwise; the closing lines name every rule applied. Exit 0 when everything compared passes,
/// 1 when something fails (or, with --require-all, is missing), 2 on bad input.
/// <para>
/// <c>--quantization</c>: the candidate is a quantized checkpoint's trace and the reference the float checkpoint's
/// trace of the same inputs; prints the measurement of <see cref="QuantizationReport"/> (per-layer rel-L2, next-token
/// KL and top-1 agreement, first greedy divergence) and exits 0 whenever both dumps are readable.
/// </para>
/// <para>
/// <c>--also &lt;dump&gt;…</c>: more candidates against the same reference (the three-way view: the official dump as the
/// reference, our engine's trace as the candidate, an MLX trace with <c>--also</c>): one table with rel-L2 and verdict per
/// candidate, then each one's first departure. Exit 1 when any candidate fails.
/// </para>
/// </summary>
public static class CompareCommand
{
    public static Command Create(CliOutput ui)
    {
        var candidate = new Argument<string>("candidate") { Description = "the dump under test (safetensors, .npz, .npy, torch .pt)" };
        var reference = new Argument<string>("reference") { Description = "the reference dump, e.g. from the official PyTorch model" };
        var rtol = new Option<double?>("--rtol") { Description = "relative tolerance (|a−b| ≤ atol + rtol·|b|)" };
        var atol = new Option<double?>("--atol") { Description = "absolute tolerance" };
        var tier = new Option<string?>("--tier") { Description = "named tolerance for every row: auto (default: port for float32, bf16/f16 when a side is, exact for integers, documented floors of known paths), port, f32 (strict elementwise), bf16, f16, loose, exact" };
        var noDefaultRules = new Option<bool>("--no-default-rules") { Description = "under auto, do not apply the documented floors (input.mel.*, flow*, hift*)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var requireAll = new Option<bool>("--require-all") { Description = "tensors missing on either side count as failures" };
        var include = new Option<string[]>("--include") { Description = "only names matching these globs", AllowMultipleArgumentsPerToken = true };
        var exclude = new Option<string[]>("--exclude") { Description = "skip names matching these globs", AllowMultipleArgumentsPerToken = true };
        var overrides = new Option<string[]>("--override")
        {
            Description = "per-name tolerance GLOB=TOLERANCE (a tier or rtol=…,atol=…), e.g. 'input.mel.*=1e-4' '*.qk=loose'; the last match wins",
            AllowMultipleArgumentsPerToken = true,
        };
        var quantization = new Option<bool>("--quantization")
        {
            Description = "measure a quantized checkpoint's trace (candidate) against the float one's (reference): rel-L2 per module and layer, " +
                          "next-token KL and top-1 agreement (needs --capture lm_head in both traces), first greedy divergence; exit 0 when readable",
        };
        var also = new Option<string[]>("--also")
        {
            Description = "more candidate dumps to compare against the same reference, shown side by side (e.g. an MLX trace beside ours)",
            AllowMultipleArgumentsPerToken = true,
        };
        var cmd = new Command("compare", "Compare two dumps tensor by tensor in execution order; report the first module that departs.")
        {
            candidate, reference, rtol, atol, tier, json, requireAll, include, exclude, overrides, noDefaultRules, quantization, also,
        };
        cmd.SetAction(p => p.GetValue(quantization)
            ? RunQuantization(p.GetValue(candidate)!, p.GetValue(reference)!, p.GetValue(json), ui,
                IgnoredWithQuantization(p, rtol, atol, tier, requireAll, include, exclude, overrides, noDefaultRules, also))
            : Run(p.GetValue(candidate)!, p.GetValue(reference)!, ResolveTolerance(p.GetValue(tier), p.GetValue(rtol), p.GetValue(atol)),
            p.GetValue(json), p.GetValue(requireAll), p.GetValue(include) ?? [], p.GetValue(exclude) ?? [],
            (p.GetValue(overrides) ?? []).Select(ParseOverride).ToList(), ui, !p.GetValue(noDefaultRules), p.GetValue(also) ?? []));
        return cmd;
    }

    private static string? IgnoredWithQuantization(ParseResult p, params Option[] options) =>
        options.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name).FirstOrDefault();

    /// <summary>--tier picks a tier (default auto); --rtol/--atol replace its bounds (a custom elementwise rule, from port's under auto).</summary>
    public static Tolerance ResolveTolerance(string? tier, double? rtol, double? atol)
    {
        Tolerance t;
        try
        {
            t = tier is null ? Tolerance.Auto : Tolerance.Parse(tier);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"--tier: {e.Message}", e);
        }
        if (rtol is < 0 || atol is < 0) throw new ArgumentException("--rtol and --atol must not be negative");
        if (rtol is null && atol is null) return t;
        if (t.IsAuto) t = Tolerance.Port;
        return Tolerance.Of(rtol ?? t.Rtol, atol ?? t.Atol, tier is null ? null : t.MaxRelL2, tier is null ? 0 : t.Scale);
    }

    public static ToleranceOverride ParseOverride(string text)
    {
        int eq = text.IndexOf('=');
        if (eq <= 0) throw new ArgumentException($"--override '{text}': expected GLOB=TOLERANCE");
        try
        {
            return new ToleranceOverride(text[..eq], Tolerance.Parse(text[(eq + 1)..]));
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"--override '{text}': {e.Message}", e);
        }
    }

    private static ITensorSource OpenPrintable(string path, out IReadOnlyList<string>? order)
    {
        var raw = TensorFiles.Open(path);
        try
        {
            order = DumpFile.ExecutionOrder(raw)?.Select(Printable.Escape).ToList();
            return PrintableNameSource.Wrap(raw);
        }
        catch
        {
            raw.Dispose();
            throw;
        }
    }

    /// <summary>The quantization measurement: always exit 0 once both dumps are read (bad input throws, exit 2).</summary>
    public static int RunQuantization(string candidatePath, string referencePath, bool json, CliOutput ui, string? ignored = null)
    {
        // a tolerance would suggest a verdict this measurement does not give
        if (ignored is not null) throw new ArgumentException($"--quantization measures and judges nothing: it takes no {ignored}");
        using var candidate = OpenPrintable(candidatePath, out _);
        using var reference = OpenPrintable(referencePath, out var order);
        var result = ui.WithProgress("comparing", progress => QuantizationReport.Compare(candidate, reference, order, progress));
        ui.Out.Write(json ? QuantizationReport.ToJson(result) + Environment.NewLine : QuantizationReport.ToTable(result));
        return StepLabCli.Ok;
    }

    public static int Run(string candidatePath, string referencePath, Tolerance tolerance, bool json, bool requireAll,
        IReadOnlyList<string> include, IReadOnlyList<string> exclude, IReadOnlyList<ToleranceOverride> overrides, CliOutput ui,
        bool useDefaultRules = true, IReadOnlyList<string>? also = null)
    {
        // Names are escaped for display (PrintableNameSource): the table prints them, and a control character from the
        // file must not reach the terminal. Both sides escape alike, so matching by name is unchanged.
        using var reference = OpenPrintable(referencePath, out var order);
        var results = new List<(string Label, DumpComparison Comparison)>();
        foreach (var path in new[] { candidatePath }.Concat(also ?? []))
        {
            using var candidate = OpenPrintable(path, out _);
            var result = ui.WithProgress("comparing " + Path.GetFileName(path), progress => DumpComparer.Compare(candidate, reference, new CompareOptions
            {
                Tolerance = tolerance,
                RequireAll = requireAll,
                ExecutionOrder = order,
                Include = include,
                Exclude = exclude,
                Overrides = overrides,
                UseDefaultRules = useDefaultRules,
                Progress = progress,
            }));
            results.Add((Printable.Escape(Path.GetFileNameWithoutExtension(path)), result));
        }
        if (results.Count == 1)
            ui.Out.Write(json ? ParityReport.ToJson(results[0].Comparison) + Environment.NewLine : ParityReport.ToTable(results[0].Comparison));
        else
            ui.Out.Write(json ? "[" + string.Join(",", results.Select(r => ParityReport.ToJson(r.Comparison))) + "]" + Environment.NewLine
                : ParityReport.ToSideBySide(results));
        // A tensor that could not be read (corrupt member, CRC mismatch) is bad input, not a parity verdict: the report
        // still lists every other row, but the exit code says the input is broken.
        var errors = results.SelectMany(r => r.Comparison.Rows).Where(r => r.Status == RowStatus.Error).ToList();
        if (errors.Count > 0)
        {
            foreach (var r in errors.Take(5)) ui.Error.WriteLine($"steplab: {r.Error}");
            return StepLabCli.BadInput;
        }
        return results.All(r => r.Comparison.AllPassed) ? StepLabCli.Ok : StepLabCli.Failed;
    }
}
