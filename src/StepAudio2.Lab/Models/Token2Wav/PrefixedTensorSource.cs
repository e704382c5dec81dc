using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The tensors of another source whose names start with a prefix, shown with the prefix stripped (hift.pt stores every
/// key under <c>generator.</c>, docs/model.md §7.13). Keys outside the prefix are hidden; disposing disposes the inner source
/// only when <c>ownsInner</c>.
/// </summary>
public sealed class PrefixedTensorSource : ITensorSource
{
    private readonly ITensorSource _inner;
    private readonly string _prefix;
    private readonly bool _ownsInner;

    public PrefixedTensorSource(ITensorSource inner, string prefix, bool ownsInner = false)
    {
        _inner = inner;
        _prefix = prefix;
        _ownsInner = ownsInner;
        Tensors = inner.Tensors.Where(t => t.Name.StartsWith(prefix, StringComparison.Ordinal))
            .Select(t => t with { Name = t.Name[prefix.Length..] }).ToList();
    }

    public string Path => _inner.Path;
    public string Prefix => _prefix;
    public IReadOnlyList<TensorInfo> Tensors { get; }
    public bool Contains(string name) => _inner.Contains(_prefix + name);

    public Tensor Get(string name)
    {
        if (!Contains(name)) throw new WeightException(_inner.Path, $"tensor is missing (looked up as '{_prefix + name}')", name);
        return _inner.Get(_prefix + name);
    }

    public void Dispose()
    {
        if (_ownsInner) _inner.Dispose();
    }
}
