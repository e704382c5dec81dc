using System.CommandLine;
using StepAudio2.Lab.Quantization;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab quantize --model &lt;dir&gt; --bits 4|8 [--group-size 64] [--recipe decoder|decoder-head8|FILE.json] --out &lt;dir&gt;</c>:
/// writes the checkpoint in MLX's affine quantized layout (<see cref="CheckpointQuantizer"/>), then re-loads it.
/// Exit 0 when written and re-loaded, 1 when the written folder does not re-load, 2 on bad input.
/// </summary>
public static class QuantizeCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder (bf16/f32 safetensors)", Required = true };
        var bits = new Option<int>("--bits") { Description = "bits per weight: 4 or 8 (2, 3, 5, 6 also written, slower kernels)", Required = true };
        var groupSize = new Option<int>("--group-size") { Description = "elements per scale/bias group: 32, 64 or 128", DefaultValueFactory = _ => 64 };
        var recipe = new Option<string>("--recipe")
        {
            Description = "decoder (the LLM decoder's linear layers), decoder-head8 (plus embed_tokens and lm_head at 8 bits), or a JSON file of per-module {\"bits\", \"group_size\"} | false",
            DefaultValueFactory = _ => "decoder",
        };
        var output = new Option<string>("--out") { Description = "output folder (absent or empty)", Required = true };
        var cmd = new Command("quantize", "Quantize a checkpoint into MLX's affine format (packed u32 + scales + biases).") { model, bits, groupSize, recipe, output };
        cmd.SetAction(p => Run(p.GetValue(model)!, new QuantizeOptions(p.GetValue(bits), p.GetValue(groupSize), p.GetValue(recipe)!), p.GetValue(output)!, ui));
        return cmd;
    }

    public static int Run(string modelDir, QuantizeOptions options, string outDir, CliOutput ui)
    {
        QuantizeResult r;
        try
        {
            r = ui.WithProgress("quantize", progress => CheckpointQuantizer.Run(modelDir, outDir, options, progress));
        }
        catch (InvalidDataException e)
        {
            ui.Error.WriteLine($"steplab: {e.Message}");
            return StepLabCli.Failed;
        }
        ui.Out.WriteLine($"quantized {r.QuantizedModules} modules to {options.Bits} bits, group {options.GroupSize} (recipe {options.Recipe})" +
            (r.SkippedModules > 0 ? $"; {r.SkippedModules} left float (input width not a multiple of {options.GroupSize})" : ""));
        ui.Out.WriteLine($"{r.SourceBytes / 1e6:F1} MB → {r.OutputBytes / 1e6:F1} MB in {r.Shards} shard(s); copied {r.CopiedFiles.Count} other file(s)");
        ui.Out.WriteLine($"re-loaded {outDir}: ok");
        return StepLabCli.Ok;
    }
}
