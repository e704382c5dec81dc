using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Quantization;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Interactive;

/// <summary>Quantized checkpoints against the float one, for notebook 10 (the same steps as <c>steplab quantize</c>,
/// <c>steplab trace</c> and <c>steplab compare --quantization</c>).</summary>
public static partial class Lab
{
    /// <summary>The system prompt <c>steplab trace</c> uses by default.</summary>
    public const string DefaultSystemPrompt = "You are a helpful assistant.";

    /// <summary>
    /// Quantizes <paramref name="modelDir"/> like <c>steplab quantize</c> into <paramref name="outDir"/> (default: a new
    /// temporary folder) and returns that folder.
    /// </summary>
    public static string Quantize(string modelDir, int bits, int groupSize = 64, string recipe = "decoder", string? outDir = null)
    {
        outDir ??= Path.Combine(Directory.CreateTempSubdirectory("steplab-quant-").FullName, $"int{bits}");
        CheckpointQuantizer.Run(modelDir, outDir, new QuantizeOptions(bits, groupSize, recipe));
        return outDir;
    }

    /// <summary>
    /// The official prompt on one clip through a checkpoint, traced like <c>steplab trace --model … --greedy N --capture …</c>:
    /// the captured paths (default every decoder layer, the final norm and the full logits <c>lm_head</c>), the inputs and
    /// <c>output.greedy_ids</c> (greedy without stop tokens).
    /// </summary>
    public static Trace PromptTrace(string checkpointDir, string audioPath, int greedy = 8, string? tokenizerDir = null,
        IReadOnlyList<string>? capture = null, string system = DefaultSystemPrompt)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(greedy);
        capture ??= ["model.layers.*", "model.norm", "lm_head"];
        var trace = new Trace([.. capture, "input.*", "output.*"]);
        using var pipeline = StepAudio2Pipeline.Load(checkpointDir, tokenizerDir);
        var options = SamplingOptions.Greedy with { MaxNewTokens = Math.Max(greedy, 1), StopTokenIds = [] };
        var reply = pipeline.Chat([ChatMessage.System(system), ChatMessage.User(new AudioItem(AudioInput.Load16k(audioPath), audioPath)), ChatMessage.AssistantPrompt()], options, trace);
        var ids = reply.Generation.GeneratedIds.Take(greedy).Select(i => (long)i).ToArray();
        if (greedy > 0) trace.Record(QuantizationReport.GreedyPath, Tensor.FromArray(ids, ids.Length));
        return trace;
    }

    /// <summary>A quantized checkpoint's trace against the float checkpoint's, in the reference's execution order.</summary>
    public static QuantizationComparison CompareQuantization(Trace candidate, Trace reference)
    {
        using var c = candidate.ToTensorSource();
        using var r = reference.ToTensorSource();
        return QuantizationReport.Compare(c, r, reference.Order);
    }

    /// <summary>Two dump files (e.g. from <c>steplab trace</c>), as <c>steplab compare --quantization</c> reads them.</summary>
    public static QuantizationComparison CompareQuantization(string candidateDump, string referenceDump)
    {
        using var c = TensorFiles.Open(candidateDump);
        using var r = TensorFiles.Open(referenceDump);
        return QuantizationReport.Compare(c, r);
    }

    /// <summary>Several quantized checkpoints against the same reference, drawn on shared charts.</summary>
    public static QuantizationSet Quantization(params (string Label, QuantizationComparison Comparison)[] runs) => new(runs);
}
