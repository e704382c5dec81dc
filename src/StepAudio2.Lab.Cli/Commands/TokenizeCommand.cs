using System.CommandLine;
using System.Text.Json;
using StepAudio2.Lab.Text;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary><c>steplab tokenize --model &lt;dir&gt; &lt;text&gt; [--json]</c>: the ids of a text (no BOS), with each token.</summary>
public static class TokenizeCommand
{
    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "folder with vocab.json, merges.txt, tokenizer_config.json", Required = true };
        var text = new Argument<string>("text") { Description = "text to encode (special-token strings such as <|BOT|> become single ids)" };
        var json = new Option<bool>("--json") { Description = "machine-readable output" };
        var cmd = new Command("tokenize", "Encode text with the Step-Audio 2 tokenizer and print the ids.") { model, text, json };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(text)!, p.GetValue(json), ui));
        return cmd;
    }

    public static int Run(string model, string text, bool json, CliOutput ui)
    {
        var tok = StepAudioTokenizer.Load(model);
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
