using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using StepAudio2.Lab.IO;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>An ONNX model file is unreadable, or its inputs/outputs do not have the signature the workbench needs.</summary>
public sealed class OnnxModelException(string file, string fault, string? key = null, Exception? inner = null)
    : LabDataException(file, fault, key, null, inner);

/// <summary>
/// The expected type of one positional input or output: allowed element types and the dims (−1 = any length). A model
/// may leave a fixed dim symbolic (ONNX exporters often do for the batch); it may not fix it to another value.
/// </summary>
public sealed record OnnxTensorSpec(string Description, TensorElementType[] ElementTypes, long[] Dims)
{
    /// <summary>E.g. <c>float32 [1, 128, L]</c> from the types and the symbolic names given for dynamic dims.</summary>
    public string Format(string[] dynamicNames)
    {
        int k = 0;
        var dims = Dims.Select(d => d >= 0 ? d.ToString() : k < dynamicNames.Length ? dynamicNames[k++] : "?");
        return $"{string.Join("|", ElementTypes.Select(OnnxModel.TypeName))} [{string.Join(", ", dims)}]";
    }
}

/// <summary>
/// An ONNX Runtime CPU session whose inputs and outputs are taken by position (their names are unconfirmed upstream,
/// docs/model.md §11.1, so they are only reported) and whose signature is checked against the session metadata when it opens.
/// Two intra-op threads, sequential execution, no spinning. CPU kernels with a fixed thread count partition work the
/// same way every run, so results are reproducible (the C API's deterministic-compute switch only matters on GPUs and is
/// not exposed by the managed API).
/// </summary>
public sealed class OnnxModel : IDisposable
{
    private readonly InferenceSession _session;
    private readonly string[] _outputsToFetch;

    private OnnxModel(string path, InferenceSession session, int outputsUsed)
    {
        FilePath = path;
        _session = session;
        InputNames = session.InputNames.ToArray();
        OutputNames = session.OutputNames.ToArray();
        InputTypes = session.InputNames.Select(n => session.InputMetadata[n].ElementDataType).ToArray();
        _outputsToFetch = OutputNames.Take(outputsUsed).ToArray();
    }

    /// <summary>The model file, as given.</summary>
    public string FilePath { get; }
    /// <summary>Input names in position order (informative only).</summary>
    public IReadOnlyList<string> InputNames { get; }
    /// <summary>Output names in position order (informative only).</summary>
    public IReadOnlyList<string> OutputNames { get; }
    /// <summary>Element type of each input, in position order (where the signature allows several).</summary>
    public IReadOnlyList<TensorElementType> InputTypes { get; }

    /// <summary>
    /// Opens <paramref name="path"/> and checks that it has exactly <paramref name="inputs"/>.Length tensor inputs and at
    /// least <paramref name="outputs"/>.Length tensor outputs of the given element types and dims.
    /// </summary>
    /// <exception cref="FileNotFoundException">No such file.</exception>
    /// <exception cref="OnnxModelException">ONNX Runtime cannot load the file, or the signature differs.</exception>
    public static OnnxModel Open(string path, string role, IReadOnlyList<(OnnxTensorSpec Spec, string[] DynamicNames)> inputs,
        IReadOnlyList<(OnnxTensorSpec Spec, string[] DynamicNames)> outputs)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"no such {role} model: {path}", path);
        InferenceSession session;
        using (var options = CreateOptions())
        {
            try
            {
                session = new InferenceSession(path, options);
            }
            catch (OnnxRuntimeException e)
            {
                throw new OnnxModelException(path, $"ONNX Runtime cannot load this {role} model: {FirstLine(e.Message)}", inner: e);
            }
        }
        try
        {
            Check(path, role, "input", session.InputNames, session.InputMetadata, inputs, exactCount: true);
            Check(path, role, "output", session.OutputNames, session.OutputMetadata, outputs, exactCount: false);
            return new OnnxModel(path, session, outputs.Count);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs the model on <paramref name="inputs"/> (by position, the caller keeps ownership) and returns the used outputs
    /// in position order; the caller disposes them.
    /// </summary>
    public IDisposableReadOnlyCollection<OrtValue> Run(params OrtValue[] inputs)
    {
        if (inputs.Length != InputNames.Count)
            throw new ArgumentException($"{FilePath} takes {InputNames.Count} inputs, {inputs.Length} given", nameof(inputs));
        using var runOptions = new RunOptions();
        try
        {
            return _session.Run(runOptions, InputNames.ToArray(), inputs, _outputsToFetch);
        }
        catch (OnnxRuntimeException e)
        {
            throw new OnnxModelException(FilePath, $"inference failed: {FirstLine(e.Message)}", inner: e);
        }
    }

    public void Dispose() => _session.Dispose();

    /// <summary>Session options of every workbench ONNX session: 2 threads, sequential, errors-only logging.</summary>
    internal static SessionOptions CreateOptions()
    {
        var options = new SessionOptions
        {
            IntraOpNumThreads = 2,
            InterOpNumThreads = 1,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            LogSeverityLevel = OrtLoggingLevel.ORT_LOGGING_LEVEL_ERROR,
        };
        // Idle worker threads would otherwise busy-wait between runs, stealing one of the machine's cores.
        options.AddSessionConfigEntry("session.intra_op.allow_spinning", "0");
        return options;
    }

    internal static string TypeName(TensorElementType t) => t switch
    {
        TensorElementType.Float => "float32",
        TensorElementType.Double => "float64",
        TensorElementType.Float16 => "float16",
        TensorElementType.BFloat16 => "bfloat16",
        TensorElementType.Int32 => "int32",
        TensorElementType.Int64 => "int64",
        TensorElementType.Int16 => "int16",
        TensorElementType.Int8 => "int8",
        TensorElementType.UInt8 => "uint8",
        TensorElementType.Bool => "bool",
        _ => t.ToString().ToLowerInvariant(),
    };

    private static void Check(string path, string role, string kind, IReadOnlyList<string> names,
        IReadOnlyDictionary<string, NodeMetadata> metadata, IReadOnlyList<(OnnxTensorSpec Spec, string[] DynamicNames)> expected,
        bool exactCount)
    {
        string wanted = string.Join(", ", expected.Select(e => e.Spec.Format(e.DynamicNames)));
        if (names.Count < expected.Count || (exactCount && names.Count != expected.Count))
            throw new OnnxModelException(path,
                $"{role} model has {names.Count} {kind}s ({string.Join(", ", names.Select((n, i) => $"{i} '{n}' {Describe(metadata[n])}"))}); expected {(exactCount ? "" : "at least ")}{expected.Count}: {wanted}",
                $"{kind}s");
        for (int i = 0; i < expected.Count; i++)
        {
            var (spec, dyn) = expected[i];
            var meta = metadata[names[i]];
            string key = $"{kind} {i} '{names[i]}'";
            string Fail(string what) => $"{role} model {kind} {i} ({spec.Description}) {what}: expected {spec.Format(dyn)}, found {Describe(meta)}";
            if (!meta.IsTensor)
                throw new OnnxModelException(path, Fail("is not a tensor"), key);
            if (!spec.ElementTypes.Contains(meta.ElementDataType))
                throw new OnnxModelException(path, Fail("has the wrong element type"), key);
            var dims = meta.Dimensions;
            if (dims.Length != spec.Dims.Length)
                throw new OnnxModelException(path, Fail($"has rank {dims.Length}, not {spec.Dims.Length}"), key);
            for (int d = 0; d < dims.Length; d++)
                if (spec.Dims[d] >= 0 && dims[d] >= 0 && dims[d] != spec.Dims[d])
                    throw new OnnxModelException(path, Fail($"has dim {d} = {dims[d]}, not {spec.Dims[d]}"), key);
        }
    }

    private static string Describe(NodeMetadata meta)
    {
        if (!meta.IsTensor) return meta.OnnxValueType.ToString();
        var sym = meta.SymbolicDimensions;
        var dims = meta.Dimensions.Select((d, i) => d >= 0 ? d.ToString() : i < sym.Length && !string.IsNullOrEmpty(sym[i]) ? sym[i] : "?");
        return $"{TypeName(meta.ElementDataType)} [{string.Join(", ", dims)}]";
    }

    private static string FirstLine(string s) => s.Split('\n', 2)[0].Trim();
}
