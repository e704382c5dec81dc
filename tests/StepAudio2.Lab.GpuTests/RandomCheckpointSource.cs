using System.Text.Json;
using StepAudio2.Lab.Bench;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.GpuTests;

/// <summary>
/// The full-size Step-Audio 2 mini checkpoint with random weights, made in memory instead of read from 16.6 GB of
/// shards: every key of the real index (<c>model.safetensors.index.json</c>) at its real shape
/// (<see cref="RandomCheckpoint.ShapeOf"/>), bf16 values from <see cref="RandomCheckpoint.RandomBf16"/> (the same numbers
/// <c>StepAudio2.Lab.Bench make-checkpoint</c> writes). With a quantization plan (<see cref="CheckpointQuantizer.Plan"/>,
/// e.g. the <c>decoder-head8</c> recipe at 4 bits) the planned modules come in MLX's affine layout instead — packed u32
/// <c>.weight</c> with random codes, bf16 <c>.scales</c>/<c>.biases</c> — so the model loads them through the same
/// <c>Weights.GetQuantized</c> path as a converted checkpoint. For benchmarks on the GPU machine (timing only).
/// </summary>
public sealed class RandomCheckpointSource : ITensorSource
{
    private readonly Dictionary<string, TensorInfo> _infos = new(StringComparer.Ordinal);
    private readonly List<TensorInfo> _list = [];
    private readonly Dictionary<string, QuantizationSpec> _quantized;

    public RandomCheckpointSource(string modelDir, QuantizeOptions? quantize = null)
    {
        Path = modelDir;
        var config = StepAudio2Config.Load(modelDir);
        using var index = JsonDocument.Parse(File.ReadAllText(System.IO.Path.Combine(modelDir, "model.safetensors.index.json")));
        foreach (var p in index.RootElement.GetProperty("weight_map").EnumerateObject().OrderBy(p => p.Name, StringComparer.Ordinal))
            Add(p.Name, DType.BF16, RandomCheckpoint.ShapeOf(p.Name, config));
        _quantized = new(StringComparer.Ordinal);
        Config = config;
        if (quantize is null) return;
        var (modules, qconfig, _) = CheckpointQuantizer.Plan(this, quantize);
        foreach (var (path, spec) in modules)
        {
            var shape = _infos[path + ".weight"].Shape;
            int o = shape[0], i = shape[1];
            _list.Remove(_infos[path + ".weight"]);
            Add(path + ".weight", DType.U32, QuantizedWeight.PackedShape(o, i, spec.Bits));
            Add(path + ".scales", DType.BF16, [o, i / spec.GroupSize]);
            Add(path + ".biases", DType.BF16, [o, i / spec.GroupSize]);
            _quantized[path + ".weight"] = spec;
        }
        Config = config with { Quantization = qconfig };
    }

    /// <summary>The real config.json, with the quantization of the plan when there is one.</summary>
    public StepAudio2Config Config { get; }

    public string Path { get; }
    public IReadOnlyList<TensorInfo> Tensors => _list;
    public bool Contains(string name) => _infos.ContainsKey(name);

    private void Add(string name, DType dtype, int[] shape)
    {
        var info = new TensorInfo(name, dtype, shape, Tensor.CountElements(shape) * dtype.SizeOf(), "random:" + name);
        _infos[name] = info;
        _list.Add(info);
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Tensor> _made = new(StringComparer.Ordinal);

    /// <summary>Makes every tensor now, on all cores (16.6 GB of values take ~1 s instead of ~15 s on one thread);
    /// <see cref="Get"/> then hands each out once.</summary>
    public void MakeAll() => Parallel.ForEach(_list, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount },
        info => _made[info.Name] = Make(info.Name));

    public Tensor Get(string name) => _made.TryRemove(name, out var t) ? t : Make(name);

    private Tensor Make(string name)
    {
        if (!_infos.TryGetValue(name, out var info)) throw new LabDataException(Path, "random checkpoint: no such tensor", name);
        long count = info.ElementCount;
        if (count > int.MaxValue) throw new LabDataException(Path, $"random checkpoint: {count} elements, more than one array holds", name);
        if (info.DType == DType.U32)
        {
            // random 4/8-bit codes: every bit pattern of the packed words is a valid code
            var words = new uint[count];
            new RandomCheckpoint.RandomBf16(name, info.Shape).Fill(System.Runtime.InteropServices.MemoryMarshal.Cast<uint, ushort>(words.AsSpan()));
            return Tensor.FromArray(words, info.Shape);
        }
        var bits = new ushort[count];
        if (name.EndsWith(".scales", StringComparison.Ordinal) || name.EndsWith(".biases", StringComparison.Ordinal))
        {
            // dequantised weights ≈ s·q + b spread like the bf16 ones: s = 2⁻¹⁰ … (2^bits − 1)·s ≈ the bf16 range, b = −that/2
            var spec = _quantized[name[..name.LastIndexOf('.')] + ".weight"];
            float s = 1f / 1024 * 15 / ((1 << spec.Bits) - 1);
            float v = name.EndsWith(".scales", StringComparison.Ordinal) ? s : -s * ((1 << spec.Bits) - 1) / 2;
            Array.Fill(bits, (ushort)(BitConverter.SingleToUInt32Bits(v) >> 16));
        }
        else new RandomCheckpoint.RandomBf16(name, info.Shape).Fill(bits);
        return Tensor.FromBFloat16Bits(bits, info.Shape);
    }

    public void Dispose() { }
}
