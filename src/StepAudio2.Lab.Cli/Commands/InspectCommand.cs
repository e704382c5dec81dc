using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab inspect &lt;dir|file&gt; [--json]</c>: every tensor (name, dtype, shape, bytes) with totals; for a sharded
/// checkpoint also the index checked against its shards. Exit 0 when complete, 1 when the index names missing shards or
/// tensors (or sizes disagree), 2 when a file is unreadable.
/// </summary>
public static class InspectCommand
{
    public static Command Create(CliOutput ui)
    {
        var path = new Argument<string>("path") { Description = "checkpoint folder, model.safetensors.index.json, .safetensors, .npz, .npy or torch .pt/.bin" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cmd = new Command("inspect", "List every tensor of a checkpoint or dump, with totals, and check an index against its shards.") { path, json };
        cmd.SetAction(p => Run(p.GetValue(path)!, p.GetValue(json), ui));
        return cmd;
    }

    public static int Run(string path, bool json, CliOutput ui)
    {
        string format = TensorFiles.DetectFormat(path);
        using var source = TensorFiles.Open(path);
        var tensors = source.Tensors;
        var resolved = tensors.Where(t => t.IsResolved).ToList();
        long totalBytes = resolved.Sum(t => t.ByteLength);
        var byDtype = resolved.GroupBy(t => t.DType).OrderBy(g => g.Key)
            .Select(g => (DType: g.Key, Count: g.Count(), Elements: g.Sum(t => t.ElementCount), Bytes: g.Sum(t => t.ByteLength))).ToList();
        CheckpointReport? report = source is ShardedCheckpoint sc ? sc.Verify() : null;
        bool complete = report?.IsComplete ?? true;

        if (json)
        {
            var root = new JsonObject
            {
                ["path"] = source.Path,
                ["format"] = format,
                ["tensor_count"] = tensors.Count,
                ["resolved_count"] = resolved.Count,
                ["total_bytes"] = totalBytes,
                ["by_dtype"] = new JsonArray(byDtype.Select(d => (JsonNode)new JsonObject
                {
                    ["dtype"] = d.DType.ShortName(), ["tensors"] = d.Count, ["elements"] = d.Elements, ["bytes"] = d.Bytes,
                }).ToArray()),
                ["tensors"] = new JsonArray(tensors.Select(t => (JsonNode)new JsonObject
                {
                    ["name"] = t.Name,
                    ["dtype"] = t.IsResolved ? t.DType.ShortName() : null,
                    ["shape"] = t.IsResolved ? new JsonArray(t.Shape.Select(d => (JsonNode)d).ToArray()) : null,
                    ["bytes"] = t.IsResolved ? t.ByteLength : null,
                    ["file"] = Path.GetFileName(t.File),
                }).ToArray()),
                ["complete"] = complete,
            };
            if (report is not null)
            {
                root["index"] = new JsonObject
                {
                    ["index_path"] = report.IndexPath,
                    ["declared_total_size"] = report.DeclaredTotalSize,
                    ["computed_total_size"] = report.ComputedTotalSize,
                    ["missing_shards"] = new JsonArray(report.MissingShards.Select(m => (JsonNode)new JsonObject
                    {
                        ["shard"] = m.Shard, ["tensors"] = m.Tensors.Count,
                    }).ToArray()),
                    ["not_in_shard"] = new JsonArray(report.NotInShard.Select(e => (JsonNode)e.Name).ToArray()),
                    ["not_in_index"] = new JsonArray(report.NotInIndex.Select(e => (JsonNode)e.Name).ToArray()),
                };
            }
            ui.Out.WriteLine(root.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            return complete ? StepLabCli.Ok : StepLabCli.Failed;
        }

        var o = ui.Out;
        o.WriteLine($"{source.Path} ({format}): {tensors.Count} tensors");
        bool showFile = tensors.Select(t => t.File).Distinct().Count() > 1;
        int nameWidth = Math.Min(64, tensors.Count == 0 ? 4 : tensors.Max(t => t.Name.Length));
        foreach (var t in tensors)
        {
            string name = Printable.Escape(t.Name); // names come from the file: a line feed would forge a row
            string dtype = t.IsResolved ? t.DType.ShortName() : "?";
            string shape = t.IsResolved ? Tensor.ShapeString(t.Shape) : "?";
            string bytes = t.IsResolved ? FormatBytes(t.ByteLength) : "(shard missing)";
            o.WriteLine($"  {name.PadRight(nameWidth)}  {dtype,-5} {shape,-22} {bytes,12}{(showFile ? "  " + Path.GetFileName(t.File) : "")}");
        }
        o.WriteLine($"total: {resolved.Count} tensors resolved, {FormatBytes(totalBytes)}");
        foreach (var d in byDtype) o.WriteLine($"  {d.DType.ShortName(),-5} {d.Count,6} tensors {d.Elements,16:N0} elements {FormatBytes(d.Bytes),12}");
        if (report is not null)
        {
            o.WriteLine($"index: {report.IndexPath}");
            if (report.DeclaredTotalSize is long declared)
                o.WriteLine($"  total_size {declared:N0} bytes declared{(report.ComputedTotalSize is long c ? $", {c:N0} found" : "")}{(report.TotalSizeMatches == false ? "  MISMATCH" : "")}");
            foreach (var m in report.MissingShards) o.WriteLine($"  missing shard: {Printable.Escape(m.Shard)} ({m.Tensors.Count} tensors)");
            foreach (var e in report.NotInShard) o.WriteLine($"  in index but not in {Printable.Escape(e.Shard)}: {Printable.Escape(e.Name)}");
            foreach (var e in report.NotInIndex) o.WriteLine($"  in {Printable.Escape(Path.GetFileName(e.File))} but not in the index: {Printable.Escape(e.Name)}");
            o.WriteLine(complete ? "  index and shards agree" : "  checkpoint is INCOMPLETE");
        }
        return complete ? StepLabCli.Ok : StepLabCli.Failed;
    }

    internal static string FormatBytes(long bytes) => bytes switch
    {
        >= 1L << 30 => $"{bytes / (double)(1L << 30):F2} GiB",
        >= 1L << 20 => $"{bytes / (double)(1L << 20):F2} MiB",
        >= 1L << 10 => $"{bytes / 1024.0:F1} KiB",
        _ => $"{bytes} B",
    };
}
