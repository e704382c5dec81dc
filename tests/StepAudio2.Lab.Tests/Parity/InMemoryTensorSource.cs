using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

/// <summary>An <see cref="ITensorSource"/> over a dictionary, for parity tests that need no file format.</summary>
internal sealed class InMemoryTensorSource : ITensorSource
{
    private readonly List<(string Name, Tensor Tensor)> _tensors = [];
    private readonly HashSet<string> _unreadable = [];

    public InMemoryTensorSource(string path = "memory") => Path = path;

    public string Path { get; }

    public IReadOnlyList<TensorInfo> Tensors =>
        _tensors.Select(t => new TensorInfo(t.Name, t.Tensor.DType, t.Tensor.Shape, t.Tensor.ByteCount, Path)).ToList();

    /// <summary>Adds a tensor (file order = insertion order).</summary>
    public InMemoryTensorSource Add(string name, Tensor tensor)
    {
        _tensors.Add((name, tensor));
        return this;
    }

    /// <summary>Lists the name but makes <see cref="Get"/> fail as a corrupt file would.</summary>
    public InMemoryTensorSource AddUnreadable(string name, Tensor header)
    {
        _unreadable.Add(name);
        return Add(name, header);
    }

    public bool Contains(string name) => _tensors.Any(t => t.Name == name);

    public Tensor Get(string name)
    {
        if (_unreadable.Contains(name)) throw new SafetensorsFormatException(Path, "data offsets out of range", name, 8);
        foreach (var t in _tensors)
            if (t.Name == name) return t.Tensor;
        throw new LabDataException(Path, "no such tensor", name);
    }

    public void Dispose() { }
}

/// <summary>Deterministic test data.</summary>
internal static class TestData
{
    /// <summary>Standard normal float32 values (Box–Muller on a seeded <see cref="Random"/>).</summary>
    public static float[] Randn(int seed, int count, double scale = 1.0)
    {
        var rng = new Random(seed);
        var v = new float[count];
        for (int i = 0; i < count; i++)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            v[i] = (float)(scale * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return v;
    }

    public static Tensor RandnTensor(int seed, params int[] shape) =>
        Tensor.FromArray(Randn(seed, (int)Tensor.CountElements(shape)), shape);

    /// <summary>Element-wise f(x) of a tensor's values, as a new f32 tensor of the same shape.</summary>
    public static Tensor Map(Tensor t, Func<float, float> f) =>
        Tensor.FromArray(t.ToFloatArray().Select(f).ToArray(), t.Shape);

    /// <summary>Element-wise f(x, i) with the flat index.</summary>
    public static Tensor Map(Tensor t, Func<float, int, float> f) =>
        Tensor.FromArray(t.ToFloatArray().Select(f).ToArray(), t.Shape);

    /// <summary>a + scale·noise, same shape.</summary>
    public static Tensor AddNoise(Tensor t, int seed, double scale)
    {
        var noise = Randn(seed, (int)t.ElementCount, scale);
        return Map(t, (x, i) => x + noise[i]);
    }
}
