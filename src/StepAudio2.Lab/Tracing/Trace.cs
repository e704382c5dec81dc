using System.Text.RegularExpressions;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tracing;

/// <summary>
/// Activations recorded during a run, named by the official PyTorch module path (design.md §3): what a forward hook on
/// the official model would see (<c>encoder.blocks.3.attn</c>), attention scores as <c>&lt;path&gt;.qk</c>, inputs as
/// <c>input.*</c>. Modules call <see cref="Record"/> with the trace they were given; with no trace (null) nothing is
/// copied or kept, so tracing off costs one null check per module.
/// </summary>
public sealed class Trace
{
    private readonly Regex[]? _patterns;
    private readonly Dictionary<string, Tensor> _tensors = new(StringComparer.Ordinal);
    private readonly List<string> _order = [];

    /// <param name="capture">Glob patterns (<c>*</c> any run, <c>?</c> one character) of paths to keep; null keeps all.</param>
    public Trace(IEnumerable<string>? capture = null)
    {
        var globs = capture?.ToArray();
        _patterns = globs is null || globs.Length == 0 ? null : globs.Select(GlobToRegex).ToArray();
    }

    /// <summary>Paths recorded so far, in execution order (the order a dump is compared in).</summary>
    public IReadOnlyList<string> Order => _order;

    public int Count => _order.Count;
    public bool Contains(string path) => _tensors.ContainsKey(path);
    public Tensor this[string path] => _tensors.TryGetValue(path, out var t) ? t : throw new KeyNotFoundException($"trace has no activation '{path}'");

    /// <summary>True when <paramref name="path"/> matches the capture patterns (cheap; call before expensive extras like .qk).</summary>
    public bool Wants(string path) => _patterns is null || _patterns.Any(p => p.IsMatch(path));

    /// <summary>True only when a capture pattern was given and matches (for activations too large to keep by default).</summary>
    public bool WantsExplicitly(string path) => _patterns is not null && _patterns.Any(p => p.IsMatch(path));

    /// <summary>Keeps a copy of <paramref name="value"/> under <paramref name="path"/> when wanted (a contiguous snapshot).</summary>
    public void Record(string path, Tensor value)
    {
        if (!Wants(path)) return;
        // a device activation is downloaded (a transfer point), which is already a fresh contiguous copy
        var snapshot = !value.IsHost ? value.ToHost()
            : value.Storage.IsMapped || !value.IsContiguous ? value.Contiguous() : Tensor.FromBytes(value.ContiguousBytes(), value.DType, value.Shape);
        if (!_tensors.ContainsKey(path)) _order.Add(path);
        _tensors[path] = snapshot;
    }

    public IEnumerable<(string Path, Tensor Value)> Entries => _order.Select(p => (p, _tensors[p]));

    /// <summary>
    /// The first recorded activation (execution order) holding NaN or ±Inf, with the flat index of its first such
    /// element; null when every floating activation is finite. Where a broken forward (NaN weights, overflow) starts.
    /// Attention-score captures (<c>*.qk</c>) are skipped: masked scores are −inf on purpose.
    /// </summary>
    public (string Path, long Index, float Value)? FirstNonFinite()
    {
        foreach (var path in _order)
        {
            var t = _tensors[path];
            // Attention scores carry −inf by design (padding and causal masks), so they are not evidence of a fault.
            if (!t.DType.IsFloating() || path.EndsWith(".qk", StringComparison.Ordinal)) continue;
            var values = t.ToFloatArray();
            int i = Array.FindIndex(values, v => !float.IsFinite(v));
            if (i >= 0) return (path, i, values[i]);
        }
        return null;
    }

    /// <summary>The recorded activations as a dump in memory (execution order), e.g. to compare without writing a file.</summary>
    public ITensorSource ToTensorSource() => new TraceSource(this);

    private sealed class TraceSource(Trace trace) : ITensorSource
    {
        public string Path => "trace";
        public IReadOnlyList<TensorInfo> Tensors { get; } =
            trace.Entries.Select(e => new TensorInfo(e.Path, e.Value.DType, e.Value.Shape, e.Value.ByteCount, "trace")).ToList();
        public bool Contains(string name) => trace.Contains(name);
        public Tensor Get(string name) => trace.Contains(name) ? trace[name] : throw new WeightException("trace", "no such activation was recorded", name);
        public void Dispose() { }
    }

    public static Regex GlobToRegex(string glob) =>
        new("^" + Regex.Escape(glob).Replace(@"\*", ".*").Replace(@"\?", ".") + "$", RegexOptions.CultureInvariant);
}
