using System.CommandLine;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Conversations;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab chat --model &lt;dir&gt;</c>: an interactive conversation on standard input. A line of text is a user
/// turn; <c>/audio PATH [text]</c> sends an audio file (with optional text before it); <c>/reset</c> clears the history;
/// <c>/quit</c> or end of input stops. Replies stream as they are generated; the KV cache of the unchanged history is
/// reused between turns, so each turn prefills only its new tokens.
/// </summary>
public static class ChatCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
        var system = new Option<string>("--system") { Description = "system prompt", DefaultValueFactory = _ => StepAudio2Pipeline.DefaultSystemPrompt };
        var maxTokens = new Option<int>("--max-tokens") { Description = "generation limit per reply", DefaultValueFactory = _ => 256 };
        var greedy = new Option<bool>("--greedy") { Description = "greedy decoding instead of the official chat sampling (T 0.7, top-p 0.9, rep 1.05)" };
        var seed = new Option<int?>("--seed") { Description = "seed for sampling" };
        var cmd = new Command("chat", "Chat with Step-Audio 2 (text and audio files), streaming the replies.") { model, tokenizer, system, maxTokens, greedy, seed };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(tokenizer), p.GetValue(system)!, p.GetValue(maxTokens), p.GetValue(greedy), p.GetValue(seed), Console.In, ui));
        return cmd;
    }

    public static int Run(string modelDir, string? tokenizer, string system, int maxTokens, bool greedy, int? seed, TextReader input, CliOutput ui)
    {
        using var pipeline = StepAudio2Pipeline.Load(modelDir, tokenizer);
        var options = (greedy ? SamplingOptions.Greedy : SamplingOptions.Chat) with { MaxNewTokens = maxTokens, Seed = seed };
        var conversation = new Conversation(pipeline.Model, pipeline.Tokenizer, system);
        ui.Error.WriteLine($"loaded {modelDir} in {pipeline.LoadTime.TotalSeconds:F1} s. Type a message, '/audio PATH [text]', '/reset' or '/quit'.");
        while (true)
        {
            if (ui.Interactive) ui.Out.Write("you> ");
            string? line = input.ReadLine();
            if (line is null || line.Trim() == "/quit") break;
            if (line.Trim().Length == 0) continue;
            if (line.Trim() == "/reset")
            {
                conversation = new Conversation(pipeline.Model, pipeline.Tokenizer, system);
                ui.Out.WriteLine("(history cleared)");
                continue;
            }
            ChatMessage user;
            if (line.StartsWith("/audio ", StringComparison.Ordinal))
            {
                var parts = line[7..].Trim().Split(' ', 2);
                var items = new List<ContentItem>();
                if (parts.Length > 1) items.Add(new TextItem(parts[1]));
                items.Add(new AudioItem(AudioInput.Load16k(parts[0]), parts[0]));
                user = ChatMessage.User([.. items]);
            }
            else user = ChatMessage.User(line);

            ui.Out.Write("assistant> ");
            var reply = conversation.Send(user, options, onToken: t => { ui.Out.Write(t.TextDelta); ui.Out.Flush(); });
            ui.Out.WriteLine();
            var g = reply.Generation;
            ui.Error.WriteLine($"  ({g.GeneratedIds.Length} tokens, {g.DecodeTokensPerSecond:F1} tok/s, stop: {g.StopReason}; prefilled {reply.PrefilledTokens} new tokens, reused {reply.ReusedTokens} from the cache)");
        }
        return StepLabCli.Ok;
    }
}
