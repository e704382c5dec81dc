using System.CommandLine;
using System.Text;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Cli.Commands;

/// <summary>
/// <c>steplab report --model &lt;dir&gt; --audio &lt;file&gt; [--tokenizer DIR] [--reference &lt;dump&gt;] [--max-tokens N] --out report.html</c>:
/// runs the default chat prompt (system "You are a helpful assistant.", human turn = the audio, assistant generation
/// prompt) with a full trace and greedy decoding, and writes one self-contained offline HTML page: waveform and player,
/// log-mel, encoder attention, token stream, trace explorer and, with <c>--reference</c>, the parity report.
/// Exit 1 when the reference comparison fails (the page is still written).
/// </summary>
public static class ReportCommand
{

    public static Command Create(CliOutput ui)
    {
        var model = new Option<string>("--model") { Description = "checkpoint folder (config.json + safetensors)", Required = true };
        var audio = new Option<string>("--audio") { Description = "audio file of the human turn", Required = true };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "folder with the tokenizer files (default: the model folder)" };
        var reference = new Option<string?>("--reference") { Description = "reference dump to compare the trace against (default prompt, no instruction)" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "greedy tokens to generate", DefaultValueFactory = _ => 16 };
        var output = new Option<string>("--out") { Description = "output .html", Required = true };
        var cmd = new Command("report", "Run a checkpoint on audio and write a self-contained offline HTML report (plots, tokens, trace, parity).")
        {
            model, audio, tokenizer, reference, maxTokens, output,
        };
        cmd.SetAction(p => Run(new ReportRequest(p.GetValue(model)!, p.GetValue(audio)!, p.GetValue(tokenizer), p.GetValue(reference),
            p.GetValue(maxTokens), p.GetValue(output)!), ui));
        return cmd;
    }

    public sealed record ReportRequest(string Model, string Audio, string? Tokenizer, string? Reference, int MaxTokens, string Output, int TopK = 5);

    public static int Run(ReportRequest r, CliOutput ui)
    {
        if (r.MaxTokens < 1) throw new ArgumentException("--max-tokens must be at least 1");
        if (r.Reference is not null && !File.Exists(r.Reference)) throw new FileNotFoundException($"reference dump not found: {r.Reference}", r.Reference);
        string plotly = PlotlyScript.ReadFromAssembly(PlotlyAssemblyPath());

        using var pipeline = StepAudio2Pipeline.Load(r.Model, r.Tokenizer);
        var m = pipeline.Model;
        var tok = pipeline.Tokenizer;
        var wav = AudioInput.Load16k(r.Audio);
        // the same traced forward as `steplab trace`, so the trace is a dump the reference compares against
        var trace = new Trace();
        var options = SamplingOptions.Greedy with { MaxNewTokens = r.MaxTokens, RecordAlternatives = true, AlternativesCount = r.TopK };
        var reply = pipeline.Chat([ChatMessage.System(StepAudio2Pipeline.DefaultSystemPrompt),
            ChatMessage.User(new AudioItem(wav, r.Audio)), ChatMessage.AssistantPrompt()], options, trace);
        var prompt = reply.Prompt;
        var generated = reply.Generation.GeneratedIds.ToList();
        var alternatives = reply.Generation.Alternatives?.ToList() ?? [];

        DumpComparison? comparison = null;
        string paritySection = "";
        if (r.Reference is not null)
            (comparison, paritySection) = CompareWithReference(trace, generated, r.Reference);
        else
            trace.Record("output.greedy_ids", Tensor.FromArray(generated.Select(g => (long)g).ToArray(), generated.Count));

        var sections = BuildSections(r, wav, prompt.Audio!, trace, tok, prompt.Ids, generated, alternatives);
        if (comparison is not null) sections.Add(new ReportSection("parity", "Parity against the reference", paritySection));
        var html = ReportPage.Render($"steplab report: {Path.GetFileName(r.Audio)} through {Path.GetFileName(Path.GetFullPath(r.Model).TrimEnd('/'))}", sections, plotly);
        AtomicFile.Write(r.Output, s => { using var w = new StreamWriter(s, new UTF8Encoding(false), leaveOpen: true); w.Write(html); });

        ui.Out.WriteLine($"prompt {prompt.Ids.Length} ids, {generated.Count} generated: {tok.Decode(generated.Where(g => g < StepAudioTokenizer.AudioStart && g != StepAudioTokenizer.Eot).ToArray())}");
        ui.Out.WriteLine($"{trace.Count} activations; report written to {r.Output} ({html.Length / 1024} KiB)");
        if (comparison is null) return StepLabCli.Ok;
        ui.Out.WriteLine(comparison.AllPassed
            ? $"parity PASS: {comparison.Compared} compared"
            : $"parity FAIL: {comparison.Failed} failing, first {comparison.FirstFailure!.Name}");
        return comparison.AllPassed ? StepLabCli.Ok : StepLabCli.Failed;
    }

    /// <summary>Plotly.NET.dll beside the application (NuGet copies it there); only its resource bytes are read.</summary>
    private static string PlotlyAssemblyPath()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "Plotly.NET.dll");
        if (!File.Exists(path)) throw new FileNotFoundException($"Plotly.NET.dll (plotly.js source for the report) not found beside the application in {AppContext.BaseDirectory}", path);
        return path;
    }

    private static (DumpComparison, string) CompareWithReference(Trace trace, List<int> generated, string referencePath)
    {
        using var reference = TensorFiles.Open(referencePath);
        // a reference records a fixed number of greedy ids: compare as many as it holds (fewer generated ones still fail on shape)
        int keep = generated.Count;
        if (reference.Contains("output.greedy_ids"))
            keep = Math.Min(keep, reference.Tensors.First(t => t.Name == "output.greedy_ids").Shape.Aggregate(1, (a, b) => a * b));
        trace.Record("output.greedy_ids", Tensor.FromArray(generated.Take(keep).Select(g => (long)g).ToArray(), keep));
        using var candidate = trace.ToTensorSource();
        // the same default rules as `steplab compare`: port for float32, the documented floors of known paths
        var comparison = DumpComparer.Compare(candidate, reference, new CompareOptions { ExecutionOrder = DumpFile.ExecutionOrder(reference) });
        var body = new StringBuilder();
        body.Append($"<p>Default rules of <code>steplab compare</code> (docs/parity.md). <code>output.greedy_ids</code>: the first {keep} generated ids.</p>\n");
        body.Append(ParityView.Render(comparison));
        var fig = ParityView.FirstFailureHeatmap(comparison, candidate, reference);
        if (fig is not null) body.Append(fig.ToHtml(420));
        return (comparison, body.ToString());
    }

    private static List<ReportSection> BuildSections(ReportRequest r, float[] wav, PreparedAudio audio, Trace trace, StepAudioTokenizer tok,
        int[] promptIds, List<int> generated, List<StepAlternatives> alternatives)
    {
        var sections = new List<ReportSection>();
        var wavStats = TensorStats.Of(Tensor.FromArray(wav, wav.Length));
        sections.Add(new ReportSection("audio", "Audio",
            $"<p><code>{Html.Esc(r.Audio)}</code>, channel 0 at 16 kHz.</p>\n" +
            WaveformView.AudioPlayer(wav, LogMelFrontend.SampleRate) +
            WaveformView.Figure(wav, LogMelFrontend.SampleRate).ToHtml(220) +
            TensorSummaryView.Render("input.wav", wavStats)));

        var spec = SpectrogramData.FromChunks(audio.Mels);
        var melStats = new StringBuilder("<table class=\"stats\"><tr><th>name</th><th>dtype</th><th>shape</th><th>min</th><th>max</th><th>mean</th><th>std</th><th>NaN</th><th>Inf</th></tr>");
        for (int i = 0; i < audio.Mels.Count; i++) melStats.Append(TensorSummaryView.Row($"input.mel.{i}", TensorStats.Of(audio.Mels[i])));
        melStats.Append("</table>\n");
        sections.Add(new ReportSection("mel", "Log-mel spectrogram",
            SpectrogramView.Figure(spec).ToHtml(380) +
            "<details><summary>static rendering (no script)</summary>" + SpectrogramView.Image(spec) + "</details>\n" + melStats));

        var layers = trace.Order.Where(p => p.StartsWith("encoder.blocks.", StringComparison.Ordinal) && p.EndsWith(".attn.qk", StringComparison.Ordinal))
            .Select(p => AttentionMaps.FromScores(p, trace[p])).ToList();
        sections.Add(new ReportSection("attention", "Encoder attention (chunk 0)",
            $"<p>Softmax of <code>encoder.blocks.N.attn.qk</code>, padding keys removed; {layers.Count} layers. Zoomed: layer 0, head 0.</p>\n" + AttentionView.Render(layers)));

        var stream = TokenStream.Build(tok, promptIds, generated, alternatives);
        sections.Add(new ReportSection("tokens", "Token stream",
            "<p>Colours: <span class=\"tok text\">text</span> <span class=\"tok special\">special</span> <span class=\"tok audio_patch\">&lt;audio_patch&gt;</span> " +
            "<span class=\"tok speech\">speech code</span> <span class=\"tok text gen\">generated</span>; hover a generated token for its top alternatives.</p>\n" +
            TokenStreamView.Render(stream, tok)));

        sections.Add(new ReportSection("trace", "Trace explorer", TraceExplorerView.Render(TraceExplorerView.Entries(trace))));
        return sections;
    }
}
