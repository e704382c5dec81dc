using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// What the speech-out notebooks must show (06-flow, 07-vocoder, 08-end-to-end), executed in-process on the tiny token2wav
/// folder and its reference dump (P = 12 prompt tokens, N = 20 codes: 24 prompt frames, 64 CFM frames, 40 output frames,
/// 19 200 samples).
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class Token2WavNotebookTests
{
    private const int Bins = 80, PromptFrames = 24, CfmFrames = 64, MelFrames = 40, Samples = 19200;

    [Fact]
    public async Task Flow_notebook_shows_mu_the_ten_steps_cfg_and_a_passing_parity_table()
    {
        var byId = await Run("06-flow.ipynb");

        Assert.Contains("P = 12 prompt tokens → 24 prompt frames; N = 20 codes → 40 frames", Text(byId["flow-05"]));

        // the voice prompt's part: its mel [1, 24, 80] as an 80-bin heatmap, and the x-vector's statistics
        var prompt = byId["flow-07"];
        AssertHeatmap(Figures(prompt.Html)[0], Bins, PromptFrames);
        Assert.Contains("<table class=\"stats\">", prompt.Html);
        Assert.Contains("input.xvector", prompt.Html);

        // μ over the whole sequence with the prompt's end marked at frame 24 (seconds: (24 − 0.5)·0.02)
        var mu = Figures(byId["flow-11"].Html).Single();
        AssertHeatmap(mu, Bins, CfmFrames);
        var marks = mu.GetProperty("layout").GetProperty("shapes").EnumerateArray().ToList();
        Assert.Contains(marks, s => s.GetProperty("type").GetString() == "line" && Math.Abs(s.GetProperty("x0").GetDouble() - 23.5 * 0.02) < 1e-9);

        // the 10 Euler states on one colour axis; the rebuilt last state is bit-identical to the traced flow.decoder
        var steps = byId["flow-13"];
        Assert.Contains("10 Euler steps; rebuilt x_10 vs traced flow.decoder: max |Δ| = 0", Text(steps));
        var strip = Figures(steps.Html).Single();
        var traces = strip.GetProperty("data").EnumerateArray().ToList();
        Assert.Equal(10, traces.Count);
        Assert.All(traces, t => Assert.Equal("coloraxis", t.GetProperty("coloraxis").GetString()));
        AssertHeatmap(strip, Bins, CfmFrames);
        Assert.Equal(10, strip.GetProperty("layout").GetProperty("annotations").GetArrayLength());
        var cmin = strip.GetProperty("layout").GetProperty("coloraxis").GetProperty("cmin").GetDouble();
        var cmax = strip.GetProperty("layout").GetProperty("coloraxis").GetProperty("cmax").GetDouble();
        Assert.True(cmax > cmin);

        // CFG: v0 / v1 / guided at step 1, then the mel at rate 0 and 0.7 — different, since guidance changes the ODE
        var cfg = byId["flow-15"];
        var cfgFigures = Figures(cfg.Html);
        Assert.Equal(2, cfgFigures.Count);
        Assert.Equal(3, cfgFigures[0].GetProperty("data").GetArrayLength());
        Assert.Equal(2, cfgFigures[1].GetProperty("data").GetArrayLength());
        AssertHeatmap(cfgFigures[1], Bins, MelFrames);
        var rel = double.Parse(Regex.Match(Text(cfg), @"= ([0-9.]+)\s*$", RegexOptions.Multiline).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(rel > 1e-3, $"CFG rate 0 vs 0.7 differ by only {rel}");

        // the final mel: whole sequence (prompt shaded) and the reply's part
        var final = Figures(byId["flow-17"].Html);
        Assert.Equal(2, final.Count);
        AssertHeatmap(final[0], Bins, CfmFrames);
        AssertHeatmap(final[1], Bins, MelFrames);

        // parity: every input.* and flow.* (10 estimator steps included) against the PyTorch dump, passing; no hift rows
        var parity = byId["flow-19"];
        Assert.True(Text(parity).Trim().StartsWith("PASS", StringComparison.Ordinal), Text(parity));
        Assert.Contains("<table class=\"parity\">", parity.Html);
        Assert.Contains("<p class=\"verdict pass\">PASS", parity.Html);
        Assert.DoesNotContain("<tr class=\"fail\"", parity.Html);
        Assert.Contains("flow.decoder.estimator.step.9", parity.Html);
        Assert.Contains("flow.encoder_proj", parity.Html);
        Assert.DoesNotContain(">hift.", parity.Html);

        AssertOfflineFigures(byId.Values);
    }

    [Fact]
    public async Task Vocoder_notebook_shows_f0_source_stages_player_and_parity_at_both_bounds()
    {
        var byId = await Run("07-vocoder.ipynb");

        var setup = byId["voc-05"];
        Assert.Contains("input mel [1, 80, 40]: 40 frames → 19200 samples (0.80 s)", Text(setup));
        Assert.Contains("480 samples per frame, 9 harmonics", Text(setup));
        AssertHeatmap(Figures(setup.Html).Single(), Bins, MelFrames);

        // F0: one value per mel frame; the source excerpt: 480 samples starting mid-clip, x in seconds from there
        var f0 = Figures(byId["voc-08"].Html);
        Assert.Equal(2, f0.Count);
        var f0Line = f0[0].GetProperty("data")[0];
        Assert.Equal("scatter", f0Line.GetProperty("type").GetString());
        Assert.Equal(MelFrames, f0Line.GetProperty("y").GetArrayLength());
        Assert.Equal("Hz", f0[0].GetProperty("layout").GetProperty("yaxis").GetProperty("title").GetProperty("text").GetString());
        var source = f0[1].GetProperty("data")[0];
        Assert.Equal(480, source.GetProperty("y").GetArrayLength());
        Assert.Equal(Samples / 2 / 24000.0, source.GetProperty("x")[0].GetDouble(), 6);
        Assert.Matches(@"F0: min [0-9.]+ Hz, mean [0-9.]+ Hz, max [0-9.]+ Hz; voiced \(> 10 Hz\) in \d+ of 40 frames", Text(byId["voc-08"]));

        // the three upsample stages (channels 16, 8, 4 of the tiny vocoder) and conv_post (18 channels), as heatmaps
        var stages = Figures(byId["voc-10"].Html);
        Assert.Equal(4, stages.Count);
        Assert.All(stages, f => Assert.Equal("heatmap", f.GetProperty("data")[0].GetProperty("type").GetString()));
        Assert.Equal([16, 8, 4, 18], stages.Select(f => f.GetProperty("data")[0].GetProperty("z").GetArrayLength()));

        // the waveform: a 24 kHz mono 16-bit WAV of 19 200 samples in the player, and the envelope plot
        var wave = byId["voc-12"].Html;
        AssertWav(wave, 24000, Samples);
        Assert.Equal("scatter", Figures(wave).Single().GetProperty("data")[0].GetProperty("type").GetString());

        // parity: the chain at its documented bound, the decoder fed the reference source at the f32 tier — both pass
        var parity = byId["voc-14"];
        Assert.Matches(@"chain \(≤ 1e-3 rel-L2\): PASS, \d+ tensors", Text(parity));
        Assert.Matches(@"decoder fed the reference source \(f32 tier\): PASS, \d+ tensors", Text(parity));
        Assert.Equal(2, Regex.Matches(parity.Html, "<table class=\"parity\">").Count);
        Assert.DoesNotContain("<tr class=\"fail\"", parity.Html);
        Assert.Contains("hift.ups.2", parity.Html);

        AssertOfflineFigures(byId.Values);
    }

    [Fact]
    public async Task End_to_end_notebook_plays_the_question_the_prompt_and_a_labelled_answer()
    {
        var byId = await Run("08-end-to-end.ipynb");

        AssertWav(byId["e2e-07"].Html, 16000, null);

        // the voice prompt through the ONNX models: a player and its prompt mel (80 bins, 2 frames per token)
        var prompt = byId["e2e-09"];
        var tokens = int.Parse(Regex.Match(Text(prompt), @"^(\d+) prompt tokens", RegexOptions.Multiline).Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.True(tokens > 0);
        AssertHeatmap(Figures(prompt.Html).Last(), Bins, 2 * tokens);
        Assert.Contains("<audio controls", prompt.Html);

        // the reply as a token stream ending the prompt in <tts_start> (151693), with the counts printed
        var reply = byId["e2e-11"];
        Assert.Contains("<div class=\"tokens\">", reply.Html);
        Assert.Contains("data-id=\"151693\"", reply.Html);
        var counts = Regex.Match(Text(reply), @"(\d+) generated ids: (\d+) text, (\d+) audio codes, (\d+) speech codes");
        Assert.True(counts.Success, Text(reply));
        int speech = int.Parse(counts.Groups[4].Value, CultureInfo.InvariantCulture);
        Assert.InRange(int.Parse(counts.Groups[1].Value, CultureInfo.InvariantCulture), 1, 32);

        // the answer: the reply's codes when there are any, else 50 fixed codes, labelled as a fallback
        var answer = byId["e2e-13"];
        if (speech > 0)
        {
            Assert.Contains("spoken reply:", answer.Html);
            AssertWav(answer.Html, 24000, speech * 960);
        }
        else
        {
            Assert.Contains("FALLBACK", Text(answer));
            Assert.Contains("FALLBACK, fixed codes (not the model&#39;s reply)", answer.Html);
            AssertWav(answer.Html, 24000, 50 * 960);
        }
        AssertOfflineFigures(byId.Values);
    }

    /// <summary>
    /// The parameter path a real checkpoint takes: no reference dump, inputs from a voice prompt through the (tiny) ONNX
    /// models and 50 fixed codes; the same views, and the parity cells say there is nothing to compare.
    /// </summary>
    [Fact]
    public async Task Flow_and_vocoder_notebooks_run_from_a_voice_prompt_without_a_dump()
    {
        static string NoDump(string id, string code) =>
            code.Replace("string referenceDump = Lab.TinyDump(\"token2wav-short\");", "string referenceDump = null;")
                .Replace("Lab.SharedAudio(\"default_female.wav\")", "Lab.SharedAudio(\"real_speech.aiff\")");

        var flow = await Run("06-flow.ipynb", NoDump);
        Assert.Contains("string referenceDump = null;", flow["flow-04"].Code);
        var p = int.Parse(Regex.Match(Text(flow["flow-05"]), @"P = (\d+) prompt tokens").Groups[1].Value, CultureInfo.InvariantCulture);
        Assert.Contains("N = 50 codes → 100 frames", Text(flow["flow-05"]));
        Assert.True(p > 0);
        Assert.Contains("max |Δ| = 0", Text(flow["flow-13"]));
        AssertHeatmap(Figures(flow["flow-13"].Html).Single(), Bins, 2 * (p + 50));
        AssertHeatmap(Figures(flow["flow-17"].Html)[1], Bins, 100);
        Assert.Contains("no reference dump", Text(flow["flow-19"]));

        var voc = await Run("07-vocoder.ipynb", NoDump);
        Assert.Contains("input mel [1, 80, 100]: 100 frames → 48000 samples (2.00 s)", Text(voc["voc-05"]));
        AssertWav(voc["voc-12"].Html, 24000, 48000);
        Assert.Contains("no reference dump", Text(voc["voc-14"]));
    }

    private static async Task<Dictionary<string, CellRun>> Run(string notebook, Func<string, string, string>? edit = null)
    {
        var runs = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, notebook), edit);
        foreach (var r in runs.Where(r => !r.Skipped)) Assert.True(r.Error is null, $"{notebook} cell '{r.Id}' failed:\n{r.Code}\n{r.Error}");
        return runs.ToDictionary(r => r.Id);
    }

    private static string Text(CellRun r) => string.Join("\n", r.Outputs.Where(o => o.MimeType == "text/plain").Select(o => o.Value));

    private static List<JsonElement> Figures(string html) => NotebookTests.Figures(html);

    // every heatmap trace of the figure is [rows][cols]
    private static void AssertHeatmap(JsonElement figure, int rows, int cols)
    {
        foreach (var t in figure.GetProperty("data").EnumerateArray())
        {
            Assert.Equal("heatmap", t.GetProperty("type").GetString());
            var z = t.GetProperty("z");
            Assert.Equal(rows, z.GetArrayLength());
            Assert.Equal(cols, z[0].GetArrayLength());
        }
    }

    // the first <audio> element's WAV: RIFF header with the rate, mono 16-bit, and (when given) the sample count
    private static void AssertWav(string html, int rate, int? samples)
    {
        var m = Regex.Match(html, "<audio controls[^>]*src=\"data:audio/wav;base64,([A-Za-z0-9+/=]+)\"");
        Assert.True(m.Success, "no <audio> element with a WAV data URI");
        var wav = Convert.FromBase64String(m.Groups[1].Value);
        Assert.Equal("RIFF", System.Text.Encoding.ASCII.GetString(wav, 0, 4));
        Assert.Equal(1, BitConverter.ToInt16(wav, 22));
        Assert.Equal(rate, BitConverter.ToInt32(wav, 24));
        Assert.Equal(16, BitConverter.ToInt16(wav, 34));
        if (samples is int n) Assert.Equal(n * 2, BitConverter.ToInt32(wav, 40));
    }

    private static void AssertOfflineFigures(IEnumerable<CellRun> runs) => NotebookTests.AssertPlotlyOncePerPage(runs.ToList());
}
