using System.Text.Json;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

public class ParityReportTests
{
    /// <summary>A dump pair with one of everything: pass, scaled, NaN, count mismatch, zero reference, missing on both sides.</summary>
    private static DumpComparison Sample()
    {
        var cand = new InMemoryTensorSource("cand.safetensors");
        var refs = new InMemoryTensorSource("ref.safetensors");
        var x = TestData.RandnTensor(1, 2, 3);
        refs.Add("encoder.conv1", x);
        cand.Add("encoder.conv1", Tensor.FromArray(x.ToFloatArray(), 2, 3));

        var y = TestData.RandnTensor(2, 4, 8);
        refs.Add("encoder.blocks.0.attn.qk", y);
        cand.Add("encoder.blocks.0.attn.qk", TestData.Map(y, v => v * 0.125f));

        var z = TestData.RandnTensor(3, 2, 2);
        refs.Add("encoder.blocks.0", z);
        cand.Add("encoder.blocks.0", TestData.Map(z, (v, i) => i == 3 ? float.NaN : v));

        refs.Add("encoder.blocks.1", TestData.RandnTensor(4, 1, 11, 4));
        cand.Add("encoder.blocks.1", TestData.RandnTensor(4, 1, 10, 4));

        refs.Add("encoder.blocks.2", Tensor.Zeros(DType.F32, 3));
        cand.Add("encoder.blocks.2", Tensor.FromArray([0f, 1f, 0f], 3));

        refs.Add("encoder.after_norm", TestData.RandnTensor(5, 2));
        cand.Add("debug.extra", TestData.RandnTensor(6, 2));
        return DumpComparer.Compare(cand, refs, new CompareOptions { Tolerance = Tolerance.F32 });
    }

    [Fact]
    public void JsonIsValidAndCarriesTheFields()
    {
        var d = Sample();
        using var doc = JsonDocument.Parse(ParityReport.ToJson(d));
        var root = doc.RootElement;
        Assert.False(root.GetProperty("passed").GetBoolean());
        Assert.Equal(d.FirstFailure!.Name, root.GetProperty("first_failure").GetString());
        Assert.Equal("encoder.blocks.0.attn.qk", root.GetProperty("first_failure").GetString());
        Assert.Equal("f32", root.GetProperty("tolerance").GetProperty("name").GetString());
        Assert.Equal(1e-5, root.GetProperty("tolerance").GetProperty("rtol").GetDouble());
        Assert.Equal(["encoder.after_norm"], root.GetProperty("missing_in_candidate").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["debug.extra"], root.GetProperty("missing_in_reference").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(5, root.GetProperty("compared").GetInt32());

        var rows = root.GetProperty("rows").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!);
        Assert.Equal(d.Rows.Count, rows.Count);

        var conv = rows["encoder.conv1"];
        Assert.Equal("pass", conv.GetProperty("status").GetString());
        Assert.Equal(0, conv.GetProperty("max_abs_diff").GetDouble());
        Assert.Equal([2, 3], conv.GetProperty("shape_candidate").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal("f32", conv.GetProperty("dtype_reference").GetString());
        Assert.Equal(JsonValueKind.Null, conv.GetProperty("hint").ValueKind);

        var qk = rows["encoder.blocks.0.attn.qk"];
        var qkRow = d.Rows.Single(r => r.Name == "encoder.blocks.0.attn.qk").Comparison!;
        Assert.Equal("fail", qk.GetProperty("status").GetString());
        Assert.Equal("scaled", qk.GetProperty("hint").GetString());
        Assert.Equal(0.125, qk.GetProperty("hint_value").GetDouble(), 9);
        Assert.Contains("scale 0.125 off", qk.GetProperty("hint_text").GetString());
        Assert.Equal(qkRow.MaxAbsDiff, qk.GetProperty("max_abs_diff").GetDouble());
        Assert.Equal(qkRow.MaxAbsIndex, qk.GetProperty("max_abs_index").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(qkRow.RelL2, qk.GetProperty("rel_l2").GetDouble());
        Assert.Equal(qkRow.Cosine, qk.GetProperty("cosine").GetDouble());
        Assert.Equal(qkRow.MeanAbsDiff, qk.GetProperty("mean_abs_diff").GetDouble());

        var nan = rows["encoder.blocks.0"];
        Assert.Equal(1, nan.GetProperty("nan_candidate").GetInt32());
        Assert.Equal(0, nan.GetProperty("nan_reference").GetInt32());
        Assert.Equal("nan_appeared", nan.GetProperty("hint").GetString());

        // Non-finite statistics are written as strings, so the document stays valid JSON.
        var counts = rows["encoder.blocks.1"];
        Assert.Equal("NaN", counts.GetProperty("max_abs_diff").GetString());
        Assert.Equal(JsonValueKind.Null, counts.GetProperty("max_abs_index").ValueKind);
        Assert.Equal("shape_mismatch", counts.GetProperty("hint").GetString());
        Assert.Equal("Infinity", rows["encoder.blocks.2"].GetProperty("rel_l2").GetString());

        var missing = rows["encoder.after_norm"];
        Assert.Equal("missing_in_candidate", missing.GetProperty("status").GetString());
        Assert.False(missing.GetProperty("failed").GetBoolean());
        Assert.Equal(JsonValueKind.Null, missing.GetProperty("shape_candidate").ValueKind);
        Assert.Equal([2], missing.GetProperty("shape_reference").EnumerateArray().Select(e => e.GetInt32()));

        // Named literals read back with the standard option.
        var back = JsonSerializer.Deserialize<double>("\"NaN\"", new JsonSerializerOptions { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals });
        Assert.True(double.IsNaN(back));
    }

    [Fact]
    public void SingleComparisonJson()
    {
        var b = TestData.RandnTensor(7, 5);
        var c = TensorComparer.Compare("x", TestData.Map(b, v => v + 0.5f), b, Tolerance.F32);
        using var doc = JsonDocument.Parse(ParityReport.ToJson(c));
        Assert.Equal("fail", doc.RootElement.GetProperty("status").GetString());
        Assert.Equal("constant_offset", doc.RootElement.GetProperty("hint").GetString());
    }

    [Fact]
    public void TableHasAlignedRowsInExecutionOrderAndASummary()
    {
        var d = Sample();
        var table = ParityReport.ToTable(d);
        var lines = table.Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        Assert.StartsWith("#", lines[0]);
        foreach (var h in new[] { "name", "shape", "max|Δ| @ index", "mean|Δ|", "relL2", "cosine", "status", "hint" })
            Assert.Contains(h, lines[0]);
        // Every data row starts its status column at the same offset as the header.
        int statusCol = lines[0].IndexOf("status", StringComparison.Ordinal);
        var dataLines = lines.Skip(2).TakeWhile(l => l.Length > 0).ToList();
        Assert.Equal(d.Rows.Count, dataLines.Count);
        for (int i = 0; i < dataLines.Count; i++)
        {
            Assert.StartsWith((i + 1).ToString(), dataLines[i].TrimStart());
            Assert.Contains(d.Rows[i].Name, dataLines[i]);
            string status = dataLines[i][statusCol..].Split(' ')[0];
            Assert.Equal(d.Rows[i].Status switch
            {
                RowStatus.Pass => "PASS",
                RowStatus.Fail => "FAIL",
                RowStatus.MissingInCandidate => "no-cand",
                RowStatus.MissingInReference => "no-ref",
                _ => "ERROR",
            }, status);
        }
        var qkLine = dataLines.Single(l => l.Contains(".qk"));
        var qk = d.Rows.Single(r => r.Name.EndsWith(".qk")).Comparison!;
        Assert.Contains($"{ParityFormat.Number(qk.MaxAbsDiff)} @ [{string.Join(",", qk.MaxAbsIndex!)}]", qkLine);
        Assert.Contains("[4,8] f32", qkLine);
        Assert.Contains("[1,10,4]≠[1,11,4]", table);
        Assert.Contains("first failure: #", table);
        Assert.Contains("encoder.blocks.0.attn.qk — candidate ≈ 0.125 × reference", table);
        Assert.Contains("5 compared, 4 failing, 1 missing in candidate, 1 missing in reference: FAILED", table);
        Assert.DoesNotContain(" \n", table);
    }

    [Fact]
    public void MarkdownEscapesPipesAndHasOneRowPerName()
    {
        var d = Sample();
        var md = ParityReport.ToMarkdown(d);
        var tableLines = md.Split('\n').Where(l => l.StartsWith('|')).ToList();
        Assert.Equal(d.Rows.Count + 2, tableLines.Count);
        Assert.Contains("max\\|Δ\\| @ index", tableLines[0]);
        Assert.StartsWith("### Parity: FAILED", md);
        // Every table line has the same number of unescaped cell separators.
        int Cells(string l) => l.Replace("\\|", "").Count(ch => ch == '|');
        Assert.All(tableLines, l => Assert.Equal(Cells(tableLines[0]), Cells(l)));
    }

    [Fact]
    public void SummaryLine()
    {
        var b = TestData.RandnTensor(8, 2, 2);
        var pass = TensorComparer.Compare("enc", b, b, Tolerance.F32);
        Assert.StartsWith("PASS enc [2,2] f32  max|Δ| 0 @ [0,0]", ParityReport.Summary(pass).Replace(", ", ","));
    }
}
