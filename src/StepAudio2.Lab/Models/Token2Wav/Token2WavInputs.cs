using StepAudio2.Lab.IO;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// The <c>input.*</c> tensors of a token2wav reference dump (issue 6, design §3): <c>input.codes</c> [N],
/// <c>input.prompt_tokens</c> [P], <c>input.xvector</c> [1, 192], <c>input.prompt_mel</c> [1, 2P, 80], <c>input.noise</c>
/// [1, 80, 2(P+N)], <c>input.hift_noise</c> [1, 480·2N, 9]. Any may be absent (null); floats are copied to managed
/// float32, so the result outlives the file.
/// </summary>
public sealed record Token2WavInputs(int[]? Codes, int[]? PromptTokens, Tensor? Xvector, Tensor? PromptMel, Tensor? Noise, Tensor? HiftNoise)
{
    public const string CodesKey = "input.codes";
    public const string PromptTokensKey = "input.prompt_tokens";
    public const string XvectorKey = "input.xvector";
    public const string PromptMelKey = "input.prompt_mel";
    public const string NoiseKey = "input.noise";
    public const string HiftNoiseKey = "input.hift_noise";

    /// <summary>Reads whichever inputs <paramref name="dump"/> holds; a present one of the wrong dtype or rank is a <see cref="LabDataException"/>.</summary>
    public static Token2WavInputs Read(ITensorSource dump)
    {
        ArgumentNullException.ThrowIfNull(dump);
        return new Token2WavInputs(
            Ints(dump, CodesKey, SpeechCodes.CodebookSize),
            Ints(dump, PromptTokensKey, SpeechCodes.CodebookSize),
            Floats(dump, XvectorKey, 2),
            Floats(dump, PromptMelKey, 3),
            Floats(dump, NoiseKey, 3),
            Floats(dump, HiftNoiseKey, 3));
    }

    private static int[]? Ints(ITensorSource dump, string key, int limit)
    {
        if (!dump.Contains(key)) return null;
        var t = dump.Get(key);
        if (t.DType.IsFloating() || t.DType == DType.Bool || t.Rank != 1)
            throw new LabDataException(dump.Path, $"expected a 1-D integer tensor, found {t.DType.ShortName()} {Tensor.ShapeString(t.Shape)}", key);
        var v = t.ToInt64Array();
        var r = new int[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            if (v[i] is < 0 || v[i] >= limit) throw new LabDataException(dump.Path, $"value {v[i]} at position {i} is outside 0..{limit - 1}", key);
            r[i] = (int)v[i];
        }
        return r;
    }

    private static Tensor? Floats(ITensorSource dump, string key, int rank)
    {
        if (!dump.Contains(key)) return null;
        var t = dump.Get(key);
        if (!t.DType.IsFloating() || t.Rank != rank)
            throw new LabDataException(dump.Path, $"expected a float tensor of rank {rank}, found {t.DType.ShortName()} {Tensor.ShapeString(t.Shape)}", key);
        return Tensor.FromArray(t.ToFloatArray(), t.Shape.ToArray());
    }
}
