using System.Diagnostics;
using System.Text.Json;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// 10-quantization executed in-process on the tiny checkpoint (int8 and int4 made in the notebook, group 32): the summary
/// table, rel-L2 against depth for both checkpoints on one chart, KL per prompt position — whose plotted values equal
/// reference-data/quant_compare.py (torch) on the notebook's own traces, saved by an edit of the comparison cell — and
/// the temporary checkpoints removed.
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class QuantizationNotebookTests
{
    private const string Python = "/usr/bin/python3";
    private const int Positions = 58;                 // the official prompt on real_speech.aiff: 19 text ids + 39 audio tokens
    private const int Modules = 2 * 13 + 2;           // 2 decoder layers of 13 traced paths, model.norm, lm_head

    [Fact]
    public async Task Draws_error_by_depth_and_kl_per_position_matching_torch()
    {
        var dumps = Directory.CreateTempSubdirectory("steplab-qnb-").FullName;
        try
        {
            string Save(string name) => $"StepAudio2.Lab.Tracing.DumpFile.Save(\"{Path.Combine(dumps, name + ".safetensors")}\", {name});\n";
            var runs = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, "10-quantization.ipynb"),
                (id, code) => id == "quant-09" ? Save("reference") + Save("int8") + Save("int4") + code : code);
            foreach (var r in runs.Where(r => !r.Skipped)) Assert.True(r.Error is null, $"cell '{r.Id}' failed:\n{r.Code}\n{r.Error}");
            var byId = runs.ToDictionary(r => r.Id);

            Assert.Contains("full logits [1, 58, 158720]", Text(byId["quant-07"])); // batch-first, as the official lm_head returns it

            var view = byId["quant-09"].Html;
            Assert.Contains("<table class=\"listing quantization\">", view);
            Assert.Contains("<tr><td>int8</td><td class=\"path\">model.layers.0.self_attn.q_proj</td>", view);
            Assert.Contains("<tr><td>int4</td><td class=\"path\">model.layers.0.self_attn.q_proj</td>", view);
            var figures = NotebookTests.Figures(view);
            var depth = figures.Single(f => Title(f).StartsWith("rel-L2 of every traced module", StringComparison.Ordinal));
            var lines = depth.GetProperty("data").EnumerateArray().ToList();
            Assert.Equal(["int8", "int4"], lines.Select(l => l.GetProperty("name").GetString()));
            Assert.All(lines, l => Assert.Equal(Modules, l.GetProperty("x").GetArrayLength()));
            Assert.Equal("log", depth.GetProperty("layout").GetProperty("yaxis").GetProperty("type").GetString());
            Assert.Single(depth.GetProperty("layout").GetProperty("shapes").EnumerateArray()); // the boundary between the 2 layers
            // int4's error is larger than int8's at the last module (the logits)
            Assert.True(lines[1].GetProperty("y")[Modules - 1].GetDouble() > lines[0].GetProperty("y")[Modules - 1].GetDouble());

            var kl = figures.Single(f => Title(f).StartsWith("next-token KL", StringComparison.Ordinal));
            var klLines = kl.GetProperty("data").EnumerateArray().Where(t => t.GetProperty("mode").GetString() == "lines").ToList();
            Assert.Equal(["int8 KL", "int4 KL"], klLines.Select(l => l.GetProperty("name").GetString()));

            // the plotted KL (4 significant digits) against torch on the same traces
            foreach (var (label, line) in new[] { ("int8", klLines[0]), ("int4", klLines[1]) })
            {
                using var torch = JsonDocument.Parse(RunPython(Path.Combine(TestPaths.RepoRoot, "reference-data", "quant_compare.py"),
                    Path.Combine(dumps, label + ".safetensors"), Path.Combine(dumps, "reference.safetensors")));
                var expected = torch.RootElement.GetProperty("kl").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                var plotted = line.GetProperty("y").EnumerateArray().Select(e => e.GetDouble()).ToArray();
                Assert.Equal(Positions, plotted.Length);
                for (int t = 0; t < Positions; t++)
                    Assert.True(Math.Abs(plotted[t] - expected[t]) <= 1e-3 * expected[t], $"{label} position {t}: plotted {plotted[t]} vs torch {expected[t]}");
                var disagreeing = torch.RootElement.GetProperty("reference_top1").EnumerateArray().Zip(torch.RootElement.GetProperty("candidate_top1").EnumerateArray())
                    .Count(p => p.First.GetInt64() != p.Second.GetInt64());
                Assert.Contains($"{label} top-1 differs ({disagreeing})", kl.GetProperty("data").EnumerateArray().Select(t => t.GetProperty("name").GetString()));
            }

            var summary = Text(byId["quant-11"]);
            Assert.Contains("int8: error enters at model.layers.0.self_attn.q_proj; decoder layers ", summary);
            Assert.Contains("int8 departs less than int4: True", summary);
            Assert.Contains("removed 2 temporary checkpoint folder(s)", Text(byId["quant-12"]));
            NotebookTests.AssertPlotlyOncePerPage(runs);
        }
        finally
        {
            Directory.Delete(dumps, recursive: true);
        }
    }

    private static string Title(JsonElement f) =>
        f.GetProperty("layout").TryGetProperty("title", out var t) && t.TryGetProperty("text", out var s) ? s.GetString() ?? "" : "";

    private static string Text(CellRun r) => string.Join("\n", r.Outputs.Where(o => o.MimeType == "text/plain").Select(o => o.Value));

    private static string RunPython(params string[] args)
    {
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        Assert.True(p.WaitForExit(120_000), "quant_compare.py did not finish in 120 s");
        Assert.True(p.ExitCode == 0, err.Result);
        return stdout;
    }
}
