using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tracing;

/// <summary>
/// Writes a trace as a reference-dump file (design.md §3): safetensors with metadata <c>steplab.order</c> (the execution
/// order, a JSON array) and <c>steplab.note</c>, or <c>.npz</c> (order = member order) — the files <c>steplab compare</c> reads.
/// </summary>
public static class DumpFile
{
    public const string OrderKey = "steplab.order";
    public const string NoteKey = "steplab.note";

    public static void Save(string path, IEnumerable<(string Name, Tensor Value)> entries, string note = "")
    {
        var list = entries.ToList();
        if (path.EndsWith(".npz", StringComparison.OrdinalIgnoreCase))
        {
            NpzWriter.Write(path, list.Select(e => (e.Name, e.Value.DType == DType.BF16 ? e.Value.To(DType.F32) : e.Value)));
            return;
        }
        var metadata = new Dictionary<string, string>
        {
            [OrderKey] = JsonSerializer.Serialize(list.Select(e => e.Name).ToArray()),
            [NoteKey] = note,
        };
        SafetensorsWriter.Write(path, list.Select(e => new KeyValuePair<string, Tensor>(e.Name, e.Value)), metadata);
    }

    public static void Save(string path, Trace trace, string note = "") => Save(path, trace.Entries, note);

    /// <summary>The execution order stored in a dump's metadata, or null.</summary>
    public static IReadOnlyList<string>? ReadOrder(IReadOnlyDictionary<string, string> metadata, string file = "dump metadata") =>
        metadata.TryGetValue(OrderKey, out var json) ? DumpComparer.ParseOrder(json, file) : null;

    /// <summary>The execution order a dump carries (safetensors metadata <c>steplab.order</c>), or null for other formats.</summary>
    public static IReadOnlyList<string>? ExecutionOrder(ITensorSource dump) =>
        dump is SafetensorsFile sf ? ReadOrder(sf.Metadata, sf.Path) : null;
}
