using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab tokenize --model &lt;dir&gt; [--tokenizer DIR] &lt;text&gt; [--json]</c>: the ids of a text (no BOS), with each
/// token. The tokenizer files come from <c>--tokenizer</c>, else from the model folder, as in every other model command.
/// </summary>
public static class TokenizeCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string?>("--model") { Description = "model folder (its vocab.json, merges.txt, tokenizer_config.json are used unless --tokenizer is given)" };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with vocab.json, merges.txt, tokenizer_config.json (default: the model folder)" };
        var text = new Argument<string>("text") { Description = "text to encode (special-token strings such as <|BOT|> become single ids)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cmd = new Command("tokenize", "Encode text with the Step-Audio 2 tokenizer and print the ids.") { model, tokenizer, text, json };
        cmd.SetAction(p => Run(p.GetValue(tokenizer) ?? p.GetValue(model) ?? throw new ArgumentException("tokenize needs --model <dir> or --tokenizer <dir>"),
            p.GetValue(text)!, p.GetValue(json), ui));
        return cmd;
    }

    /// <summary>Encodes <paramref name="text"/> with the tokenizer files of <paramref name="tokenizerDir"/>.</summary>
    public static int Run(string tokenizerDir, string text, bool json, CliOutput ui)
    {
        var tok = StepAudioTokenizer.Load(tokenizerDir);
        var ids = tok.Encode(text);
        if (json)
        {
            ui.Out.WriteLine(JsonSerializer.Serialize(new
            {
                text,
                ids,
                tokens = ids.Select(tok.IdToToken).ToArray(),
                decoded = tok.Decode(ids),
            }, new JsonSerializerOptions { WriteIndented = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
        }
        else
        {
            ui.Out.WriteLine(string.Join(" ", ids));
            ui.Out.WriteLine(string.Join(" ", ids.Select(i => $"{i}:{tok.IdToToken(i)}")));
        }
        return StepLabCli.Ok;
    }
}
