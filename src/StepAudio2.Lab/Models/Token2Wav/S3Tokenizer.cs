using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The S3 speech tokenizer v2 (25 Hz, 6561 codes; docs/model.md §7.3) run from <c>speech_tokenizer_v2_25hz.onnx</c> in ONNX
/// Runtime, as CosyVoice upstream does: input 0 mel float32 [1, 128, L], input 1 length int32 [1] (int64 accepted),
/// output 0 token ids [1, L₂] (int32 or int64: the upstream dtype is unconfirmed, docs/model.md §11.1). Mirrors the official
/// <c>S3TokenizerV2</c> (whose weights are converted from this file) as a black box.
/// </summary>
public sealed class S3Tokenizer : IDisposable
{
    /// <summary>The file name inside the checkpoint's <c>token2wav/</c> folder.</summary>
    public const string FileName = "speech_tokenizer_v2_25hz.onnx";
    /// <summary>Number of codes: ids are 0..6560 (3⁸ FSQ cells).</summary>
    public const int CodebookSize = 6561;
    /// <summary>Frames of one window of the official long-prompt path (30 s); longer prompts are refused here.</summary>
    public const int MaxFrames = 3000;

    private static readonly TensorElementType[] s_int = [TensorElementType.Int32, TensorElementType.Int64];

    private readonly OnnxModel _model;
    private readonly TensorElementType _lengthType;

    private S3Tokenizer(OnnxModel model, TensorElementType lengthType)
    {
        _model = model;
        _lengthType = lengthType;
    }

    /// <summary>The model file, as given.</summary>
    public string FilePath => _model.FilePath;
    /// <summary>Input names in position order (informative: inputs are fed by position).</summary>
    public IReadOnlyList<string> InputNames => _model.InputNames;
    /// <summary>Output names in position order (informative: output 0 is read).</summary>
    public IReadOnlyList<string> OutputNames => _model.OutputNames;

    /// <summary>Opens and signature-checks the tokenizer ONNX file.</summary>
    /// <exception cref="OnnxModelException">The file does not load or its signature differs (file, index, expected vs found named).</exception>
    public static S3Tokenizer Open(string path)
    {
        var model = OnnxModel.Open(path, "S3 tokenizer",
            [(new OnnxTensorSpec("mel", [TensorElementType.Float], [1, LogMelFrontend.MelCount, -1]), ["L"]),
             (new OnnxTensorSpec("mel length", s_int, [1]), [])],
            [(new OnnxTensorSpec("token ids", s_int, [1, -1]), ["L2"])]);
        return new S3Tokenizer(model, model.InputTypes[1]);
    }

    /// <summary>Tokens for <paramref name="frames"/> mel frames: L₁ = ⌊(L−1)/2⌋+1, L₂ = ⌊(L₁−1)/2⌋+1 (two stride-2 convs).</summary>
    public static int TokenCount(int frames)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(frames);
        int l1 = (frames - 1) / 2 + 1;
        return (l1 - 1) / 2 + 1;
    }

    /// <summary>The S3 log-mel of a 16 kHz waveform (docs/model.md §7.3.1: the LLM recipe without the 479-sample pad) → tokens.</summary>
    public int[] Tokenize(ReadOnlySpan<float> wav16k) => Tokenize(LogMelFrontend.Compute(wav16k, pad479: false));

    /// <summary>
    /// Token ids for a log-mel float32 [128, L] or [1, 128, L]. The length input is <paramref name="validFrames"/>
    /// (default L: every frame valid); the model masks frames beyond it, but still returns L₂(L) ids.
    /// </summary>
    /// <exception cref="ArgumentException">Wrong layout, L = 0, or L &gt; 3000 (prompts over 30 s need the official
    /// windowed path, which this workbench does not implement; cut the prompt).</exception>
    /// <exception cref="OnnxModelException">The model returned a shape or ids that contradict docs/model.md §7.3.</exception>
    public int[] Tokenize(Tensor mel, int? validFrames = null)
    {
        ArgumentNullException.ThrowIfNull(mel);
        bool batched = mel.Rank == 3;
        if (mel.DType != DType.F32 || !(mel.Rank == 2 || (batched && mel.Shape[0] == 1)) || mel.Shape[^2] != LogMelFrontend.MelCount)
            throw new ArgumentException($"the S3 tokenizer takes a float32 mel [128, L] or [1, 128, L], got {mel}", nameof(mel));
        int frames = mel.Shape[^1];
        if (frames == 0) throw new ArgumentException("the S3 tokenizer needs at least one mel frame", nameof(mel));
        if (frames > MaxFrames)
            throw new ArgumentException(
                $"a prompt of {frames} mel frames (> {MaxFrames}, 30 s) needs the official windowed tokenisation, which is not implemented: use a prompt of at most 30 s",
                nameof(mel));

        int valid = validFrames ?? frames;
        if (valid < 1 || valid > frames)
            throw new ArgumentOutOfRangeException(nameof(validFrames), valid, $"valid frames must be within 1..{frames}");

        var data = mel.Contiguous().ToFloatArray();
        using var melValue = OrtValue.CreateTensorValueFromMemory(data, [1, LogMelFrontend.MelCount, frames]);
        using var lengthValue = _lengthType == TensorElementType.Int64
            ? OrtValue.CreateTensorValueFromMemory(new long[] { valid }, [1])
            : OrtValue.CreateTensorValueFromMemory(new int[] { valid }, [1]);
        using var outputs = _model.Run(melValue, lengthValue);
        var ids = outputs.First();
        var info = ids.GetTensorTypeAndShape();
        int expected = TokenCount(frames);
        if (info.Shape.Length != 2 || info.Shape[0] != 1 || info.Shape[1] != expected)
            throw new OnnxModelException(FilePath,
                $"S3 tokenizer returned ids of shape [{string.Join(", ", info.Shape)}] for {frames} frames; expected [1, {expected}]",
                $"output 0 '{OutputNames[0]}'");
        var tokens = new int[expected];
        if (info.ElementDataType == TensorElementType.Int64)
        {
            var src = ids.GetTensorDataAsSpan<long>();
            for (int i = 0; i < tokens.Length; i++) tokens[i] = CheckId(src[i], i);
        }
        else
        {
            var src = ids.GetTensorDataAsSpan<int>();
            for (int i = 0; i < tokens.Length; i++) tokens[i] = CheckId(src[i], i);
        }
        return tokens;
    }

    private int CheckId(long id, int index) => id is >= 0 and < CodebookSize
        ? (int)id
        : throw new OnnxModelException(FilePath, $"S3 tokenizer returned id {id} at position {index}, outside 0..{CodebookSize - 1}", $"output 0 '{OutputNames[0]}'");

    public void Dispose() => _model.Dispose();
}
