using System.Collections;
using System.Numerics;
using Razorvine.Pickle;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Torch;

/// <summary>The globals a torch.save state dict may reference, and nothing else.</summary>
internal static class TorchPickleAllowList
{
    /// <summary>Legacy typed-storage classes (module <c>torch</c>) that name a storage's element type.</summary>
    public static readonly IReadOnlyDictionary<string, DType> StorageTypes = new Dictionary<string, DType>(StringComparer.Ordinal)
    {
        ["FloatStorage"] = DType.F32,
        ["HalfStorage"] = DType.F16,
        ["BFloat16Storage"] = DType.BF16,
        ["DoubleStorage"] = DType.F64,
        ["LongStorage"] = DType.I64,
        ["IntStorage"] = DType.I32,
        ["ShortStorage"] = DType.I16,
        ["CharStorage"] = DType.I8,
        ["ByteStorage"] = DType.U8,
        ["BoolStorage"] = DType.Bool,
    };

    public static bool IsAllowed(string module, string name) => (module, name) switch
    {
        ("collections", "OrderedDict") => true,
        ("torch._utils", "_rebuild_tensor_v2") => true,
        ("torch._utils", "_rebuild_tensor") => true,
        ("torch", "Size") => true,
        ("torch", _) => StorageTypes.ContainsKey(name),
        _ => false,
    };
}

/// <summary>
/// Razorvine unpickler for torch's <c>data.pkl</c>. Only ever fed bytes that <see cref="PickleScanner"/> has
/// accepted. The constructors it needs are registered in Razorvine's process-wide registry, but they are inert: they
/// build plain records (<see cref="TensorRebuild"/>, <see cref="PickleOrderedDict"/>), never touch a file, and the
/// records only become tensors in <see cref="TorchCheckpoint"/>, which accepts nothing it did not create itself.
/// </summary>
internal sealed class TorchUnpickler : Unpickler
{
    private readonly string _file;
    private readonly Dictionary<string, StorageRef> _storages = new(StringComparer.Ordinal);
    private int _sequence;

    static TorchUnpickler()
    {
        registerConstructor("collections", "OrderedDict", new OrderedDictConstructor());
        registerConstructor("torch._utils", "_rebuild_tensor_v2", new RebuildTensorConstructor(version2: true));
        registerConstructor("torch._utils", "_rebuild_tensor", new RebuildTensorConstructor(version2: false));
        registerConstructor("torch", "Size", new SizeConstructor());
        foreach (var (name, dtype) in TorchPickleAllowList.StorageTypes)
            registerConstructor("torch", name, new StorageTypeConstructor(name, dtype));
    }

    public TorchUnpickler(string file) => _file = file;

    /// <summary>Storages in the order the pickle first mentions them.</summary>
    public IReadOnlyCollection<StorageRef> Storages => _storages.Values;

    internal int NextSequence() => _sequence++;

    /// <summary>torch.save's persistent id: <c>('storage', storage_type, key, location, numel)</c>.</summary>
    protected override object persistentLoad(object pid)
    {
        if (pid is not object[] { Length: 5 } t || t[0] is not "storage")
            throw new TorchCheckpointException(_file, $"unsupported persistent id {Describe(pid)} (expected ('storage', type, key, location, numel))");
        if (t[1] is not StorageTypeConstructor type)
            throw new TorchCheckpointException(_file, $"persistent id names storage type {Describe(t[1])}, not a torch storage class");
        if (t[2] is not string { Length: > 0 } key)
            throw new TorchCheckpointException(_file, $"storage key {Describe(t[2])} is not a non-empty string");
        string location = t[3] as string ?? throw new TorchCheckpointException(_file, "storage location is not a string", key);
        if (!TryInt64(t[4], out long numel) || numel < 0)
            throw new TorchCheckpointException(_file, $"storage element count {Describe(t[4])} is not a non-negative integer", key);

        if (_storages.TryGetValue(key, out var seen))
        {
            // torch itself refuses to save one storage under two element types; a file that does is inconsistent.
            if (seen.DType != type.DType || seen.Numel != numel)
                throw new TorchCheckpointException(_file,
                    $"storage is declared as {seen.DType.ShortName()}×{seen.Numel} and again as {type.DType.ShortName()}×{numel}", key);
            return seen;
        }
        var storage = new StorageRef(this, key, type.DType, numel, location);
        _storages.Add(key, storage);
        return storage;
    }

    internal static bool TryInt64(object? value, out long result)
    {
        switch (value)
        {
            case int i: result = i; return true;
            case long l: result = l; return true;
            case BigInteger b when b >= long.MinValue && b <= long.MaxValue: result = (long)b; return true;
            default: result = 0; return false;
        }
    }

    internal static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        object[] a => "(" + string.Join(", ", a.Take(6).Select(Describe)) + (a.Length > 6 ? ", …" : "") + ")",
        StorageTypeConstructor c => "torch." + c.Name,
        _ => value.GetType().Name,
    };
}

/// <summary>A storage named by a persistent id; its bytes are the zip member <c>data/&lt;Key&gt;</c>.</summary>
internal sealed class StorageRef(TorchUnpickler owner, string key, DType dtype, long numel, string location)
{
    /// <summary>The unpickler that made this reference; records from any other source are refused.</summary>
    public TorchUnpickler Owner { get; } = owner;
    public string Key { get; } = key;
    public DType DType { get; } = dtype;
    public long Numel { get; } = numel;
    /// <summary>Device the storage was saved from ("cpu", "cuda:0"); everything is loaded to host memory.</summary>
    public string Location { get; } = location;
}

/// <summary>An inert record of a <c>torch._utils._rebuild_tensor[_v2]</c> call, turned into a tensor after validation.</summary>
/// <param name="Sequence">Position among the pickle's tensors (orders plain-dict entries the way they were written).</param>
internal sealed class TensorRebuild(object?[] args, bool version2, int sequence)
{
    public object?[] Args { get; } = args;
    public bool Version2 { get; } = version2;
    public int Sequence { get; } = sequence;
}

/// <summary>
/// <c>collections.OrderedDict</c>. Razorvine's SETITEM(S) need a <see cref="Hashtable"/>, and its SETITEMS inserts a
/// batch in reverse, so insertion order is not the pickle's; entries are ordered later from the tensors' pickle
/// positions instead. State set by BUILD (a state dict's <c>_metadata</c>) is kept but not interpreted.
/// </summary>
internal sealed class PickleOrderedDict : Hashtable
{
    /// <summary>Instance attributes restored by BUILD (e.g. <c>{'_metadata': …}</c>).</summary>
    public Hashtable? State { get; private set; }

    // Called by Razorvine's BUILD opcode (by name); the only __setstate__ among the types this reader creates.
    public void __setstate__(Hashtable state) => State = state;
}

internal sealed class OrderedDictConstructor : IObjectConstructor
{
    public object construct(object[] args)
    {
        var dict = new PickleOrderedDict();
        if (args.Length == 0) return dict;
        // OrderedDict([(k, v), ...]) as older protocols may write it.
        if (args.Length == 1 && args[0] is IEnumerable items and not string)
        {
            foreach (var item in items)
            {
                if (item is object[] { Length: 2 } pair && pair[0] is not null) dict[pair[0]] = pair[1];
                else throw new PickleException("OrderedDict argument is not a list of (key, value) pairs");
            }
            return dict;
        }
        throw new PickleException($"OrderedDict called with {args.Length} arguments");
    }
}

internal sealed class RebuildTensorConstructor(bool version2) : IObjectConstructor
{
    public object construct(object[] args) =>
        new TensorRebuild(args, version2, args.Length > 0 && args[0] is StorageRef s ? s.Owner.NextSequence() : -1);
}

/// <summary><c>torch.Size(tuple)</c> is just its tuple here.</summary>
internal sealed class SizeConstructor : IObjectConstructor
{
    public object construct(object[] args) => args switch
    {
        [object[] dims] => dims,
        [ArrayList dims] => dims.ToArray(),
        [] => Array.Empty<object>(),
        _ => throw new PickleException("torch.Size expects one tuple argument"),
    };
}

/// <summary>A torch typed-storage class; only ever an argument of a persistent id, never called.</summary>
internal sealed class StorageTypeConstructor(string name, DType dtype) : IObjectConstructor
{
    public string Name { get; } = name;
    public DType DType { get; } = dtype;

    public object construct(object[] args) =>
        throw new PickleException($"calling torch.{Name} is not supported (storages come only from persistent ids)");
}
