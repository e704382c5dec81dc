namespace StepAudio2.Lab.Generation;

/// <summary>Turns token ids into text (the tokenizer's decode: special tokens kept, invalid UTF-8 as U+FFFD).</summary>
public interface ITokenDecoder
{
    /// <summary>The text of <paramref name="ids"/>, decoded as one sequence.</summary>
    string Decode(IReadOnlyList<int> ids);
}

/// <summary>An <see cref="ITokenDecoder"/> from a delegate, so any tokenizer can be plugged in without a dependency.</summary>
public sealed class DelegateTokenDecoder(Func<IReadOnlyList<int>, string> decode) : ITokenDecoder
{
    private readonly Func<IReadOnlyList<int>, string> _decode = decode ?? throw new ArgumentNullException(nameof(decode));

    public string Decode(IReadOnlyList<int> ids) => _decode(ids);
}
