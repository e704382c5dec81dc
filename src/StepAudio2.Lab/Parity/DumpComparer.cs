using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Parity;

/// <summary>
/// A tolerance for the names matching a glob (<see cref="NameGlob"/>), e.g. <c>*.qk</c> → bf16; <paramref name="Name"/>
/// labels a documented rule in reports (null for a user's <c>--override</c>).
/// </summary>
public sealed record ToleranceOverride(string Pattern, Tolerance Tolerance, string? Name = null)
{
    /// <summary>How the report names this rule: "mel floor (input.mel.*)" or "--override 'x*'".</summary>
    public string Label => Name is null ? $"--override '{Pattern}'" : $"{Name} ({Pattern})";
}

/// <summary>How two dumps are compared.</summary>
public sealed record CompareOptions
{
    /// <summary>
    /// Tolerance for every name no override matches. The default, <see cref="Parity.Tolerance.Auto"/>, picks by dtype per
    /// row (<see cref="Parity.Tolerance.Port"/> for float32) and lets the documented floors apply.
    /// </summary>
    public Tolerance Tolerance { get; init; } = Tolerance.Auto;

    /// <summary>Per-name tolerances; when several match, the last one wins (later, more specific entries refine earlier ones).</summary>
    public IReadOnlyList<ToleranceOverride> Overrides { get; init; } = [];

    /// <summary>
    /// Whether the documented floors (<see cref="ReferenceOverrides.Defaults"/>) apply to float32 rows of their paths when
    /// the tolerance is <see cref="Parity.Tolerance.Auto"/> and no user override matches (default true).
    /// </summary>
    public bool UseDefaultRules { get; init; } = true;

    /// <summary>Only names matching one of these globs are considered (all when empty).</summary>
    public IReadOnlyList<string> Include { get; init; } = [];

    /// <summary>Names matching one of these globs are ignored (applied after <see cref="Include"/>).</summary>
    public IReadOnlyList<string> Exclude { get; init; } = [];

    /// <summary>When true, a name present on one side only is a failure; otherwise it is listed but does not fail the run.</summary>
    public bool RequireAll { get; init; }

    /// <summary>
    /// Execution order of the names (e.g. from the reference dump's <c>steplab.order</c> metadata, see
    /// <see cref="DumpComparer.ParseOrder"/>). Names not in it follow, in <see cref="ModulePathComparer"/> order; when null,
    /// every name is ordered by <see cref="ModulePathComparer"/>.
    /// </summary>
    public IReadOnlyList<string>? ExecutionOrder { get; init; }

    /// <summary>Reported after each row: rows done, rows in total, the row's name.</summary>
    public IProgress<(int Done, int Total, string Name)>? Progress { get; init; }

    /// <summary>The tolerance that applies to <paramref name="name"/> (dtypes unknown: see the other overload).</summary>
    public Tolerance ToleranceFor(string name) => RuleFor(name, null, null).Tolerance;

    /// <summary>
    /// The tolerance for <paramref name="name"/> and the rule it comes from: the last matching user override; else, under
    /// <see cref="Parity.Tolerance.Auto"/>, a documented floor for float32 rows of its path or the dtype's tier; else the
    /// given tolerance.
    /// </summary>
    public (Tolerance Tolerance, string Rule) RuleFor(string name, DType? candidate, DType? reference)
    {
        ToleranceOverride? match = null;
        foreach (var o in Overrides)
            if (NameGlob.IsMatch(name, o.Pattern)) match = o;
        if (match is not null) return (match.Tolerance, match.Label);
        if (!Tolerance.IsAuto) return (Tolerance, Tolerance.Name ?? "custom");
        bool known = candidate is not null && reference is not null;
        var tier = known ? Tolerance.ForDTypes(candidate!.Value, reference!.Value) : Tolerance.Port;
        if (UseDefaultRules && ReferenceEquals(tier, Tolerance.Port))
            foreach (var rule in ReferenceOverrides.Defaults)
                if (NameGlob.IsMatch(name, rule.Pattern)) match = rule;
        return match is not null ? (match.Tolerance, match.Label) : (known ? tier : Tolerance.Auto, tier.Name!);
    }

    /// <summary>Whether <paramref name="name"/> passes the include/exclude filters.</summary>
    public bool Selects(string name) =>
        (Include.Count == 0 || NameGlob.IsMatchAny(name, Include)) && !NameGlob.IsMatchAny(name, Exclude);
}

/// <summary>Outcome of one name in a dump comparison.</summary>
public enum RowStatus
{
    Pass,
    Fail,
    /// <summary>In the reference only.</summary>
    MissingInCandidate,
    /// <summary>In the candidate only.</summary>
    MissingInReference,
    /// <summary>A side could not be read (the message is in <see cref="DumpRow.Error"/>).</summary>
    Error,
}

/// <summary>One name of a dump comparison, in execution order (<see cref="Ordinal"/> is its 1-based position).</summary>
public sealed record DumpRow
{
    public required int Ordinal { get; init; }
    public required string Name { get; init; }
    public required RowStatus Status { get; init; }
    /// <summary>The tolerance asked for this name (the comparison's own is <see cref="Parity.Tolerance.Exact"/> for integers).</summary>
    public required Tolerance Tolerance { get; init; }
    /// <summary>Which rule gave <see cref="Tolerance"/>: a tier name ("port", "bf16", "exact"), a documented floor, or an override.</summary>
    public string Rule { get; init; } = "";
    /// <summary>Present for Pass/Fail rows.</summary>
    public TensorComparison? Comparison { get; init; }
    /// <summary>Header entry on the candidate side, when present.</summary>
    public TensorInfo? CandidateInfo { get; init; }
    /// <summary>Header entry on the reference side, when present.</summary>
    public TensorInfo? ReferenceInfo { get; init; }
    /// <summary>Why a side could not be read (Error rows).</summary>
    public string? Error { get; init; }
    /// <summary>Whether this row fails the run (Fail, Error, and Missing* under <see cref="CompareOptions.RequireAll"/>).</summary>
    public required bool IsFailure { get; init; }
}

/// <summary>A whole-dump comparison: every selected name of either side, in execution order, plus the verdict.</summary>
public sealed record DumpComparison
{
    public required string CandidatePath { get; init; }
    public required string ReferencePath { get; init; }
    /// <summary>Default tolerance (overrides are per row in <see cref="DumpRow.Tolerance"/>).</summary>
    public required Tolerance Tolerance { get; init; }
    public required bool RequireAll { get; init; }
    public required IReadOnlyList<DumpRow> Rows { get; init; }
    /// <summary>Names in the reference only, in row order.</summary>
    public required IReadOnlyList<string> MissingInCandidate { get; init; }
    /// <summary>Names in the candidate only, in row order.</summary>
    public required IReadOnlyList<string> MissingInReference { get; init; }

    /// <summary>First failing row in execution order: where the two implementations first part.</summary>
    public DumpRow? FirstFailure => Rows.FirstOrDefault(r => r.IsFailure);

    /// <summary>Rows where both sides were compared.</summary>
    public int Compared => Rows.Count(r => r.Comparison is not null);

    public int Failed => Rows.Count(r => r.IsFailure);

    /// <summary>No failing row and at least one tensor compared: an empty intersection never passes.</summary>
    public bool AllPassed => Compared > 0 && FirstFailure is null;

    /// <summary>Compared rows whose shapes differ only by a leading batch dim of 1 (they passed or failed on their values).</summary>
    public IReadOnlyList<string> BatchDimOnly => Rows.Where(r => r.Comparison?.BatchDimOnly == true).Select(r => r.Name).ToList();

    /// <summary>Each rule applied to compared rows, with the tolerance it stands for and how many rows it judged, in first-use order.</summary>
    public IReadOnlyList<(string Rule, Tolerance Tolerance, int Rows)> RulesApplied =>
        Rows.Where(r => r.Comparison is not null)
            .GroupBy(r => r.Comparison!.IsInteger ? "exact" : r.Rule)
            .Select(g => (g.Key, g.First().Comparison!.IsInteger ? Tolerance.Exact : g.First().Tolerance, g.Count()))
            .ToList();
}

/// <summary>Compares two dumps (any <see cref="ITensorSource"/>) tensor by tensor, by name.</summary>
public static class DumpComparer
{
    /// <summary>Metadata key under which a dump writer stores its execution order as a JSON array of names.</summary>
    public const string OrderMetadataKey = "steplab.order";

    public static DumpComparison Compare(ITensorSource candidate, ITensorSource reference, CompareOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(candidate);
        ArgumentNullException.ThrowIfNull(reference);
        options ??= new CompareOptions();
        options.Tolerance.Validate();
        foreach (var o in options.Overrides) o.Tolerance.Validate();

        var candInfo = Index(candidate);
        var refInfo = Index(reference);
        var names = candInfo.Keys.Union(refInfo.Keys).Where(options.Selects).ToList();
        names = Order(names, options.ExecutionOrder);

        var rows = new List<DumpRow>(names.Count);
        var missingInCandidate = new List<string>();
        var missingInReference = new List<string>();
        for (int i = 0; i < names.Count; i++)
        {
            string name = names[i];
            candInfo.TryGetValue(name, out var ci);
            refInfo.TryGetValue(name, out var ri);
            var (tol, rule) = options.RuleFor(name, ci?.DType, ri?.DType);
            var row = new DumpRow
            {
                Ordinal = i + 1,
                Name = name,
                Status = RowStatus.Pass,
                Tolerance = tol,
                Rule = rule,
                CandidateInfo = ci,
                ReferenceInfo = ri,
                IsFailure = false,
            };
            if (ci is null)
            {
                missingInCandidate.Add(name);
                row = row with { Status = RowStatus.MissingInCandidate, IsFailure = options.RequireAll };
            }
            else if (ri is null)
            {
                missingInReference.Add(name);
                row = row with { Status = RowStatus.MissingInReference, IsFailure = options.RequireAll };
            }
            else
            {
                row = CompareOne(row, candidate, reference, tol);
                ReleaseIfLarge(ci, ri);
            }
            rows.Add(row);
            options.Progress?.Report((i + 1, names.Count, name));
        }

        return new DumpComparison
        {
            CandidatePath = candidate.Path,
            ReferencePath = reference.Path,
            Tolerance = options.Tolerance,
            RequireAll = options.RequireAll,
            Rows = rows,
            MissingInCandidate = missingInCandidate,
            MissingInReference = missingInReference,
        };
    }

    private static DumpRow CompareOne(DumpRow row, ITensorSource candidate, ITensorSource reference, Tolerance tol)
    {
        Tensor a, b;
        try
        {
            a = candidate.Get(row.Name);
            b = reference.Get(row.Name);
        }
        catch (LabDataException e)
        {
            // One unreadable tensor should not hide the rest of the report; it fails its row.
            return row with { Status = RowStatus.Error, Error = e.Message, IsFailure = true };
        }
        try
        {
            var c = TensorComparer.Compare(row.Name, a, b, tol);
            return row with { Status = c.Passed ? RowStatus.Pass : RowStatus.Fail, Comparison = c, IsFailure = !c.Passed };
        }
        catch (NotSupportedException e)
        {
            return row with { Status = RowStatus.Error, Error = e.Message, IsFailure = true };
        }
    }

    /// <summary>Pairs at least this large (bytes, both sides) are released before the next pair is loaded.</summary>
    private const long LargePairBytes = 256L << 20;

    /// <summary>
    /// One tensor pair in memory at a time: inflated .npz members are managed arrays that the GC would otherwise free
    /// only under pressure, so three 1 GB members could be alive together. After a large pair, collect at once.
    /// </summary>
    private static void ReleaseIfLarge(TensorInfo candidate, TensorInfo reference)
    {
        if (candidate.ByteLength + reference.ByteLength < LargePairBytes) return;
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
    }

    private static Dictionary<string, TensorInfo> Index(ITensorSource source)
    {
        var map = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
        foreach (var t in source.Tensors) map.TryAdd(t.Name, t);
        return map;
    }

    /// <summary>Names in <paramref name="executionOrder"/> first (by first position), the rest by <see cref="ModulePathComparer"/>.</summary>
    public static List<string> Order(IEnumerable<string> names, IReadOnlyList<string>? executionOrder = null)
    {
        var position = new Dictionary<string, int>(StringComparer.Ordinal);
        if (executionOrder is not null)
            for (int i = 0; i < executionOrder.Count; i++) position.TryAdd(executionOrder[i], i);
        var list = names.Distinct(StringComparer.Ordinal).ToList();
        list.Sort((x, y) =>
        {
            bool hx = position.TryGetValue(x, out int px), hy = position.TryGetValue(y, out int py);
            if (hx && hy) return px.CompareTo(py);
            if (hx != hy) return hx ? -1 : 1;
            return ModulePathComparer.Instance.Compare(x, y);
        });
        return list;
    }

    /// <summary>
    /// Parses the <see cref="OrderMetadataKey"/> metadata value (a JSON array of strings) of the dump at <paramref name="file"/>;
    /// throws a <see cref="LabDataException"/> naming the file and key when it is anything else.
    /// </summary>
    public static IReadOnlyList<string> ParseOrder(string json, string file)
    {
        ArgumentNullException.ThrowIfNull(json);
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Array)
                throw new LabDataException(file, $"metadata is a JSON {doc.RootElement.ValueKind}, expected an array of tensor names", OrderMetadataKey);
            var names = new List<string>(doc.RootElement.GetArrayLength());
            int i = 0;
            foreach (var e in doc.RootElement.EnumerateArray())
            {
                if (e.ValueKind != JsonValueKind.String)
                    throw new LabDataException(file, $"element {i} is a JSON {e.ValueKind}, expected a tensor name", OrderMetadataKey);
                names.Add(e.GetString()!);
                i++;
            }
            return names;
        }
        catch (JsonException e)
        {
            throw new LabDataException(file, $"metadata is not valid JSON: {e.Message}", OrderMetadataKey, inner: e);
        }
    }
}
