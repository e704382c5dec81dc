using System.Collections.Concurrent;
using System.Text.Json;

namespace StepAudio2.Lab.Interactive.Tests;

/// <summary>
/// What each stage notebook (01 … 05) must show when executed in-process on the tiny checkpoint: its figures (by trace type
/// and shape), tables, verdicts and the checks it prints. Values come from the PyTorch reference dumps and the spec, not
/// from our own output.
/// </summary>
[Collection(NotebookCollection.Name)]
public sealed class StageNotebookTests
{
    // one execution per notebook for all assertions of this class (each run loads a checkpoint and traces it)
    private static readonly ConcurrentDictionary<string, Lazy<Task<Executed>>> Runs = new();

    private sealed record Executed(List<CellRun> Cells, string Html, string Text, List<JsonElement> Figures);

    private static Task<Executed> Run(string notebook) => Runs.GetOrAdd(notebook, n => new Lazy<Task<Executed>>(async () =>
    {
        var cells = await NotebookRunner.RunAsync(Path.Combine(TestPaths.Notebooks, n));
        foreach (var c in cells) Assert.True(c.Error is null, $"{n} cell '{c.Id}' failed:\n{c.Code}\n{c.Error}");
        var html = string.Join("\n", cells.Select(c => c.Html));
        var text = string.Join("\n", cells.SelectMany(c => c.Outputs).Where(o => o.MimeType == "text/plain").Select(o => o.Value));
        return new Executed(cells, html, text, NotebookTests.Figures(html));
    })).Value;

    private static JsonElement FigureTitled(Executed e, string titleStart) =>
        e.Figures.Single(f => Title(f).StartsWith(titleStart, StringComparison.Ordinal));

    private static string Title(JsonElement f) =>
        f.GetProperty("layout").TryGetProperty("title", out var t) && t.TryGetProperty("text", out var s) ? s.GetString() ?? "" : "";

    private static string TraceType(JsonElement f, int i = 0) => f.GetProperty("data")[i].GetProperty("type").GetString()!;

    private static (int Rows, int Cols) ZShape(JsonElement f, int i = 0)
    {
        var z = f.GetProperty("data")[i].GetProperty("z");
        return (z.GetArrayLength(), z[0].GetArrayLength());
    }

    [Fact]
    public async Task MelFrontend_draws_the_spectrogram_filter_bank_and_parity_with_the_reference_mel()
    {
        var e = await Run("01-mel-frontend.ipynb");
        Assert.Matches("<audio controls[^>]*src=\"data:audio/wav;base64,UklGR", e.Html);
        Assert.Equal("scatter", TraceType(FigureTitled(e, "waveform, 49001 samples")));
        // docs/model.md §2.3: 49 001 samples → L = ⌊(49 001 + 479)/160⌋ = 309 frames, 306 without the pad; 39 audio tokens (§2.6)
        var mel = FigureTitled(e, "log-mel [128, 309]");
        Assert.Equal("heatmap", TraceType(mel));
        Assert.Equal((128, 309), ZShape(mel));
        Assert.Equal("seconds", mel.GetProperty("layout").GetProperty("xaxis").GetProperty("title").GetProperty("text").GetString());
        Assert.Contains("L = ⌊(N + 479)/160⌋ ✓", e.Text);
        Assert.Contains("<tr><td>0</td><td>49001</td><td>3.063</td><td>309</td><td>306</td><td>Tensor(f32, [128, 309])</td><td>307</td><td>39</td></tr>", e.Html);
        Assert.Contains("max − min = 2.0000", e.Text); // the max − 8 floor: the range is exactly 2 for a clip with silence
        Assert.Contains("data:image/png;base64,", e.Html);
        // the Slaney bank [128 bands, 201 bins], checked against the spec's self-check values in the notebook
        Assert.Equal((128, 201), ZShape(FigureTitled(e, "Slaney mel filter bank")));
        Assert.Contains("band 0 non-zero bins: (1, 1); band 127: (191, 9)", e.Text);
        // parity with the reference's input.wav, input.mel.0, input.wav_lens: pass; the pad-less mel: a shape failure
        Assert.Contains("<p class=\"verdict pass\">PASS: 3 compared, 0 failing", e.Html);
        Assert.Equal("heatmap", TraceType(FigureTitled(e, "|a−b| of input.mel.0 [128, 309]")));
        Assert.Contains("<p class=\"verdict fail\">FAIL: 1 compared, 1 failing", e.Html);
        Assert.Contains("shape [128, 306] vs reference [128, 309]", e.Html);
    }

    [Fact]
    public async Task AudioEncoder_draws_a_head_grid_per_layer_a_zoom_and_passes_against_the_reference()
    {
        var e = await Run("02-audio-encoder.ipynb");
        Assert.Contains("T = 309 → T₂ = 155 → T₃ = 77", e.Text);
        Assert.Contains("154 of 155 keys valid, 1 masked", e.Text); // docs/model.md §3.3: T odd, len 307 → the last conv2 frame masked
        var grids = e.Figures.Where(f => Title(f).StartsWith("encoder.blocks.", StringComparison.Ordinal) && Title(f).Contains("(softmax; 2 heads, 154 valid frames; downsampled: 4×4 frames per cell)")).ToList();
        Assert.Equal(2, grids.Count); // the tiny encoder's 2 blocks
        Assert.All(grids, g => Assert.Equal(2, g.GetProperty("data").GetArrayLength()));
        var zoom = FigureTitled(e, "encoder.blocks.1.attn.qk, head 0");
        Assert.Equal((154, 154), ZShape(zoom));
        Assert.Equal((32, 155), ZShape(FigureTitled(e, "encoder.conv2 (batch 0) [32, 155]")));
        Assert.Equal((2, 2), ZShape(FigureTitled(e, "mean attention distance")));
        Assert.Equal((2, 2), ZShape(FigureTitled(e, "normalised attention entropy")));
        Assert.Contains("<p class=\"verdict pass\">PASS: 9 compared, 0 failing", e.Html);
    }

    [Fact]
    public async Task Adaptor_shows_shapes_token_counts_and_the_relu_slip()
    {
        var e = await Run("03-adaptor.ipynb");
        Assert.Contains("T₄ = ⌊(77 − 1)/2⌋ + 1 = 39; feat_len = ⌊(77 − 1)/2⌋ + 1 = 39", e.Text);
        Assert.Equal((39, 32), ZShape(FigureTitled(e, "adapter (batch 0) [39, 32]")));
        Assert.Contains("GELU instead of ReLU: FAIL", e.Text);
        // the table of docs/model.md §2.6 durations: formula, model bookkeeping and the spec's value agree, the ≤ 20 ms chunk included
        Assert.Contains("<tr><td>25 s (full chunk)</td><td>400000</td><td>2502</td><td>1251</td><td>625</td><td>313</td><td>313</td><td>313</td></tr>", e.Html);
        Assert.Contains("<tr><td>20 ms</td><td>320</td><td>4</td><td>2</td><td>0</td><td>0</td><td>0</td><td>0</td></tr>", e.Html);
        Assert.Contains("all agree; this clip takes 39 <audio_patch> slots", e.Text);
        // the 27 s request of the two-chunk dump: 25 s + 2 s → 313 + 25 tokens, adaptor batch compared with the reference
        Assert.Contains("<audio_patch>×313 <audio_end> <audio_start> <audio_patch>×25", e.Text);
        Assert.Contains("valid rows per chunk 313 + 25", e.Text);
        Assert.Contains("<p class=\"verdict pass\">PASS: 9 compared, 0 failing", e.Html);
    }

    [Fact]
    public async Task Llm_shows_the_prompt_and_the_greedy_generation_as_token_streams()
    {
        var e = await Run("04-llm.ipynb");
        var streams = System.Text.RegularExpressions.Regex.Matches(e.Html, "<div class=\"tokens\">").Count;
        Assert.Equal(2, streams); // the prompt, then prompt + generated
        Assert.Contains("data-count=\"39\"", e.Html); // 39 <audio_patch> placeholders collapsed into one chip
        Assert.Contains("tok text gen", e.Html);
        Assert.Contains("<table class=\"alts\">", e.Html); // per-step top-5 alternatives
        Assert.Contains("<th>rank</th><th>id</th><th>token</th><th>kind</th><th>logit</th><th>p</th>", e.Html); // prefill top-k
        Assert.Contains("<tr><td>0</td><td>149407</td>", e.Html); // the first greedy id is the argmax of the prefill logits
        Assert.Contains("reference input.ids (58 ids, tokenised by hand from vocab.json): identical ✓", e.Text);
        Assert.Contains("max |Δ| = 0", e.Text); // adaptor rows written over the placeholders
        Assert.Contains("reference greedy ids 149407 155661 149407 83649 83649 141023 11736 83649: identical ✓", e.Text);
        Assert.Equal("scatter", TraceType(FigureTitled(e, "the 2000 largest logits")));
        Assert.Contains("<p class=\"verdict pass\">PASS", e.Html);
        Assert.DoesNotContain("<tr class=\"fail\"", e.Html);
    }

    [Fact]
    public async Task Parity_passes_against_both_references_then_finds_the_first_divergence()
    {
        var e = await Run("05-parity.ipynb");
        Assert.Contains("audio-short.safetensors: PASS, 39 compared", e.Text);
        Assert.Contains("llm-short.safetensors: PASS, 34 compared", e.Text); // model.rotary_emb included
        // the demo candidate with GELU in the adaptor: first failing path adapter.relu, its |a−b| heatmap
        Assert.Contains("first failing path: #37 adapter.relu; 3 rows fail in all", e.Text);
        Assert.Contains("first failing path (#37): <code>adapter.relu</code>", e.Html);
        Assert.Equal((39, 128), ZShape(FigureTitled(e, "|a−b| of adapter.relu [1, 39, 128]")));
        // the planted missing k_proj bias: a per-channel offset hint naming a bias
        Assert.Contains("hint (ChannelOffset):", e.Text);
        Assert.Contains("bias missing or doubled", e.Text);
        Assert.Equal("heatmap", TraceType(FigureTitled(e, "|a−b| of model.layers.0.self_attn.k_proj")));
        Assert.Contains("<details", e.Html); // the trace explorer
        // two backends in one process: the audio path on cpu against the reference backend, every module passing
        var backends = e.Cells.Single(c => c.Id == "backends-side-by-side");
        Assert.Matches("PASS: [1-9][0-9]* compared, 0 failing", backends.Html);
        Assert.Contains("encoder.blocks.0.attn.qk", backends.Html);
    }
}
