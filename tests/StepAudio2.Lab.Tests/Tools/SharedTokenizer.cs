using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Tests.Tools;

/// <summary>The real tokenizer from the shared model folder, loaded once for all tool tests.</summary>
internal static class SharedTokenizer
{
    private static readonly Lazy<StepAudioTokenizer> s_tokenizer = new(() => StepAudioTokenizer.Load(TestPaths.SharedModel));
    public static StepAudioTokenizer Value => s_tokenizer.Value;
}
