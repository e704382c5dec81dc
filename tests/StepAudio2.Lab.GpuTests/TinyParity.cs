using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.GpuTests;

/// <summary>One dump's comparison: every traced path against the Python reference (rel-L2, the library's default
/// compare rules) and the KV-cached greedy ids against the reference's.</summary>
public sealed record ParityResult(string Dump, string Backend, int Compared, double WorstRelL2, string WorstPath, bool WithinCpuBound,
    bool DefaultRulesPassed, string? FirstRuleFailure, int[]? GreedyIds, int[]? ExpectedIds, bool? GreedyMatch, double Seconds, string? Error,
    string Tier = "port", string? IdNote = null)
{
    /// <summary>The verdict: no error, every path within its rel-L2 bound, the ids rule, and for fp32 the comparer's
    /// elementwise (port) rules — for bf16 those (the bf16 tier) are reported only, as PyTorch's own bf16 run fails them.</summary>
    public bool Passed => Error is null && WithinCpuBound && (Tier == "bf16" || DefaultRulesPassed) && GreedyMatch != false;
}

/// <summary>
/// The tiny checkpoint's traces on the GPU against reference-data/tiny/dumps, as tests/StepAudio2.Lab.Tests does on the
/// CPU (AudioPathParityTests, LlmParityTests): the same model code on the CUDA backend, activations and KV cache on the
/// device (the trace downloads what it records), compared with <see cref="DumpComparer"/> and the tests' rel-L2 ≤ 1e-5
/// bound, plus the KV-cached greedy ids.
/// </summary>
public static class TinyParity
{
    private const double CpuBound = 1e-5;

    /// <summary>bf16 backends: the bf16 tier's rel-L2 bound (<see cref="Tolerance.BF16"/>) instead of the CPU's.</summary>
    private static bool IsBf16(IBackend b) => b.Name.Contains("bf16", StringComparison.Ordinal);

    /// <summary>PyTorch's own all-bf16 run of one case (reference-data/tiny/bf16-reference.json, make_bf16_reference.py):
    /// per-path rel-L2 against the float32 dump; for the LLM cases the float32 ids' top-2 margins, the bf16 ids and the
    /// first step where they differ (null: never).</summary>
    private sealed record TorchBf16(Dictionary<string, double> RelL2, double[] Margins, int[] Ids, int? FirstDifference);

    /// <summary>The case's entry of bf16-reference.json, or null when the file or the case is absent.</summary>
    private static TorchBf16? LoadTorchBf16(string tinyDir, string name)
    {
        string file = Path.Combine(tinyDir, "bf16-reference.json");
        if (!File.Exists(file)) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        if (!doc.RootElement.GetProperty("cases").TryGetProperty(name, out var c)) return null;
        var rel = c.TryGetProperty("bfloat16_rel_l2", out var r) ? r.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble()) : [];
        double[] margins = c.TryGetProperty("float32_top2_margins", out var m) ? m.EnumerateArray().Select(e => e.GetDouble()).ToArray() : [];
        int[] ids = c.TryGetProperty("bfloat16_ids", out var b) ? b.EnumerateArray().Select(e => e.GetInt32()).ToArray() : [];
        int? first = c.TryGetProperty("bfloat16_first_difference", out var f) && f.ValueKind == System.Text.Json.JsonValueKind.Number ? f.GetInt32() : null;
        return new TorchBf16(rel, margins, ids, first);
    }

    /// <summary>
    /// Greedy ids of a bf16 backend: identical to the float32 reference's, or first different no earlier than PyTorch's own
    /// all-bf16 run of the reference modules — at such a step the float32 top-2 logits are closer (0.003–0.005 on the tiny
    /// cases) than bf16 rounding moves them.
    /// </summary>
    private static (bool Match, string? Note) Bf16Ids(TorchBf16? torch, string name, int[] greedy, int[] expected)
    {
        int first = Enumerable.Range(0, Math.Min(greedy.Length, expected.Length)).FirstOrDefault(i => greedy[i] != expected[i], -1);
        if (first < 0) return (true, null);
        if (torch is null || torch.Margins.Length <= first) return (false, $"ids differ from step {first}; {name} has no PyTorch bf16 ids in bf16-reference.json to say whether that is a bf16 near-tie");
        int torchFirst = torch.FirstDifference ?? int.MaxValue;
        return (first >= torchFirst,
            $"ids differ from step {first} (float32 top-2 margin there {torch.Margins[first]:G3}); PyTorch bf16 differs from step {(torch.FirstDifference?.ToString() ?? "never")}" +
            (greedy.SequenceEqual(torch.Ids) ? ", and its ids equal these" : ""));
    }

    /// <summary>Each dump on <paramref name="backend"/> with the activations on the device; a dump whose model code still
    /// reads an activation on the host (a <c>HostAccessException</c>) runs again through <see cref="HostResultsBackend"/>.</summary>
    public static List<ParityResult> Run(string tinyDir, CudaBackend backend, TextWriter log)
    {
        var results = new List<ParityResult>();
        var dumps = Path.Combine(tinyDir, "dumps");
        foreach (var (name, audio) in new[] { ("audio-short", true), ("audio-two_chunks", true), ("llm-short", false), ("llm-instruction", false), ("llm-two_chunks", false) })
        {
            if (!File.Exists(Path.Combine(dumps, name + ".safetensors"))) continue;
            var r = Guard(name, backend, log, b => audio ? Audio(tinyDir, name, b) : Llm(tinyDir, name, b));
            results.Add(r);
            if (r.Error is not null && r.Error.Contains(nameof(HostAccessException)))
                results.Add(Guard(name, new HostResultsBackend(backend), log, b => audio ? Audio(tinyDir, name, b) : Llm(tinyDir, name, b)));
        }
        return results;
    }

    private static ParityResult Guard(string name, IBackend backend, TextWriter log, Func<IBackend, ParityResult> run)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        ParityResult r;
        try { r = run(backend) with { Seconds = sw.Elapsed.TotalSeconds }; }
        catch (Exception e) { r = new ParityResult(name, backend.Name, 0, double.NaN, "", false, false, null, null, null, null, sw.Elapsed.TotalSeconds, $"{e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
        log.WriteLine($"{(r.Passed ? "ok  " : "FAIL")} parity {r.Dump,-16} {r.Backend,-22} {r.Compared,4} paths, worst rel-L2 {r.WorstRelL2:E2} at {r.WorstPath}; {r.Tier} elementwise rules {(r.DefaultRulesPassed ? "pass" : (r.Tier == "bf16" ? "fail (reported, as PyTorch's own bf16 run does) at " : "FAIL at ") + r.FirstRuleFailure)}" +
            (r.GreedyMatch is null ? "" : $"; greedy ids {(r.GreedyIds!.SequenceEqual(r.ExpectedIds!) ? "identical" : r.GreedyMatch == true ? "differ as PyTorch bf16's" : "DIFFER")} ({string.Join(",", r.GreedyIds ?? [])} vs {string.Join(",", r.ExpectedIds ?? [])})") +
            (r.IdNote is null ? "" : $" [{r.IdNote}]") +
            $" [{r.Seconds:F1} s]{(r.Error is null ? "" : "\n  " + r.Error)}");
        return r;
    }

    private static (Tensor Batch, int[] Lengths) MelBatch(ITensorSource dump)
    {
        var mels = dump.Tensors.Select(t => t.Name).Where(n => n.StartsWith("input.mel.", StringComparison.Ordinal)).OrderBy(n => int.Parse(n[10..])).Select(dump.Get).ToList();
        var batch = LogMelFrontend.Batch(mels);
        return (batch.Mels, batch.Lengths.ToInt64Array().Select(l => (int)l).ToArray());
    }

    private static ParityResult Compare(string tinyDir, string name, IBackend backend, Trace trace, ITensorSource dump, int[]? greedy, int[]? expected)
    {
        bool bf16 = IsBf16(backend);
        int compared = 0; double worst = 0; string worstPath = "";
        var torchBf16 = bf16 ? LoadTorchBf16(tinyDir, name) : null;
        string? overBound = null;
        foreach (var info in dump.Tensors.Where(t => !t.Name.StartsWith("input.", StringComparison.Ordinal) && !t.Name.StartsWith("output.", StringComparison.Ordinal)))
        {
            if (!trace.Contains(info.Name)) throw new InvalidOperationException($"the trace lacks '{info.Name}'");
            double rel = RelL2(trace[info.Name], dump.Get(info.Name));
            if (!(rel <= worst)) { worst = rel; worstPath = info.Name; }
            // bf16: within the bf16 tier's rel-L2 or PyTorch's own bf16 run's at this path, whichever is larger
            double bound = bf16 ? Math.Max(Tolerance.BF16.MaxRelL2!.Value, torchBf16?.RelL2.GetValueOrDefault(info.Name) ?? 0) : CpuBound;
            if (!(rel <= bound)) overBound ??= $"{info.Name}: rel-L2 {rel:G3} > {bound:G3}";
            compared++;
        }
        // bf16: the bf16 tier's elementwise verdict is reported, not required — PyTorch's own all-bf16 run fails it on
        // 12–44 % of the elements of most paths (make_bf16_reference.py); the documented float32 floors do not apply
        var options = bf16 ? new CompareOptions { Exclude = ["input.*", "output.*"], Tolerance = Tolerance.BF16, UseDefaultRules = false }
            : new CompareOptions { Exclude = ["input.*", "output.*"] };
        var cmp = DumpComparer.Compare(trace.ToTensorSource(), dump, options);
        var (match, note) = greedy is null ? (true, null) : bf16 ? Bf16Ids(torchBf16, name, greedy, expected!) : (greedy.SequenceEqual(expected!), null);
        return new ParityResult(name, backend.Name, compared, worst, worstPath, overBound is null, cmp.AllPassed, cmp.FirstFailure?.Name,
            greedy, expected, greedy is null ? null : match, 0, null, bf16 ? "bf16" : "port", overBound is null ? note : (note is null ? overBound : $"{overBound}; {note}"));
    }

    private static double RelL2(Tensor actual, Tensor expected)
    {
        if (!actual.Shape.SequenceEqual(expected.Shape)) return double.PositiveInfinity;
        var a = actual.ToDoubleArray(); var e = expected.ToDoubleArray();
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        return Math.Sqrt(num / Math.Max(den, 1e-300));
    }

    private static ParityResult Audio(string tiny, string name, IBackend backend)
    {
        using var checkpoint = ShardedCheckpoint.Open(tiny);
        using var dump = SafetensorsFile.Open(Path.Combine(tiny, "dumps", name + ".safetensors"));
        var config = StepAudio2Config.Load(tiny);
        var weights = new Weights(checkpoint);
        var encoder = new AudioEncoder(weights, config.Audio);
        var adaptor = new Adaptor(weights, config.Audio);
        var (batch, lengths) = MelBatch(dump);
        var trace = new Trace();
        using (Ops.Use(backend))
        {
            var (encoded, _) = encoder.Forward(batch, lengths, trace);
            adaptor.Forward(encoded, trace);
        }
        return Compare(tiny, name, backend, trace, dump, null, null);
    }

    private static ParityResult Llm(string tiny, string name, IBackend backend)
    {
        using var checkpoint = ShardedCheckpoint.Open(tiny);
        using var dump = SafetensorsFile.Open(Path.Combine(tiny, "dumps", name + ".safetensors"));
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(tiny), backend);
        var ids = dump.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
        var (mels, lengths) = MelBatch(dump);
        var trace = new Trace();
        var expected = dump.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i).ToArray();
        var greedy = new List<int>();
        using (Ops.Use(backend))
        {
            var (features, featLens) = model.EncodeAudio(mels, lengths, trace);
            var cache = new KvCache(model.Config.Text);
            var hidden = model.EmbedPrompt(ids, features, featLens, trace);
            var logits = model.LastLogits(hidden, 0, cache, trace);
            int pos = ids.Length;
            for (int step = 0; step < expected.Length; step++)
            {
                int next = Ops.Argmax(logits)[0];
                greedy.Add(next);
                logits = model.LastLogits(model.EmbedPrompt([next], null, []), pos++, cache);
            }
        }
        return Compare(tiny, name, backend, trace, dump, greedy.ToArray(), expected);
    }
}
