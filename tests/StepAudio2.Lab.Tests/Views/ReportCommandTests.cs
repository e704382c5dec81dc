using System.Buffers.Binary;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tests.Cli;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>
/// <c>steplab report</c> on the tiny checkpoint and the real clip, checked against the Python reference dumps (mel, wav,
/// prompt ids, greedy ids) and for being a self-contained offline page.
/// </summary>
public sealed class ReportCommandTests : IClassFixture<ReportCommandTests.PassingReport>
{
    private static string Clip => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string LlmShort => Path.Combine(Tiny, "dumps", "llm-short.safetensors");
    private static string AudioShort => Path.Combine(Tiny, "dumps", "audio-short.safetensors");

    /// <summary>One report run shared by the facts (the run costs a few seconds).</summary>
    public sealed class PassingReport : IDisposable
    {
        private readonly TempDir _tmp = TestPaths.Temp();

        public PassingReport()
        {
            var path = _tmp.File("report.html");
            (Code, Stdout, Err) = InspectCliTests.Run("report", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--audio", Clip,
                "--reference", LlmShort, "--out", path);
            Html = File.Exists(path) ? File.ReadAllText(path) : "";
        }

        public int Code { get; }
        public string Stdout { get; }
        public string Err { get; }
        public string Html { get; }

        public void Dispose() => _tmp.Dispose();
    }

    private readonly PassingReport _r;

    public ReportCommandTests(PassingReport r)
    {
        _r = r;
        Assert.True(r.Code == StepLabCli.Ok, r.Err + r.Stdout);
    }

    internal static JsonObject Figure(string html, string id)
    {
        var figures = PlotlyFigure.ReadFigures(html).Where(f => f.Target == id).ToList();
        Assert.True(figures.Count == 1, $"{figures.Count} figures '{id}'");
        return JsonNode.Parse(figures[0].Json)!.AsObject();
    }

    [Fact]
    public void PageIsSelfContainedWithInlinePlotly()
    {
        var html = _r.Html;
        Assert.StartsWith("<!DOCTYPE html>", html);
        Assert.Contains("<script>/**\n* plotly.js v2.28.0", html);
        Assert.Contains("Plotly.newPlot(", html);
        // no script or stylesheet loaded from anywhere: every <script> is inline
        Assert.DoesNotMatch(new Regex(@"<script[^>]*\ssrc\s*=", RegexOptions.IgnoreCase), html);
        Assert.DoesNotMatch(new Regex(@"<link[^>]*href", RegexOptions.IgnoreCase), html);
        // outside plotly's own source (whose option defaults and map attributions name its CDN and tile servers, used only
        // by trace types this page never draws) there is no URL at all
        int start = html.IndexOf("<script>/**", StringComparison.Ordinal);
        int end = html.IndexOf("</script>", start, StringComparison.Ordinal);
        Assert.Equal(start, html.IndexOf("<script>", StringComparison.Ordinal));
        var rest = html[..start] + html[end..];
        Assert.DoesNotMatch(new Regex(@"(src|href)\s*=\s*[""']?\s*(https?:)?//", RegexOptions.IgnoreCase), rest);
        Assert.DoesNotContain("http://", rest);
        Assert.DoesNotContain("https://", rest);
        Assert.DoesNotContain("cdn.plot.ly", rest);
        Assert.DoesNotContain("cdn.jsdelivr", html);
        Assert.DoesNotContain("unpkg.com", html);
    }

    [Fact]
    public void SpectrogramHeatmapIsTheReferenceMel()
    {
        using var reference = SafetensorsFile.Open(AudioShort);
        var mel = reference.Get("input.mel.0");
        int bins = mel.Shape[0], frames = mel.Shape[1];
        Assert.Equal(128, bins);
        var expected = mel.ToFloatArray();

        var trace = Figure(_r.Html, "spectrogram")["data"]!.AsArray().Single()!.AsObject();
        Assert.Equal("heatmap", (string)trace["type"]!);
        var z = trace["z"]!.AsArray();
        Assert.Equal(bins, z.Count);
        Assert.All(z, row => Assert.Equal(frames, row!.AsArray().Count));
        // 4 significant digits of values ≤ ~2 in magnitude, plus the 1e-4 acceptance bound of the mel
        for (int b = 0; b < bins; b += 17)
            for (int f = 0; f < frames; f += 13)
                Assert.True(Math.Abs((double)z[b]![f]! - expected[b * frames + f]) <= 1.2e-3, $"mel[{b}, {f}]");
        var x = trace["x"]!.AsArray();
        Assert.Equal(frames, x.Count);
        Assert.Equal((frames - 1) * 0.01, (double)x[^1]!, 6);
        Assert.Contains("class=\"spectrogram-png\"", _r.Html);
    }

    [Fact]
    public void AudioPlayerEmbedsTheClipAsWav()
    {
        var m = Regex.Match(_r.Html, "<audio controls[^>]*src=\"data:audio/wav;base64,([A-Za-z0-9+/=]+)\"");
        Assert.True(m.Success);
        var wav = Convert.FromBase64String(m.Groups[1].Value);
        Assert.Equal("RIFF"u8.ToArray(), wav[..4]);
        Assert.Equal("WAVE"u8.ToArray(), wav[8..12]);
        using var tmp = TestPaths.Temp();
        File.WriteAllBytes(tmp.File("clip.wav"), wav);
        var clip = AudioFile.Read(tmp.File("clip.wav"));
        using var reference = SafetensorsFile.Open(AudioShort);
        var expected = reference.Get("input.wav").ToFloatArray();
        Assert.Equal(16000, clip.SampleRate);
        Assert.Equal(1, clip.ChannelCount);
        Assert.Equal(expected.Length, clip.Frames);
        var got = clip.Channel(0);
        // PCM16: one quantisation step plus the 32767/32768 read-back scale
        for (int i = 0; i < expected.Length; i += 97)
            Assert.True(Math.Abs(got[i] - Math.Clamp(expected[i], -1f, 1f)) <= 2.0 / 32768, $"sample {i}");
        var wave = Figure(_r.Html, "waveform")["data"]!.AsArray().Single()!.AsObject();
        Assert.Equal("scatter", (string)wave["type"]!);
    }

    [Fact]
    public void AttentionGridForEveryEncoderLayer()
    {
        // the tiny config: 2 encoder layers of 2 heads
        for (int layer = 0; layer < 2; layer++)
        {
            var fig = Figure(_r.Html, $"attention-layer-{layer}");
            var data = fig["data"]!.AsArray();
            Assert.Equal(2, data.Count);
            Assert.Contains($"encoder.blocks.{layer}.attn.qk", (string)fig["layout"]!["title"]!["text"]!);
            foreach (var t in data) Assert.Equal("heatmap", (string)t!["type"]!);
        }
        Assert.DoesNotContain("data-target=\"attention-layer-2\"", _r.Html);
        var zoom = Figure(_r.Html, "attention-zoom")["data"]!.AsArray().Single()!["z"]!.AsArray();
        // rows of a softmax sum to one (up to the 3 significant digits written)
        foreach (var row in zoom) Assert.Equal(1.0, row!.AsArray().Sum(v => (double)v!), 1);
    }

    [Fact]
    public void TokenStreamShowsThePromptAndGreedyIdsOfTheReference()
    {
        using var reference = SafetensorsFile.Open(LlmShort);
        var promptIds = reference.Get("input.ids").ToInt64Array();
        var greedy = reference.Get("output.greedy_ids").ToInt64Array();
        var prompt = Regex.Match(_r.Html, "<code class=\"prompt-ids\">([0-9 ]*)</code>").Groups[1].Value.Split(' ').Select(long.Parse).ToArray();
        Assert.Equal(promptIds, prompt);
        var generated = Regex.Match(_r.Html, "<code class=\"generated-ids\">([0-9 ]*)</code>").Groups[1].Value.Split(' ').Select(long.Parse).ToArray();
        Assert.Equal(16, generated.Length); // --max-tokens default; the tiny model never emits <|EOT|> here
        Assert.Equal(greedy, generated[..greedy.Length]);
        Assert.Contains("<span class=\"tok special\" data-id=\"151666\"", _r.Html); // <|BOT|>
        Assert.Matches("<span class=\"tok audio_patch\" data-id=\"151690\" data-count=\"39\"", _r.Html); // 3 s clip → 39 audio tokens
        Assert.Contains("class=\"alts\"", _r.Html);
        // every chosen token and top-k alternative of the table reads as the tokenizer decodes it, id alongside
        var tok = StepAudio2.Lab.Text.StepAudioTokenizer.Load(TestPaths.SharedModel);
        var shown = TokenStreamViewTests.TableTokens(_r.Html);
        Assert.True(shown.Count >= 16 * 2, $"{shown.Count} tokens in the alternatives table");
        foreach (var (id, text) in shown) Assert.Equal(TokenStreamViewTests.Expected(tok, id), text);
    }

    [Fact]
    public void ParityAgainstTheMatchingReferencePassesAndTraceIsListed()
    {
        Assert.Contains("parity PASS: 34 compared", _r.Stdout);
        Assert.Contains("<p class=\"verdict pass\">PASS: 34 compared, 0 failing", _r.Html);
        Assert.DoesNotContain("<tr class=\"fail\"", _r.Html);
        Assert.Contains("<td class=\"path\">lm_head.last</td>", _r.Html);
        Assert.Contains("<details class=\"trace-group\"><summary><code>encoder.blocks.1</code>", _r.Html);
        Assert.Contains("<summary><code>model.layers.0</code>", _r.Html);
    }

    [Fact]
    public void FailingReferenceExitsOneAndBadInputTwo()
    {
        using var tmp = TestPaths.Temp();
        var bad = Path.Combine(Tiny, "demo", "candidate-gelu-adaptor.safetensors");
        var (code, stdout, err) = InspectCliTests.Run("report", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--audio", Clip,
            "--reference", bad, "--max-tokens", "2", "--out", tmp.File("r.html"));
        Assert.True(code == StepLabCli.Failed, err + stdout);
        Assert.Contains("first adapter.relu", stdout);
        var html = File.ReadAllText(tmp.File("r.html"));
        Assert.Contains("<p class=\"verdict fail\">FAIL", html);
        Assert.Contains("first failing path (#", html);
        Assert.Contains("<code>adapter.relu</code>", html);
        Assert.Contains("|a−b| of adapter.relu", Figure(html, "parity-diff")["layout"]!["title"]!["text"]!.ToString());

        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("report", "--model", Tiny, "--tokenizer", TestPaths.SharedModel,
            "--audio", tmp.File("none.wav"), "--out", tmp.File("x.html")).Code);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("report", "--model", Tiny, "--tokenizer", TestPaths.SharedModel,
            "--audio", Clip, "--max-tokens", "0", "--out", tmp.File("x.html")).Code);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("report", "--model", Tiny, "--audio", Clip, "--out", tmp.File("x.html")).Code);
        Assert.False(File.Exists(tmp.File("x.html")));
    }
}
