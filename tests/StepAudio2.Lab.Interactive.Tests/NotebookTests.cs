using System.Text.Json;
using System.Text.RegularExpressions;
using StepAudio2.Lab.Views;

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

    /// <summary>
    /// The .ipynb files are the sources (edited in Jupyter or VS Code Polyglot Notebooks; no generator): each is nbformat 4.5
    /// with the C# kernelspec, unique cell ids, the two package-loading cells of 00-quickstart, a parameter cell tagged
    /// <c>parameters</c> right after them, and no outputs or execution counts committed (clear them before committing:
    /// <c>jupyter nbconvert --clear-output --inplace notebooks/NAME.ipynb</c>).
    /// </summary>
    [Theory]
    [MemberData(nameof(Notebooks))]
    public void Notebook_sources_are_valid_clean_and_parameterised(string notebook)
    {
        string Source(JsonElement cell) => cell.GetProperty("source") is { ValueKind: JsonValueKind.Array } a
            ? string.Concat(a.EnumerateArray().Select(s => s.GetString())) : cell.GetProperty("source").GetString() ?? "";
        using var quick = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Notebooks, "00-quickstart.ipynb")));
        var loadCells = quick.RootElement.GetProperty("cells").EnumerateArray().Where(c => c.GetProperty("cell_type").GetString() == "code").Take(2).Select(Source).ToList();
        Assert.All(loadCells, c => Assert.True(NotebookRunner.IsPackageLoadCell(c), c));

        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestPaths.Notebooks, notebook)));
        var nb = doc.RootElement;
        Assert.Equal(4, nb.GetProperty("nbformat").GetInt32());
        Assert.True(nb.GetProperty("nbformat_minor").GetInt32() >= 5, "nbformat 4.5 or later (cell ids)");
        var meta = nb.GetProperty("metadata");
        Assert.Equal(".net-csharp", meta.GetProperty("kernelspec").GetProperty("name").GetString());
        Assert.Equal("C#", meta.GetProperty("language_info").GetProperty("name").GetString());
        var cells = nb.GetProperty("cells").EnumerateArray().ToList();
        var ids = cells.Select(c => c.GetProperty("id").GetString()).ToList();
        Assert.All(ids, id => Assert.False(string.IsNullOrWhiteSpace(id), $"{notebook}: a cell has no id"));
        Assert.Equal(ids.Count, ids.Distinct().Count());
        Assert.All(cells, c => Assert.Contains(c.GetProperty("cell_type").GetString(), new[] { "markdown", "code", "raw" }));

        var code = cells.Where(c => c.GetProperty("cell_type").GetString() == "code").ToList();
        foreach (var c in code)
        {
            string id = c.GetProperty("id").GetString()!;
            Assert.True(c.GetProperty("outputs").GetArrayLength() == 0, $"{notebook} cell '{id}' has committed outputs: clear them (jupyter nbconvert --clear-output --inplace)");
            Assert.True(c.GetProperty("execution_count").ValueKind == JsonValueKind.Null, $"{notebook} cell '{id}' has an execution count");
        }
        Assert.True(code.Count >= 3, $"{notebook}: fewer than 3 code cells");
        Assert.Equal(loadCells, code.Take(2).Select(Source));
        var parameters = code[2];
        Assert.True(parameters.GetProperty("metadata").TryGetProperty("tags", out var tags) && tags.EnumerateArray().Any(t => t.GetString() == "parameters"),
            $"{notebook}: the cell after the package cells is not tagged 'parameters'");
        Assert.StartsWith("using", Source(parameters).TrimStart());
        Assert.Single(code, c => c.GetProperty("metadata").TryGetProperty("tags", out var t) && t.EnumerateArray().Any(x => x.GetString() == "parameters"));
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

        // spectrogram: a heatmap with seconds on x and 128 mel bins on y, not doubled by a PNG of the same values
        var mel = byId["mel"].Html;
        var melFigure = Figures(mel).Single();
        Assert.Equal("heatmap", melFigure.GetProperty("data")[0].GetProperty("type").GetString());
        Assert.Equal(128, melFigure.GetProperty("data")[0].GetProperty("z").GetArrayLength());
        Assert.Equal("seconds", melFigure.GetProperty("layout").GetProperty("xaxis").GetProperty("title").GetProperty("text").GetString());
        Assert.DoesNotContain("data:image/png;base64,", mel);

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

        AssertPlotlyOncePerPage(runs);
    }

    /// <summary>
    /// plotly.js comes once per notebook page, inline and packed, with the first output that has figures; every output
    /// with figures has its loader; nothing is loaded from elsewhere.
    /// </summary>
    internal static void AssertPlotlyOncePerPage(IReadOnlyList<CellRun> runs)
    {
        var withFigures = runs.Where(r => Figures(r.Html).Count > 0).ToList();
        Assert.NotEmpty(withFigures);
        var bootstrap = Regex.Escape("if(window.Plotly)return;");
        Assert.Single(Regex.Matches(string.Concat(runs.Select(r => r.Html)), bootstrap));
        Assert.Single(Regex.Matches(withFigures[0].Html, bootstrap));
        Assert.Contains("steplabInflate(", withFigures[0].Html);
        foreach (var r in withFigures)
        {
            Assert.Contains("script.plotly-figure:not([data-drawn])", r.Html);
            Assert.DoesNotMatch("<script[^>]+src=", r.Html);
        }
        // what a notebook output weighs now: the bundle once (~1.34 MB packed), the rest is data
        int total = runs.Sum(r => r.Html.Length), first = withFigures[0].Html.Length;
        Assert.True(first < 1_600_000 + 500_000, $"first chart output {first:N0} chars");
        Assert.True(total - first < 2_000_000, $"outputs after the first chart weigh {total - first:N0} chars");
    }

    internal static List<JsonElement> Figures(string html) =>
        PlotlyFigure.ReadFigures(html).Select(f => JsonDocument.Parse(f.Json).RootElement.Clone()).ToList();

    private static List<string> TraceTypes(string html) =>
        Figures(html).SelectMany(f => f.GetProperty("data").EnumerateArray().Select(t => t.GetProperty("type").GetString()!)).ToList();
}
