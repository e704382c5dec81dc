using System.Collections;
using System.Globalization;
using System.Numerics;
using System.Text;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Torch;

/// <summary>
/// A PyTorch zip checkpoint (<c>torch.save</c> since 1.6: <c>flow.pt</c>, <c>hift.pt</c>, <c>pytorch_model.bin</c>) read
/// without executing its pickle. <c>data.pkl</c> is first scanned opcode by opcode against an allow-list of globals
/// (OrderedDict, <c>torch._utils._rebuild_tensor[_v2]</c>, <c>torch.Size</c>, the typed storage classes) and only
/// then unpickled by Razorvine.Pickle into inert records. Tensors are zero-copy views into the memory-mapped archive
/// (stored members) with torch's storage offset and strides, so views and shared storages come out as saved.
/// Nested dicts are flattened with '.'; non-tensor leaves (ints, strings, …) land in <see cref="Metadata"/>.
/// </summary>
public sealed class TorchCheckpoint : ITensorSource
{
    /// <summary>Largest <c>data.pkl</c> accepted (real state dicts have pickles of a few hundred KB).</summary>
    public const long MaxPickleBytes = 256L << 20;
    private const int MaxDepth = 64;

    /// <summary>
    /// Most containers, leaves and tensor entries the flattener visits. Memo-shared containers (a "billion laughs" pickle)
    /// are re-walked under every name that reaches them, so a few hundred bytes can name 2^60 entries; the depth cap
    /// does not bound width. Real state dicts visit a few thousand (flow.pt: ~1 500).
    /// </summary>
    public const int MaxFlattenedItems = 1_000_000;
    private const int MaxRank = 64;

    private readonly MappedFileStorage _file;
    private readonly ZipDirectory _zip;
    private readonly Dictionary<string, Entry> _entries;
    private readonly Dictionary<string, TensorStorage> _storages = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();
    private bool _disposed;

    private TorchCheckpoint(string path, MappedFileStorage file)
    {
        Path = path;
        _file = file;
        RefuseNonZip(path, file);
        _zip = ZipDirectory.Read(file, path);

        var pickleMember = FindPickle(path, _zip);
        ArchiveName = pickleMember.Name[..pickleMember.Name.IndexOf('/')];
        CheckByteOrder();

        byte[] pickle = _zip.ReadAll(pickleMember, MaxPickleBytes);
        PickleScanner.Scan(pickle, TorchPickleAllowList.IsAllowed, path, pickleMember.Name);

        var unpickler = new TorchUnpickler(path);
        object? root;
        try
        {
            root = unpickler.loads(pickle);
        }
        catch (Exception ex) when (ex is not LabDataException)
        {
            throw new TorchCheckpointException(path, $"malformed pickle: {ex.Message}", pickleMember.Name, inner: ex);
        }

        var members = new Dictionary<string, ZipMember>(StringComparer.Ordinal);
        foreach (var s in unpickler.Storages) members[s.Key] = CheckStorage(s);

        var flat = new Flattener(path);
        flat.Visit(root, "", 0);
        _entries = new Dictionary<string, Entry>(StringComparer.Ordinal);
        var infos = new List<TensorInfo>(flat.Tensors.Count);
        foreach (var (name, rebuild) in flat.Tensors)
        {
            var e = Resolve(name, rebuild, unpickler, members);
            _entries.Add(name, e);
            infos.Add(new TensorInfo(name, e.Storage.DType, (int[])e.Shape.Clone(), Tensor.CountElements(e.Shape) * e.Storage.DType.SizeOf(), path));
        }
        Tensors = infos;
        Metadata = flat.Metadata;
    }

    /// <summary>Opens <paramref name="path"/> read-only; throws a <see cref="TorchCheckpointException"/> (or <see cref="UnsafePickleException"/>) on bad input.</summary>
    public static TorchCheckpoint Open(string path)
    {
        var file = new MappedFileStorage(path);
        try
        {
            return new TorchCheckpoint(path, file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>The archive's top folder (torch uses the file's stem at save time, e.g. <c>hift</c> or <c>archive</c>).</summary>
    public string ArchiveName { get; }

    /// <summary>Every tensor, flattened ('.'-joined) names in pickle order.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    /// <summary>
    /// Non-tensor leaves by flattened name: <c>long</c>, <c>double</c>, <c>string</c>, <c>bool</c>, <c>null</c>,
    /// <c>byte[]</c>, <see cref="BigInteger"/>, and <c>IReadOnlyList&lt;object?&gt;</c> for lists and tuples.
    /// </summary>
    public IReadOnlyDictionary<string, object?> Metadata { get; }

    public bool Contains(string name) => _entries.ContainsKey(name);

    public Tensor Get(string name)
    {
        if (!_entries.TryGetValue(name, out var e))
            throw new TorchCheckpointException(Path, "no tensor with this name in the checkpoint", name);
        var storage = StorageFor(e);
        return new Tensor(storage, e.Storage.DType, (int[])e.Shape.Clone(), (long[])e.Strides.Clone(), e.StorageOffset);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _storages.Clear();
        }
        _file.Dispose();
    }

    // ------------------------------------------------------------------ opening

    private static void RefuseNonZip(string path, MappedFileStorage file)
    {
        if (file.ByteLength < 4)
            throw new TorchCheckpointException(path, $"file of {file.ByteLength} bytes is too short to be a PyTorch checkpoint");
        var head = file.Span(0, (int)Math.Min(file.ByteLength, 512));
        if (ZipDirectory.HasZipSignature(head)) return;
        const string resave = "re-save it with torch.save(obj, f, _use_new_zipfile_serialization=True) (the default since PyTorch 1.6)";
        if (head[0] == 0x80) // pickle PROTO: the pre-1.6 format is a sequence of pickles followed by raw storages
            throw new TorchCheckpointException(path, $"legacy torch.save format (raw pickle stream), which is not supported; {resave}", offset: 0);
        if (head.Length >= 262 && head.Slice(257, 5).SequenceEqual("ustar"u8))
            throw new TorchCheckpointException(path, $"legacy torch.save tar format, which is not supported; {resave}", offset: 0);
        throw new TorchCheckpointException(path, "not a PyTorch zip checkpoint (no zip signature)", offset: 0);
    }

    private static ZipMember FindPickle(string path, ZipDirectory zip)
    {
        ZipMember? found = null;
        foreach (var m in zip.Members)
        {
            int slash = m.Name.IndexOf('/');
            if (slash <= 0 || m.Name.AsSpan(slash + 1) is not "data.pkl") continue;
            if (found is not null)
                throw new TorchCheckpointException(path, $"archive holds two pickles ({found.Name}, {m.Name}); cannot tell which is the checkpoint", m.Name);
            found = m;
        }
        return found ?? throw new TorchCheckpointException(path, "zip archive has no <archive>/data.pkl: not a torch.save checkpoint");
    }

    private void CheckByteOrder()
    {
        string name = ArchiveName + "/byteorder";
        if (!_zip.TryGet(name, out var member)) return; // absent before PyTorch 2.1: always little-endian
        string order = Encoding.ASCII.GetString(_zip.ReadAll(member, 64)).Trim();
        if (order == "little") return;
        if (order == "big")
            throw new TorchCheckpointException(Path, "big-endian checkpoint (byteorder 'big'); only little-endian checkpoints are supported", name);
        throw new TorchCheckpointException(Path, $"unknown byte order '{order}'", name);
    }

    private ZipMember CheckStorage(StorageRef s)
    {
        string name = $"{ArchiveName}/data/{s.Key}";
        if (!_zip.TryGet(name, out var member))
            throw new TorchCheckpointException(Path, $"storage '{s.Key}' ({s.DType.ShortName()}, {s.Numel} elements) has no data member in the archive", name);
        long needed;
        try { needed = checked(s.Numel * s.DType.SizeOf()); }
        catch (OverflowException) { needed = long.MaxValue; }
        if (needed > member.UncompressedSize)
            throw new TorchCheckpointException(Path,
                $"storage '{s.Key}' declares {s.Numel} {s.DType.ShortName()} elements ({needed} bytes) but its member holds {member.UncompressedSize} bytes",
                name, member.DataOffset);
        return member;
    }

    private Entry Resolve(string name, TensorRebuild r, TorchUnpickler owner, Dictionary<string, ZipMember> members)
    {
        var a = r.Args;
        // v2: (storage, offset, size, stride, requires_grad, backward_hooks[, metadata]); v1: (storage, offset, size, stride)
        int min = r.Version2 ? 6 : 4, max = r.Version2 ? 7 : 4;
        if (a.Length < min || a.Length > max)
            throw Bad(name, $"_rebuild_tensor{(r.Version2 ? "_v2" : "")} called with {a.Length} arguments");
        if (a[0] is not StorageRef s || !ReferenceEquals(s.Owner, owner))
            throw Bad(name, $"first argument of _rebuild_tensor is {TorchUnpickler.Describe(a[0])}, not a storage of this archive");
        if (!TorchUnpickler.TryInt64(a[1], out long offset) || offset < 0)
            throw Bad(name, $"storage offset {TorchUnpickler.Describe(a[1])} is not a non-negative integer");
        var shapeItems = AsTuple(a[2]) ?? throw Bad(name, $"size {TorchUnpickler.Describe(a[2])} is not a tuple");
        var strideItems = AsTuple(a[3]) ?? throw Bad(name, $"stride {TorchUnpickler.Describe(a[3])} is not a tuple");
        if (shapeItems.Count != strideItems.Count || shapeItems.Count > MaxRank)
            throw Bad(name, $"size rank {shapeItems.Count} and stride rank {strideItems.Count} disagree or exceed {MaxRank}");

        var shape = new int[shapeItems.Count];
        var strides = new long[shapeItems.Count];
        for (int i = 0; i < shape.Length; i++)
        {
            if (!TorchUnpickler.TryInt64(shapeItems[i], out long d) || d < 0 || d > int.MaxValue)
                throw Bad(name, $"dimension {i} = {TorchUnpickler.Describe(shapeItems[i])} is not an integer in [0, {int.MaxValue}]");
            if (!TorchUnpickler.TryInt64(strideItems[i], out long st) || st < 0)
                throw Bad(name, $"stride {i} = {TorchUnpickler.Describe(strideItems[i])} is not a non-negative integer");
            shape[i] = (int)d;
            strides[i] = st;
        }

        // Every element the view addresses must lie inside the storage's declared elements.
        try
        {
            long count = Tensor.CountElements(shape);
            long last = offset;
            if (count > 0)
                for (int i = 0; i < shape.Length; i++) last = checked(last + (shape[i] - 1L) * strides[i]);
            bool inside = count == 0 ? offset <= s.Numel : last < s.Numel;
            if (!inside)
                throw Bad(name, $"view {Tensor.ShapeString(shape)} (strides [{string.Join(", ", strides)}], offset {offset}) reaches beyond storage '{s.Key}' of {s.Numel} elements");
        }
        catch (OverflowException)
        {
            throw Bad(name, $"view {Tensor.ShapeString(shape)} with strides [{string.Join(", ", strides)}] overflows 64-bit indexing");
        }
        return new Entry(s, members[s.Key], offset, shape, strides);
    }

    private static IList? AsTuple(object? value) => value switch
    {
        object[] t => t,
        ArrayList l => l,
        _ => null,
    };

    private TorchCheckpointException Bad(string name, string fault) => new(Path, fault, name);

    // ------------------------------------------------------------------ storages

    private TensorStorage StorageFor(Entry e)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_storages.TryGetValue(e.Storage.Key, out var cached)) return cached;
            long bytes = e.Storage.Numel * e.Storage.DType.SizeOf(); // checked against the member at open
            TensorStorage storage;
            if (e.Member.IsStored)
            {
                storage = new ZipMemberStorage(_file, e.Member.DataOffset, bytes, e.Member.Name);
            }
            else
            {
                // Deflated archives (not written by torch.save, but by re-zipping tools) cannot be mapped: inflate once.
                if (e.Member.UncompressedSize > Array.MaxLength)
                    throw new TorchCheckpointException(Path, $"deflated storage of {e.Member.UncompressedSize} bytes is too large to inflate in memory; store it uncompressed", e.Member.Name);
                var managed = new ManagedStorage(e.Member.UncompressedSize);
                _zip.CopyTo(e.Member, managed.WritableSpan);
                storage = managed;
            }
            _storages.Add(e.Storage.Key, storage);
            return storage;
        }
    }

    private sealed record Entry(StorageRef Storage, ZipMember Member, long StorageOffset, int[] Shape, long[] Strides);

    // ------------------------------------------------------------------ flattening

    /// <summary>Turns the unpickled object graph into ('.'-joined name, tensor record) pairs and metadata leaves.</summary>
    private sealed class Flattener(string path)
    {
        private readonly HashSet<object> _onPath = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<object, int> _firstTensor = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        private int _work;

        /// <summary>One more visited item; beyond <see cref="MaxFlattenedItems"/> the pickle is refused.</summary>
        private void Count(string name)
        {
            if (++_work > MaxFlattenedItems)
                throw new TorchCheckpointException(path,
                    $"pickle expands to more than {MaxFlattenedItems:N0} entries (shared or repeated containers); refusing to flatten it", name.Length > 0 ? name : null);
        }

        public List<(string Name, TensorRebuild Rebuild)> Tensors { get; } = [];
        public Dictionary<string, object?> Metadata { get; } = new(StringComparer.Ordinal);

        public void Visit(object? value, string name, int depth)
        {
            if (depth > MaxDepth) throw new TorchCheckpointException(path, $"containers nested deeper than {MaxDepth} levels (or cyclic)", name);
            Count(name);
            switch (value)
            {
                case TensorRebuild r:
                    Claim(name);
                    Tensors.Add((name, r));
                    return;
                case Hashtable dict:
                    Enter(dict, name);
                    foreach (var (k, v) in Ordered(dict, depth)) Visit(v, Join(name, KeyName(k, name)), depth + 1);
                    _onPath.Remove(dict);
                    return;
                case IList list and (object[] or ArrayList) when FirstTensor(list, depth) != int.MaxValue:
                    Enter(list, name);
                    for (int i = 0; i < list.Count; i++) Visit(list[i], Join(name, i.ToString(CultureInfo.InvariantCulture)), depth + 1);
                    _onPath.Remove(list);
                    return;
                default:
                    Claim(name);
                    Metadata.Add(name, Plain(value, name, depth));
                    return;
            }
        }

        /// <summary>
        /// Entries in the order the pickle wrote their tensors (Razorvine's dicts do not keep it, see
        /// <see cref="PickleOrderedDict"/>); entries without tensors follow, by key. Two names for one memoized
        /// tensor object (tied weights) tie and fall back to key order.
        /// </summary>
        private IEnumerable<KeyValuePair<object, object?>> Ordered(Hashtable dict, int depth) =>
            dict.Cast<DictionaryEntry>()
                .Select(e => (Entry: new KeyValuePair<object, object?>(e.Key, e.Value), First: FirstTensor(e.Value, depth + 1), Key: KeyName(e.Key, "")))
                .OrderBy(x => x.First).ThenBy(x => x.Key, StringComparer.Ordinal)
                .Select(x => x.Entry)
                .ToList();

        /// <summary>Smallest rebuild sequence number in a subtree (int.MaxValue when it holds no tensor).</summary>
        private int FirstTensor(object? value, int depth)
        {
            if (value is TensorRebuild r) return r.Sequence;
            if (value is not (Hashtable or object[] or ArrayList)) return int.MaxValue;
            if (_firstTensor.TryGetValue(value, out int known)) return known;
            if (depth > MaxDepth) throw new TorchCheckpointException(path, $"containers nested deeper than {MaxDepth} levels (or cyclic)");
            _firstTensor[value] = int.MaxValue; // provisional: breaks cycles
            int first = int.MaxValue;
            IEnumerable items = value is Hashtable h ? h.Values : (IEnumerable)value;
            foreach (var item in items) first = Math.Min(first, FirstTensor(item, depth + 1));
            _firstTensor[value] = first;
            return first;
        }

        private object? Plain(object? value, string name, int depth)
        {
            if (depth > MaxDepth) throw new TorchCheckpointException(path, $"containers nested deeper than {MaxDepth} levels (or cyclic)", name);
            Count(name);
            return value switch
            {
                null or bool or string or double or long or byte[] or BigInteger => value,
                int i => (long)i,
                object[] or ArrayList or HashSet<object> => ((IEnumerable)value).Cast<object?>().Select(v => Plain(v, name, depth + 1)).ToList().AsReadOnly(),
                Hashtable h => h.Cast<DictionaryEntry>().ToDictionary(e => KeyName(e.Key, name), e => Plain(e.Value, name, depth + 1), StringComparer.Ordinal).AsReadOnly(),
                StorageRef s => throw new TorchCheckpointException(path, $"bare storage '{s.Key}' outside a tensor is not supported", name),
                Razorvine.Pickle.IObjectConstructor => throw new TorchCheckpointException(path, "value is a bare class or function reference, not data", name),
                _ => throw new TorchCheckpointException(path, $"unexpected unpickled object of type {value.GetType().Name}", name),
            };
        }

        private void Enter(object container, string name)
        {
            if (!_onPath.Add(container)) throw new TorchCheckpointException(path, "container contains itself (cyclic pickle)", name);
        }

        private void Claim(string name)
        {
            if (!_names.Add(name)) throw new TorchCheckpointException(path, "two entries flatten to the same '.'-joined name", name);
        }

        private string KeyName(object key, string at) => key switch
        {
            string s => s,
            int or long or BigInteger => Convert.ToString(key, CultureInfo.InvariantCulture)!,
            bool b => b ? "True" : "False",
            _ => throw new TorchCheckpointException(path, $"dict key of type {key.GetType().Name} cannot name an entry", at.Length > 0 ? at : null),
        };

        private static string Join(string prefix, string key) => prefix.Length == 0 ? key : prefix + "." + key;
    }
}
