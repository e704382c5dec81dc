using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Prompting;

namespace StepAudio2.Lab.Pipeline;

/// <summary>
/// The two-call think protocol of Step-Audio-2-mini-Think (docs/model.md §6.7, official <c>examples-think.py</c>): the turns each
/// call ends with, the stop string of the first call, and the thought cut out of its reply. Shared by
/// <see cref="StepAudio2Pipeline.Think"/> and <see cref="Conversations.Conversation.Think"/>.
/// </summary>
public static class ThinkMode
{
    /// <summary>What the assistant turn is pre-filled with for the thinking call (HF example; vLLM uses <c>&lt;think&gt;</c>).</summary>
    public const string Open = "\n<think>\n";

    /// <summary>The stop string of the thinking call: three ordinary tokens (<c>&lt;/</c>, <c>think</c>, <c>&gt;</c>), not an id.</summary>
    public const string Close = "</think>";

    /// <summary>Call 1's generation prompt: <c>&lt;|BOT|&gt;assistant\n\n&lt;think&gt;\n</c>, no <c>&lt;|EOT|&gt;</c>.</summary>
    public static ChatMessage ThinkPrompt() => new("assistant", Open, null, Eot: false);

    /// <summary>
    /// Call 2's generation prompt: the thought closed and followed by <c>\n\n</c>, then <c>&lt;tts_start&gt;</c> for a
    /// speech reply (nothing for a text reply).
    /// </summary>
    public static ChatMessage AnswerPrompt(string thought, bool speechReply) =>
        new("assistant", Open + thought + Close + "\n\n" + (speechReply ? "<tts_start>" : ""), null, Eot: false);

    /// <summary><paramref name="options"/> with <see cref="Close"/> added to its stop strings (once).</summary>
    public static SamplingOptions WithStop(SamplingOptions options) =>
        options.StopStrings.Contains(Close) ? options : options with { StopStrings = [.. options.StopStrings, Close] };

    /// <summary>
    /// The thought of call 1's decoded reply: the text before <see cref="Close"/>, or all of it when the budget ended the
    /// call first (the official runner then feeds the unfinished thought on as well).
    /// </summary>
    public static string Thought(string reply)
    {
        int end = reply.IndexOf(Close, StringComparison.Ordinal);
        return end >= 0 ? reply[..end] : reply;
    }
}
