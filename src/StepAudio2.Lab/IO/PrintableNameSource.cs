using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO;

/// <summary>
/// A tensor source whose names are shown through <see cref="Printable.Escape"/>: for text reports that print names read
/// from a file (ESC, CR or LF in a name must not reach the terminal or forge a report line). Sources whose names are all
/// printable are returned as they are.
/// </summary>
public sealed class PrintableNameSource : ITensorSource
{
    private readonly ITensorSource _inner;
    private readonly Dictionary<string, string> _toInner;

    private PrintableNameSource(ITensorSource inner)
    {
        _inner = inner;
        _toInner = new Dictionary<string, string>(StringComparer.Ordinal);
        var infos = new List<TensorInfo>(inner.Tensors.Count);
        foreach (var t in inner.Tensors)
        {
            string shown = Printable.Escape(t.Name);
            if (!_toInner.TryAdd(shown, t.Name))
                throw new LabDataException(inner.Path, "two tensor names print the same once control characters are escaped", shown);
            infos.Add(t with { Name = shown });
        }
        Tensors = infos;
    }

    /// <summary><paramref name="source"/> itself when every name is printable, else a view with escaped names (owning it).</summary>
    public static ITensorSource Wrap(ITensorSource source) =>
        source.Tensors.Any(t => Printable.Escape(t.Name) != t.Name) ? new PrintableNameSource(source) : source;

    public string Path => _inner.Path;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public bool Contains(string name) => _toInner.ContainsKey(name);

    public Tensor Get(string name) =>
        _toInner.TryGetValue(name, out var inner) ? _inner.Get(inner) : throw new LabDataException(Path, "no tensor with this name", name);

    public void Dispose() => _inner.Dispose();
}
