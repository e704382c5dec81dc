using System.Text.Json;
using System.Text.RegularExpressions;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>Every notebook executed in-process: each cell succeeds and shows what its stage promises.</summary>
[Collection(NotebookCollection.Name)]
public sealed class NotebookTests
{
    public static TheoryData<string> Notebooks()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(TestPaths.Notebooks, "*.ipynb").Order()) data.Add(Path.GetFileName(f));
        return data;
    }

    [Theory]
    [MemberData(nameof(Notebooks))]
    public async Task Every_cell_runs_without_error(string notebook)
    {
        var runs = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, notebook));
        Assert.Contains(runs, r => !r.Skipped);
        foreach (var r in runs) Assert.True(r.Error is null, $"{notebook} cell '{r.Id}' failed:\n{r.Code}\n{r.Error}");
    }

    [Fact]
    public void Generated_notebooks_match_their_sources()
    {
        // 01–09 are written by scripts/make_notebooks.py from scripts/notebooks/*.py; an edit to one side only is caught here.
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3", ["scripts/make_notebooks.py", "--check"])
        { WorkingDirectory = TestPaths.RepoRoot, RedirectStandardOutput = true, RedirectStandardError = true };
        using var p = System.Diagnostics.Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, $"make_notebooks.py --check: {output}");
    }

    [Fact]
    public void Notebooks_are_csharp_with_cell_ids()
    {
        foreach (var f in Directory.GetFiles(TestPaths.Notebooks, "*.ipynb"))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(f));
            var meta = doc.RootElement.GetProperty("metadata");
            Assert.Equal(".net-csharp", meta.GetProperty("kernelspec").GetProperty("name").GetString());
            Assert.Equal("C#", meta.GetProperty("language_info").GetProperty("name").GetString());
            foreach (var cell in doc.RootElement.GetProperty("cells").EnumerateArray())
                Assert.False(string.IsNullOrWhiteSpace(cell.GetProperty("id").GetString()), $"{Path.GetFileName(f)}: a cell has no id");
        }
    }

    [Fact]
    public async Task Quickstart_shows_every_stage()
    {
        var runs = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, "00-quickstart.ipynb"));
        var byId = runs.ToDictionary(r => r.Id);
        Assert.True(byId["load-feed"].Skipped && byId["load-extension"].Skipped);
        foreach (var r in runs.Where(r => !r.Skipped)) Assert.True(r.Error is null, $"cell '{r.Id}' failed: {r.Error}");

        // waveform: an <audio> element with the clip as a WAV data URI, and the envelope plot
        var wave = byId["waveform"].Html;
        Assert.Matches("<audio controls[^>]*src=\"data:audio/wav;base64,UklGR", wave);
        Assert.Contains("scatter", TraceTypes(wave));

        // spectrogram: a heatmap with seconds on x and 128 mel bins on y, plus the PNG
        var mel = byId["mel"].Html;
        var melFigure = Figures(mel).Single();
        Assert.Equal("heatmap", melFigure.GetProperty("data")[0].GetProperty("type").GetString());
        Assert.Equal(128, melFigure.GetProperty("data")[0].GetProperty("z").GetArrayLength());
        Assert.Equal("seconds", melFigure.GetProperty("layout").GetProperty("xaxis").GetProperty("title").GetProperty("text").GetString());
        Assert.Contains("data:image/png;base64,", mel);

        // attention: a grid per layer (2 layers × 2 heads in the tiny encoder) and one zoom
        var att = Figures(byId["encoder"].Html);
        Assert.Equal(3, att.Count);
        Assert.Equal(2, att[0].GetProperty("data").GetArrayLength());
        Assert.All(att, f => Assert.Equal("heatmap", f.GetProperty("data")[0].GetProperty("type").GetString()));

        // a tensor: the stats table and a Plotly.NET heatmap (not the PNG fallback)
        var adapter = byId["adapter"].Html;
        Assert.Contains("<table class=\"stats\">", adapter);
        Assert.DoesNotContain("charts unavailable", adapter);
        Assert.Equal("heatmap", Figures(adapter).Single().GetProperty("data")[0].GetProperty("type").GetString());

        // parity: the table against the PyTorch dump, passing, with an |a−b| heatmap
        var parity = byId["parity"].Html;
        Assert.Contains("<table class=\"parity\">", parity);
        Assert.Contains("<p class=\"verdict pass\">PASS", parity);
        Assert.DoesNotContain("<tr class=\"fail\"", parity);
        Assert.Contains("|a−b|", Figures(parity).Single().GetProperty("layout").GetProperty("title").GetProperty("text").GetString());

        // trace explorer: the encoder's module paths, each expandable to a tensor picture
        var trace = byId["trace"].Html;
        Assert.Contains("encoder.blocks.1.attn.qk", trace);
        Assert.Contains("tensor-png", trace);

        // every output with figures carries plotly.js once, inline, and loads nothing from elsewhere
        foreach (var r in runs.Where(r => Figures(r.Html).Count > 0))
        {
            Assert.Single(Regex.Matches(r.Html, Regex.Escape("if(window.Plotly)return;")));
            Assert.DoesNotMatch("<script[^>]+src=", r.Html);
        }
    }

    internal static List<JsonElement> Figures(string html) =>
        Regex.Matches(html, "<script type=\"application/json\" class=\"plotly-figure\"[^>]*>(.*?)</script>", RegexOptions.Singleline)
            .Select(m => JsonDocument.Parse(m.Groups[1].Value).RootElement.Clone()).ToList();

    private static List<string> TraceTypes(string html) =>
        Figures(html).SelectMany(f => f.GetProperty("data").EnumerateArray().Select(t => t.GetProperty("type").GetString()!)).ToList();
}
