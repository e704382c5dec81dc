using System.Text.Json;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Safetensors;

namespace StepAudio2.Lab.Tests.Parity;

/// <summary>
/// <see cref="QuantizationReport"/> on two synthetic traces (logits with a +1000 offset row that a naive softmax overflows
/// on, a [1, T, V] candidate against a [T, V] reference, greedy ids parting at step 3, two layers of modules), checked
/// against reference-data/quant_compare.py (torch kl_div on float64 log-softmaxes) run on the same files.
/// </summary>
public sealed class QuantizationReportTests
{
    private const int T = 7, V = 4099;

    private static (string Candidate, string Reference) WriteTraces(TempDir dir)
    {
        var rng = new Random(15);
        var refLogits = new float[T * V];
        var candLogits = new float[T * V];
        for (int t = 0; t < T; t++)
        {
            float offset = t == 2 ? 1000f : t == 4 ? -800f : 0f;
            float scale = t == 5 ? 40f : 6f; // a sharp row: the tail's probabilities underflow in float32
            for (int v = 0; v < V; v++)
            {
                float x = (float)(rng.NextDouble() * 2 - 1) * scale + offset;
                refLogits[t * V + v] = x;
                candLogits[t * V + v] = x + (float)(rng.NextDouble() * 2 - 1) * (t == 6 ? 3f : 0.2f);
            }
        }
        var tensors = new Dictionary<string, Tensor>[2];
        for (int side = 0; side < 2; side++)
        {
            var d = new Dictionary<string, Tensor>
            {
                ["input.ids"] = Tensor.FromArray(Enumerable.Range(0, T).Select(i => (long)i).ToArray(), T),
                ["output.greedy_ids"] = Tensor.FromArray(side == 0 ? new long[] { 5, 6, 7, 9, 9 } : new long[] { 5, 6, 7, 8, 9 }, 5),
                ["lm_head"] = side == 0 ? Tensor.FromArray(candLogits, 1, T, V) : Tensor.FromArray(refLogits, T, V),
            };
            var r = new Random(3);
            foreach (var name in new[] { "model.embed_tokens", "model.layers.0.self_attn.q_proj", "model.layers.0", "model.layers.1.mlp.down_proj", "model.layers.1", "model.norm" })
            {
                var x = new float[64];
                for (int i = 0; i < x.Length; i++) x[i] = (float)(r.NextDouble() - 0.5);
                if (side == 0 && name != "model.embed_tokens")
                    for (int i = 0; i < x.Length; i++) x[i] += (float)((i % 7 - 3) * 0.001 * (name.Contains("layers.1") ? 4 : 1));
                d[name] = Tensor.FromArray(x, 1, 4, 16);
            }
            tensors[side] = d;
        }
        string c = dir.File("cand.safetensors"), rf = dir.File("ref.safetensors");
        SafetensorsWriter.Write(c, tensors[0]);
        // the reference records its execution order, as steplab trace does: lm_head last
        var order = tensors[1].Keys.Where(k => k != "lm_head").Append("lm_head").ToList();
        SafetensorsWriter.Write(rf, tensors[1], new Dictionary<string, string> { [DumpComparer.OrderMetadataKey] = JsonSerializer.Serialize(order) });
        return (c, rf);
    }

    [PythonFact]
    public void KlTop1DivergenceAndRelL2MatchTorch()
    {
        using var dir = TestPaths.Temp();
        var (cp, rp) = WriteTraces(dir);
        QuantizationComparison q;
        using (var cand = TensorFiles.Open(cp))
        using (var reference = TensorFiles.Open(rp))
            q = QuantizationReport.Compare(cand, reference);

        var (code, output) = PythonFactAttribute.Run(Path.Combine(TestPaths.ReferenceData, "quant_compare.py"), cp, rp);
        Assert.True(code == 0, output);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        AssertMatchesPython(q, root);

        Assert.Equal(V, q.Vocab);
        Assert.All(q.Positions!, p => Assert.True(double.IsFinite(p.KL) && p.KL >= 0, $"position {p.Position}: KL {p.KL}"));
        Assert.True(q.Positions![6].KL > 10 * q.Positions[0].KL, "the noisier row has the larger KL");
        Assert.Equal("model.layers.0.self_attn.q_proj", q.FirstDeparture!.Name);
        Assert.Equal("lm_head", q.Modules[^1].Name);
        Assert.Equal([("model.layers", 0), ("model.layers", 1)], q.Layers.Select(l => (l.Stack, l.Layer)));
        Assert.True(q.Layers[1].OutputRelL2 > q.Layers[0].OutputRelL2, "growth through the layers");
        Assert.Equal(q.Modules.Single(m => m.Name == "model.layers.1").RelL2, q.Layers[1].OutputRelL2);
        Assert.Equal(new GreedyDivergence(5, 5, 3, 8, 9), q.Greedy);
        Assert.Empty(q.Notes);
        // the JSON carries the same numbers
        using var json = JsonDocument.Parse(QuantizationReport.ToJson(q));
        Assert.Equal(3, json.RootElement.GetProperty("greedy").GetProperty("first_divergence").GetInt32());
        Assert.Equal(q.MeanKL, json.RootElement.GetProperty("logits").GetProperty("mean_kl").GetDouble());
    }

    /// <summary>KL within 1e-9 relative (float64 sums in another order), argmaxes and first divergence exact, rel-L2 within 1e-9.</summary>
    internal static void AssertMatchesPython(QuantizationComparison q, JsonElement root)
    {
        var kl = root.GetProperty("kl").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var rt = root.GetProperty("reference_top1").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        var ct = root.GetProperty("candidate_top1").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal(kl.Length, q.Positions!.Count);
        for (int t = 0; t < kl.Length; t++)
        {
            var p = q.Positions[t];
            Assert.True(Math.Abs(p.KL - kl[t]) <= 1e-12 + 1e-9 * Math.Abs(kl[t]), $"position {t}: KL {p.KL:R} vs torch {kl[t]:R}");
            Assert.Equal(rt[t], p.ReferenceTop1);
            Assert.Equal(ct[t], p.CandidateTop1);
        }
        var first = root.GetProperty("first_divergence");
        Assert.Equal(first.ValueKind == JsonValueKind.Null ? null : first.GetInt32(), q.Greedy!.Step);
        var rel = root.GetProperty("rel_l2").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
        Assert.Equal(rel.Keys.Order(StringComparer.Ordinal), q.Modules.Select(m => m.Name).Order(StringComparer.Ordinal));
        foreach (var m in q.Modules)
            Assert.True(Math.Abs(m.RelL2 - rel[m.Name]) <= 1e-9 * Math.Max(rel[m.Name], 1e-300) + 1e-15, $"{m.Name}: rel-L2 {m.RelL2:R} vs torch {rel[m.Name]:R}");
    }

    [Fact]
    public void IdenticalLogitsGiveZeroKlAndFullAgreement()
    {
        var x = Tensor.FromArray(Enumerable.Range(0, 3 * 50).Select(i => (float)Math.Sin(i) * 20).ToArray(), 3, 50);
        var (positions, vocab) = QuantizationReport.NextTokenAgreement(x, x);
        Assert.Equal(50, vocab);
        Assert.All(positions, p => { Assert.Equal(0, p.KL); Assert.True(p.Top1Agrees); });
    }

    [Fact]
    public void MismatchedOrMalformedLogitsAreBadInputNamingFileAndKey()
    {
        var a = Tensor.FromArray(new float[2 * 10], 2, 10);
        var b = Tensor.FromArray(new float[3 * 10], 3, 10);
        var e = Assert.Throws<LabDataException>(() => QuantizationReport.NextTokenAgreement(a, b, "q4.safetensors", "ref.safetensors"));
        Assert.Contains("q4.safetensors", e.Message);
        Assert.Contains("lm_head", e.Message);
        Assert.Contains("[3, 10]", e.Message);
        var c = Tensor.FromArray(new float[2 * 10], 2, 1, 10);
        e = Assert.Throws<LabDataException>(() => QuantizationReport.NextTokenAgreement(c, c, "x.safetensors", "y.safetensors"));
        Assert.Contains("[2, 1, 10]", e.Message);
    }

    [Fact]
    public void GreedyDivergenceCountsAnEarlyStopAsDivergence()
    {
        Assert.Null(QuantizationReport.Diverge([1, 2, 3], [1, 2, 3]).Step);
        Assert.Equal(new GreedyDivergence(3, 2, 2, 3, null), QuantizationReport.Diverge([1, 2], [1, 2, 3]));
        Assert.Equal(new GreedyDivergence(2, 2, 0, 1, 4), QuantizationReport.Diverge([4, 2], [1, 2]));
    }

    [Fact]
    public void MissingLogitsAndGreedyIdsAreNotedNotFatal()
    {
        using var dir = TestPaths.Temp();
        var t = new Dictionary<string, Tensor> { ["model.layers.0"] = Tensor.FromArray(new float[] { 1, 2, 3 }, 3) };
        string p = dir.File("a.safetensors");
        SafetensorsWriter.Write(p, t);
        using var a = TensorFiles.Open(p);
        var q = QuantizationReport.Compare(a, a);
        Assert.Null(q.Positions);
        Assert.Null(q.Greedy);
        Assert.Contains(q.Notes, n => n.Contains("--capture lm_head"));
        Assert.Contains(q.Notes, n => n.Contains("--greedy"));
        Assert.Null(q.FirstDeparture);
        Assert.Contains("every compared module is bit-identical", QuantizationReport.ToTable(q));
    }
}
