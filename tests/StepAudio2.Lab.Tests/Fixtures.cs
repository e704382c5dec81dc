using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests;

/// <summary>Opening reference files in tests.</summary>
internal static class Fixtures
{
    // TEMPORARY stand-ins until the safetensors reader lands.
    public static ITensorSource OpenSafetensors(string path, out IReadOnlyDictionary<string, string> metadata)
    {
        var s = new TmpSource(path);
        s.AddFile(path);
        metadata = s.Meta;
        return s;
    }

    public static ITensorSource OpenCheckpoint(string folder)
    {
        var s = new TmpSource(folder);
        foreach (var f in Directory.GetFiles(folder, "*.safetensors").Order()) s.AddFile(f);
        return s;
    }

    private sealed class TmpSource(string path) : ITensorSource
    {
        private readonly Dictionary<string, Tensor> _t = new();
        private readonly List<TensorInfo> _infos = new();
        public Dictionary<string, string> Meta { get; } = new();
        public string Path => path;
        public IReadOnlyList<TensorInfo> Tensors => _infos;
        public bool Contains(string name) => _t.ContainsKey(name);
        public Tensor Get(string name) => _t[name];
        public void Dispose() { }

        public void AddFile(string file)
        {
            var bytes = File.ReadAllBytes(file);
            long n = BitConverter.ToInt64(bytes, 0);
            using var doc = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
            var entries = new List<(long B, string Name, DType D, int[] S, long E)>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Name == "__metadata__") { foreach (var m in p.Value.EnumerateObject()) Meta[m.Name] = m.Value.GetString()!; continue; }
                DTypeInfo.TryParseSafetensorsName(p.Value.GetProperty("dtype").GetString()!, out var d);
                var shape = p.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()).ToArray();
                var off = p.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                entries.Add((off[0], p.Name, d, shape, off[1]));
            }
            foreach (var e in entries.OrderBy(e => e.B))
            {
                _t[e.Name] = Tensor.FromBytes(bytes.AsSpan((int)(8 + n + e.B), (int)(e.E - e.B)), e.D, e.S);
                _infos.Add(new TensorInfo(e.Name, e.D, e.S, e.E - e.B, file));
            }
        }
    }
}
