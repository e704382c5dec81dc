namespace StepAudio2.Lab.Prompting;

/// <summary>One item of a list content (docs/model.md §6.2): text, audio, or raw token ids.</summary>
public abstract record ContentItem;

/// <summary>Text, tokenised as its own segment.</summary>
public sealed record TextItem(string Text) : ContentItem;

/// <summary>Audio as a 16 kHz mono waveform (see <c>AudioInput.Load16k</c>); chunked at 25 s into audio blocks.</summary>
public sealed record AudioItem(float[] Samples16k, string? Source = null) : ContentItem;

/// <summary>Raw ids appended without tokenisation (e.g. a previous speech reply re-fed into the history).</summary>
public sealed record TokenItem(IReadOnlyList<int> Ids) : ContentItem;

/// <summary>
/// A message of the official <c>StepAudio2</c> runner: a role (<c>user</c> becomes <c>human</c>; others verbatim:
/// <c>system</c>, <c>assistant</c>, <c>tool_json_schemas</c>, <c>input</c>, …), content that is a string, a list of
/// items, or null (a generation prompt), and whether the turn ends with <c>&lt;|EOT|&gt;</c>.
/// </summary>
public sealed record ChatMessage(string Role, string? Text, IReadOnlyList<ContentItem>? Items, bool Eot = true)
{
    public static ChatMessage System(string text) => new("system", text, null);
    public static ChatMessage User(params ContentItem[] items) => new("human", null, items);
    public static ChatMessage User(string text) => new("human", text, null);
    public static ChatMessage Assistant(string text) => new("assistant", text, null);

    /// <summary>The generation prompt for a text reply: <c>&lt;|BOT|&gt;assistant\n</c>.</summary>
    public static ChatMessage AssistantPrompt() => new("assistant", null, null, Eot: false);

    /// <summary>The generation prompt for a speech reply: <c>&lt;|BOT|&gt;assistant\n&lt;tts_start&gt;</c> (docs/model.md §6.2).</summary>
    public static ChatMessage AssistantSpeechPrompt() => new("assistant", "<tts_start>", null, Eot: false);

    /// <summary>
    /// Text of this message is plain text: strings such as <c>&lt;|EOT|&gt;</c> or <c>&lt;audio_5&gt;</c> in it are
    /// tokenised as characters, never as control tokens (so a typed line cannot forge a turn). Off by default, as in
    /// the official runner; <c>steplab chat</c> sets it for what a user types.
    /// </summary>
    public bool PlainText { get; init; }

    /// <summary>Role as rendered: the official runner renames <c>user</c> to <c>human</c>.</summary>
    public string RenderedRole => Role == "user" ? "human" : Role;
}
