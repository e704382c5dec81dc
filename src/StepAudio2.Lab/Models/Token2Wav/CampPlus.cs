using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = StepAudio2.Lab.Tensors.Tensor;
using StepAudio2.Lab.Audio.PromptFeatures;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The CAM++ speaker encoder (docs/model.md §7.4) run from <c>campplus.onnx</c> in ONNX Runtime, as the official
/// <c>token2wav.py</c> does: input 0 float32 [1, T, 80] (Kaldi fbank after CMN) → output 0 float32 [1, 192], the
/// x-vector before the flow's normalisation.
/// </summary>
public sealed class CampPlus : IDisposable
{
    /// <summary>The file name inside the checkpoint's <c>token2wav/</c> folder.</summary>
    public const string FileName = "campplus.onnx";
    /// <summary>Width of the x-vector.</summary>
    public const int EmbeddingSize = 192;

    private readonly OnnxModel _model;

    private CampPlus(OnnxModel model) => _model = model;

    /// <summary>The model file, as given.</summary>
    public string FilePath => _model.FilePath;
    /// <summary>Input names in position order (informative: input 0 is fed).</summary>
    public IReadOnlyList<string> InputNames => _model.InputNames;
    /// <summary>Output names in position order (informative: output 0 is read).</summary>
    public IReadOnlyList<string> OutputNames => _model.OutputNames;

    /// <summary>Opens and signature-checks the CAM++ ONNX file.</summary>
    /// <exception cref="OnnxModelException">The file does not load or its signature differs (file, index, expected vs found named).</exception>
    public static CampPlus Open(string path) => new(OnnxModel.Open(path, "CAM++",
        [(new OnnxTensorSpec("fbank", [TensorElementType.Float], [1, -1, KaldiFbank.MelCount]), ["T"])],
        [(new OnnxTensorSpec("x-vector", [TensorElementType.Float], [1, EmbeddingSize]), [])]));

    /// <summary>X-vector [1, 192] of a 16 kHz waveform in [−1, 1]: Kaldi fbank, CMN, CAM++.</summary>
    public Tensor Embed(ReadOnlySpan<float> wav16k) => Embed(KaldiFbank.CmnFbank(wav16k));

    /// <summary>X-vector [1, 192] of CMN fbank features float32 [T, 80] or [1, T, 80].</summary>
    /// <exception cref="ArgumentException">Wrong layout or no frames.</exception>
    public Tensor Embed(Tensor features)
    {
        ArgumentNullException.ThrowIfNull(features);
        bool batched = features.Rank == 3;
        if (features.DType != DType.F32 || !(features.Rank == 2 || (batched && features.Shape[0] == 1)) || features.Shape[^1] != KaldiFbank.MelCount)
            throw new ArgumentException($"CAM++ takes float32 fbank features [T, 80] or [1, T, 80], got {features}", nameof(features));
        int frames = features.Shape[^2];
        if (frames == 0) throw new ArgumentException("CAM++ needs at least one fbank frame", nameof(features));

        var data = features.Contiguous().ToFloatArray();
        using var input = OrtValue.CreateTensorValueFromMemory(data, [1, frames, KaldiFbank.MelCount]);
        using var outputs = _model.Run(input);
        var output = outputs.First();
        var info = output.GetTensorTypeAndShape();
        if (info.Shape.Length != 2 || info.Shape[0] != 1 || info.Shape[1] != EmbeddingSize)
            throw new OnnxModelException(FilePath, $"CAM++ returned shape [{string.Join(", ", info.Shape)}]; expected [1, {EmbeddingSize}]",
                $"output 0 '{OutputNames[0]}'");
        return Tensor.FromSpan<float>(output.GetTensorDataAsSpan<float>(), DType.F32, 1, EmbeddingSize);
    }

    public void Dispose() => _model.Dispose();
}
