using Microsoft.ML.Tokenizers;

namespace StepAudio2.Lab.Text;

/// <summary>Unicode NFC as HF tokenizers applies it (see <see cref="UnicodeTables"/>), as a Microsoft.ML.Tokenizers normaliser.</summary>
internal sealed class NfcNormalizer : Normalizer
{
    public static NfcNormalizer Instance { get; } = new();

    public override string Normalize(string original) => UnicodeTables.Nfc(original);

    public override string Normalize(ReadOnlySpan<char> original) => UnicodeTables.Nfc(original);
}
