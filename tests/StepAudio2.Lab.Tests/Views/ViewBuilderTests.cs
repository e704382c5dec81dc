using System.Buffers.Binary;
using System.IO.Compression;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The view builders on their own: parity view from the demo candidate, attention maps from reference scores, stats, PNG, plotly resource.</summary>
public sealed class ViewBuilderTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string AudioShort => Path.Combine(Tiny, "dumps", "audio-short.safetensors");

    [Fact]
    public void ParityViewShowsFailAndTheFirstFailingPathOfTheGeluCandidate()
    {
        using var candidate = TensorFiles.Open(Path.Combine(Tiny, "demo", "candidate-gelu-adaptor.safetensors"));
        using var reference = TensorFiles.Open(AudioShort);
        var order = DumpFile.ReadOrder(((SafetensorsFile)reference).Metadata);
        var c = DumpComparer.Compare(candidate, reference, new CompareOptions { ExecutionOrder = order });
        var html = ParityView.Render(c);
        Assert.Contains("<p class=\"verdict fail\">FAIL: 39 compared, 3 failing", html);
        Assert.Contains("first failing path (#37): <code>adapter.relu</code>", html);
        Assert.Contains("<tr class=\"fail\" id=\"first-failure\"><td>37</td><td class=\"path\">adapter.relu</td>", html);
        Assert.Equal(36, System.Text.RegularExpressions.Regex.Matches(html, "<tr class=\"pass\"").Count);
        Assert.Contains("<td class=\"status\">FAIL</td>", html);

        var fig = ParityView.FirstFailureHeatmap(c, candidate, reference)!;
        var z = fig.Data[0]!["z"]!.AsArray();
        var shape = reference.Get("adapter.relu").Shape; // [1, T, C]
        Assert.Equal(shape[0] * shape[1], z.Count);
        Assert.Equal(shape[2], z[0]!.AsArray().Count);
        // the largest cell is the comparison's max |a−b| (4 significant digits written)
        double max = z.SelectMany(r => r!.AsArray()).Max(v => (double)v!);
        Assert.Equal(c.FirstFailure!.Comparison!.MaxAbsDiff, max, 3);
    }

    [Fact]
    public void ParityViewPassesForIdenticalDumps()
    {
        using var a = TensorFiles.Open(AudioShort);
        using var b = TensorFiles.Open(AudioShort);
        var c = DumpComparer.Compare(a, b);
        var html = ParityView.Render(c);
        Assert.Contains("<p class=\"verdict pass\">PASS: 39 compared, 0 failing", html);
        Assert.DoesNotContain("first failing path", html);
        Assert.Null(ParityView.FirstFailureHeatmap(c, a, b));
    }

    [Fact]
    public void AttentionMapsAreSoftmaxOverTheValidKeysOfTheReferenceScores()
    {
        using var reference = SafetensorsFile.Open(AudioShort);
        var qk = reference.Get("encoder.blocks.0.attn.qk");
        var maps = AttentionMaps.FromScores("encoder.blocks.0.attn.qk", qk);
        Assert.Equal(qk.Shape[1], maps.Heads);
        var s = qk.ToFloatArray();
        int t = qk.Shape[3], valid = 0;
        for (int k = 0; k < t; k++) if (s[k] > -1e9f) valid++;
        Assert.Equal(valid, maps.Frames);
        for (int h = 0; h < maps.Heads; h++)
            for (int q = 0; q < maps.Frames; q += 7)
            {
                var row = maps.Head(h).Slice(q * maps.Frames, maps.Frames).ToArray();
                Assert.Equal(1.0, row.Sum(x => (double)x), 5);
                // the ratio of two probabilities is exp of the score difference
                int k0 = 0, k1 = maps.Frames - 1;
                double expected = s[(h * t + q) * t + k0] - s[(h * t + q) * t + k1];
                Assert.Equal(expected, Math.Log(row[k0]) - Math.Log(row[k1]), 3);
            }
        var (pooled, n) = maps.Pooled(0, 16);
        Assert.True(n <= 16);
        Assert.Equal(n * n, pooled.Length);

        // pooled thumbnails keep their axes in frames (cells placed at frame positions) and say that they are downsampled
        int per = maps.PoolStride(16);
        Assert.True(per > 1, $"{maps.Frames} frames should need pooling to 16 cells");
        var grid = AttentionView.LayerGrid(maps, "g", gridSize: 16);
        var trace0 = grid.Data[0]!.AsObject();
        Assert.Equal(per, (int)trace0["dx"]!);
        Assert.Equal(per, (int)trace0["dy"]!);
        double lastCentre = (double)trace0["x0"]! + (n - 1) * per;
        Assert.InRange(lastCentre, maps.Frames - per, maps.Frames + per / 2.0); // the last cell may be partial
        Assert.Contains($"{maps.Frames} valid frames; downsampled: {per}×{per} frames per cell", grid.Layout["title"]!["text"]!.ToString());
        var full = AttentionView.LayerGrid(maps, "f", gridSize: maps.Frames);
        Assert.Null(full.Data[0]!["dx"]);
        Assert.DoesNotContain("downsampled", full.Layout["title"]!["text"]!.ToString());
    }

    [Fact]
    public void TensorStatsCountNonFiniteAndUseFiniteValues()
    {
        var st = TensorStats.Of(Tensor.FromArray(new float[] { 1, 2, 3, 4, float.NaN, float.PositiveInfinity }, 2, 3));
        Assert.Equal([2, 3], st.Shape);
        Assert.Equal(DType.F32, st.DType);
        Assert.Equal((1.0, 4.0, 2.5), (st.Min, st.Max, st.Mean));
        Assert.Equal(Math.Sqrt(1.25), st.Std, 12);
        Assert.Equal((1L, 1L, 6L), (st.NaN, st.Inf, st.Count));
        var html = TensorSummaryView.Render("x", st);
        Assert.Contains("<td>[2, 3]</td><td>1</td><td>4</td><td>2.5</td>", html);
        Assert.Contains("<td class=\"bad\">1</td>", html);
    }

    [Fact]
    public void TokenClassesFollowTheIdRanges()
    {
        Assert.Equal(TokenClass.Text, TokenStream.Classify(198));
        Assert.Equal(TokenClass.Special, TokenStream.Classify(StepAudioTokenizer.Bot));
        Assert.Equal(TokenClass.Special, TokenStream.Classify(StepAudioTokenizer.AudioStart));
        Assert.Equal(TokenClass.AudioPatch, TokenStream.Classify(StepAudioTokenizer.AudioPatch));
        Assert.Equal(TokenClass.Special, TokenStream.Classify(StepAudioTokenizer.TtsPad));
        Assert.Equal(TokenClass.SpeechCode, TokenStream.Classify(StepAudioTokenizer.AudioCodeBase));
    }

    [Fact]
    public void SpectrogramPngHasOnePixelPerFrameAndBin()
    {
        using var reference = SafetensorsFile.Open(AudioShort);
        var mel = reference.Get("input.mel.0");
        var s = SpectrogramData.FromChunks([mel, mel]);
        Assert.Equal([0, mel.Shape[1]], s.ChunkStarts);
        var html = SpectrogramView.Image(s);
        var b64 = System.Text.RegularExpressions.Regex.Match(html, "data:image/png;base64,([A-Za-z0-9+/=]+)").Groups[1].Value;
        var png = Convert.FromBase64String(b64);
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, png[..8]);
        Assert.Equal("IHDR"u8.ToArray(), png[12..16]);
        int w = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)), h = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20));
        Assert.Equal((2 * mel.Shape[1], 128), (w, h));
        // a palette image (the ramp has fewer than 256 steps): PLTE follows IHDR, IDAT inflates to 1 + w bytes per row
        Assert.Equal(3, png[25]);
        int plte = 8 + 25, plteLen = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(plte));
        Assert.Equal("PLTE"u8.ToArray(), png[(plte + 4)..(plte + 8)]);
        Assert.True(plteLen % 3 == 0 && plteLen is > 3 and <= 768, $"PLTE of {plteLen} bytes");
        var palette = png.AsSpan(plte + 8, plteLen).ToArray();
        int idat = plte + 12 + plteLen;
        int len = BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(idat));
        Assert.Equal("IDAT"u8.ToArray(), png[(idat + 4)..(idat + 8)]);
        using var z = new ZLibStream(new MemoryStream(png, idat + 8, len), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        Assert.Equal(h * (1 + w), raw.Length);
        var px = raw.ToArray();
        // the second chunk's first column is the red boundary marker on every row
        for (int y = 0; y < h; y++)
        {
            int i = px[y * (1 + w) + 1 + mel.Shape[1]];
            Assert.Equal(new byte[] { 255, 0, 0 }, palette.AsSpan(3 * i, 3).ToArray());
        }
        Assert.Equal("IEND"u8.ToArray(), png[^8..^4]);
    }

    [Fact]
    public void PlotlyResourceIsReadFromTheAssemblyAndBadFilesAreTyped()
    {
        var js = PlotlyScript.ReadFromAssembly(Path.Combine(AppContext.BaseDirectory, "Plotly.NET.dll"));
        Assert.StartsWith("/**\n* plotly.js v2.28.0", js);
        Assert.True(js.Length > 3_000_000);
        Assert.DoesNotContain("</script", PlotlyScript.ForInlineScript(js), StringComparison.OrdinalIgnoreCase);

        using var tmp = TestPaths.Temp();
        File.WriteAllBytes(tmp.File("junk.dll"), [1, 2, 3, 4, 5]);
        var e = Assert.Throws<LabDataException>(() => PlotlyScript.ReadFromAssembly(tmp.File("junk.dll")));
        Assert.Contains("junk.dll", e.Message);
        var own = typeof(PlotlyScript).Assembly.Location;
        var missing = Assert.Throws<LabDataException>(() => PlotlyScript.ReadFromAssembly(own));
        Assert.Contains(PlotlyScript.ResourceName, missing.Message);
    }
}

/// <summary>A clip longer than 25 s: two chunks side by side in the heatmap with the boundary marked.</summary>
public sealed class TwoChunkReportTests
{
    [Fact]
    public void LongClipShowsBothChunksWithTheBoundary()
    {
        using var tmp = TestPaths.Temp();
        var a = StepAudio2.Lab.Audio.AudioInput.Load16k(Path.Combine(TestPaths.SharedAudio, "mmau_test.wav"));
        var b = StepAudio2.Lab.Audio.AudioInput.Load16k(Path.Combine(TestPaths.SharedAudio, "music_playing_followed_by_a_woman_speaking.wav"));
        var wav = a.Concat(b).Concat(a).Take(27 * 16000).ToArray();
        Assert.Equal(27 * 16000, wav.Length);
        StepAudio2.Lab.Audio.WavWriter.Write(tmp.File("long.wav"), wav, 16000);
        var (code, stdout, err) = StepAudio2.Lab.Tests.Cli.InspectCliTests.Run("report", "--model", Path.Combine(TestPaths.ReferenceData, "tiny"),
            "--tokenizer", TestPaths.SharedModel, "--audio", tmp.File("long.wav"), "--max-tokens", "1", "--out", tmp.File("r.html"));
        Assert.True(code == StepAudio2.Lab.Cli.StepLabCli.Ok, err + stdout);
        var html = File.ReadAllText(tmp.File("r.html"));
        var fig = ReportCommandTests.Figure(html, "spectrogram");
        // 25 s + 2 s chunks: 2500 + 200 frames (+ the 479-sample tail pad frames per chunk)
        var z = fig["data"]![0]!["z"]!.AsArray();
        int frames0 = StepAudio2.Lab.Audio.Mel.LogMelFrontend.FrameCount(25 * 16000), frames1 = StepAudio2.Lab.Audio.Mel.LogMelFrontend.FrameCount(2 * 16000);
        Assert.Equal(frames0 + frames1, z[0]!.AsArray().Count);
        var line = fig["layout"]!["shapes"]!.AsArray().Single()!;
        Assert.Equal(frames0 * 0.01, (double)line["x0"]!, 6);
        Assert.Contains("2 chunk(s)", fig["layout"]!["title"]!["text"]!.ToString());
        Assert.DoesNotContain("class=\"verdict", html);
    }
}
