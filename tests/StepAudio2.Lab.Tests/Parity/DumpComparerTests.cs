using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Parity;

public class DumpComparerTests
{
    private static Tensor T(int seed, params int[] shape) => TestData.RandnTensor(seed, shape);

    private static (InMemoryTensorSource Candidate, InMemoryTensorSource Reference) Pair(params string[] names)
    {
        var cand = new InMemoryTensorSource("cand.safetensors");
        var refs = new InMemoryTensorSource("ref.safetensors");
        for (int i = 0; i < names.Length; i++)
        {
            var t = T(100 + i, 3, 4);
            refs.Add(names[i], t);
            cand.Add(names[i], Tensor.FromArray(t.ToFloatArray(), 3, 4));
        }
        return (cand, refs);
    }

    [Fact]
    public void NaturalOrderSortsNumericSegmentsAndPutsChildrenBeforeParents()
    {
        string[] names =
        [
            "encoder.blocks.10", "encoder.blocks.2.attn", "encoder.blocks.2", "encoder.blocks.2.attn.qk",
            "encoder.blocks.1", "adapter", "input.mel.0", "encoder.blocks.2.mlp", "model.layers.0",
        ];
        Assert.Equal(
        [
            "input.mel.0", "adapter", "encoder.blocks.1", "encoder.blocks.2.attn.qk", "encoder.blocks.2.attn",
            "encoder.blocks.2.mlp", "encoder.blocks.2", "encoder.blocks.10", "model.layers.0",
        ], DumpComparer.Order(names));
    }

    [Fact]
    public void SegmentComparisonIsNumericInsideSegmentsToo()
    {
        Assert.True(ModulePathComparer.Instance.Compare("layer2", "layer10") < 0);
        Assert.True(ModulePathComparer.Instance.Compare("conv1", "conv2") < 0);
        Assert.True(ModulePathComparer.Instance.Compare("a.9", "a.10") < 0);
        Assert.True(ModulePathComparer.Instance.Compare("a.b", "a.10") > 0); // digits sort before letters, as in ordinal order
        Assert.Equal(0, ModulePathComparer.Instance.Compare("a.1", "a.1"));
    }

    [Fact]
    public void ExplicitExecutionOrderWinsAndUnlistedNamesFollow()
    {
        var (cand, refs) = Pair("encoder.conv1", "encoder.conv2", "encoder.blocks.0", "encoder.after_norm", "extra.9", "extra.10");
        var d = DumpComparer.Compare(cand, refs, new CompareOptions
        {
            ExecutionOrder = ["encoder.conv1", "encoder.conv2", "encoder.blocks.0", "encoder.after_norm", "not.in.dump"],
        });
        Assert.Equal(["encoder.conv1", "encoder.conv2", "encoder.blocks.0", "encoder.after_norm", "extra.9", "extra.10"], d.Rows.Select(r => r.Name));
        Assert.Equal([1, 2, 3, 4, 5, 6], d.Rows.Select(r => r.Ordinal));
        Assert.True(d.AllPassed);
        Assert.Equal(6, d.Compared);
        Assert.Null(d.FirstFailure);
    }

    [Fact]
    public void ParseOrderReadsTheMetadataArray()
    {
        Assert.Equal(["input.mel.0", "encoder.conv1"], DumpComparer.ParseOrder("[\"input.mel.0\", \"encoder.conv1\"]", "ref.safetensors"));
        var notArray = Assert.Throws<LabDataException>(() => DumpComparer.ParseOrder("{\"a\": 1}", "ref.safetensors"));
        Assert.Equal("ref.safetensors", notArray.FilePath);
        Assert.Equal(DumpComparer.OrderMetadataKey, notArray.Key);
        var notString = Assert.Throws<LabDataException>(() => DumpComparer.ParseOrder("[\"a\", 3]", "ref.safetensors"));
        Assert.Contains("element 1", notString.Message);
        var broken = Assert.Throws<LabDataException>(() => DumpComparer.ParseOrder("[\"a\"", "ref.safetensors"));
        Assert.Contains("not valid JSON", broken.Message);
    }

    [Fact]
    public void MissingOnEachSideIsListedAndOnlyFailsUnderRequireAll()
    {
        var (cand, refs) = Pair("encoder.blocks.0", "encoder.blocks.1");
        refs.Add("encoder.blocks.2", T(1, 3, 4));
        cand.Add("debug.extra", T(2, 3, 4));

        var lax = DumpComparer.Compare(cand, refs);
        Assert.Equal(["encoder.blocks.2"], lax.MissingInCandidate);
        Assert.Equal(["debug.extra"], lax.MissingInReference);
        Assert.Equal(4, lax.Rows.Count);
        Assert.Equal(RowStatus.MissingInCandidate, lax.Rows.Single(r => r.Name == "encoder.blocks.2").Status);
        Assert.Equal(RowStatus.MissingInReference, lax.Rows.Single(r => r.Name == "debug.extra").Status);
        Assert.True(lax.AllPassed);
        Assert.Null(lax.FirstFailure);
        Assert.Equal(2, lax.Compared);

        var strict = DumpComparer.Compare(cand, refs, new CompareOptions { RequireAll = true });
        Assert.False(strict.AllPassed);
        Assert.Equal(2, strict.Failed);
        Assert.Equal("debug.extra", strict.FirstFailure!.Name); // "debug" sorts before "encoder"
        Assert.True(strict.Rows.Single(r => r.Name == "encoder.blocks.2").IsFailure);
        Assert.Equal(DType.F32, strict.Rows.Single(r => r.Name == "encoder.blocks.2").ReferenceInfo!.DType);
    }

    [Fact]
    public void FirstFailureIsTheEarliestInExecutionOrder()
    {
        var (cand, refs) = Pair("encoder.blocks.1", "encoder.blocks.2", "encoder.blocks.10", "encoder.blocks.3");
        // Replace two candidates with broken ones; blocks.10 is written first but runs last.
        var cand2 = new InMemoryTensorSource("cand.safetensors");
        foreach (var info in cand.Tensors)
        {
            var t = cand.Get(info.Name);
            if (info.Name is "encoder.blocks.10" or "encoder.blocks.3") t = TestData.Map(t, x => x * 0.5f);
            cand2.Add(info.Name, t);
        }
        var d = DumpComparer.Compare(cand2, refs);
        Assert.False(d.AllPassed);
        Assert.Equal(2, d.Failed);
        Assert.Equal("encoder.blocks.3", d.FirstFailure!.Name);
        Assert.Equal(3, d.FirstFailure.Ordinal);
        Assert.Equal(RowStatus.Fail, d.FirstFailure.Status);
        Assert.Equal(HintKind.Scaled, d.FirstFailure.Comparison!.Hint.Kind);
        Assert.Equal(["encoder.blocks.1", "encoder.blocks.2", "encoder.blocks.3", "encoder.blocks.10"], d.Rows.Select(r => r.Name));
    }

    [Fact]
    public void PerNameToleranceOverrideByGlobLastMatchWins()
    {
        var cand = new InMemoryTensorSource();
        var refs = new InMemoryTensorSource();
        var qk = T(3, 4, 4);
        refs.Add("encoder.blocks.0.attn.qk", qk);
        cand.Add("encoder.blocks.0.attn.qk", qk.To(DType.BF16));
        var h = T(4, 4, 4);
        refs.Add("encoder.blocks.0", h);
        cand.Add("encoder.blocks.0", h.To(DType.BF16));

        // the default (auto) judges a bf16 side by the bf16 tier; the strict f32 tier fails both
        Assert.Equal(0, DumpComparer.Compare(cand, refs).Failed);
        Assert.All(DumpComparer.Compare(cand, refs).Rows, r => Assert.Equal("bf16", r.Rule));
        var plain = DumpComparer.Compare(cand, refs, new CompareOptions { Tolerance = Tolerance.F32 });
        Assert.Equal(2, plain.Failed);

        var options = new CompareOptions
        {
            Tolerance = Tolerance.F32,
            Overrides = [new("*.attn.*", Tolerance.Exact), new("*.qk", Tolerance.BF16)],
        };
        Assert.Same(Tolerance.BF16, options.ToleranceFor("encoder.blocks.0.attn.qk"));
        Assert.Same(Tolerance.Exact, options.ToleranceFor("encoder.blocks.0.attn.out"));
        Assert.Same(Tolerance.F32, options.ToleranceFor("encoder.blocks.0"));
        var d = DumpComparer.Compare(cand, refs, options);
        var qkRow = d.Rows.Single(r => r.Name.EndsWith(".qk"));
        Assert.Equal(RowStatus.Pass, qkRow.Status);
        Assert.Same(Tolerance.BF16, qkRow.Tolerance);
        Assert.Equal(RowStatus.Fail, d.Rows.Single(r => r.Name == "encoder.blocks.0").Status);
        Assert.Equal("encoder.blocks.0", d.FirstFailure!.Name);
    }

    [Fact]
    public void IncludeAndExcludeGlobs()
    {
        var (cand, refs) = Pair("encoder.conv1", "encoder.blocks.0", "encoder.blocks.0.attn.qk", "model.layers.0", "input.mel.0");
        var d = DumpComparer.Compare(cand, refs, new CompareOptions { Include = ["encoder.*"], Exclude = ["*.qk"] });
        Assert.Equal(["encoder.blocks.0", "encoder.conv1"], d.Rows.Select(r => r.Name));
    }

    [Theory]
    [InlineData("encoder.blocks.7.attn.qk", "*.qk", true)]
    [InlineData("encoder.blocks.7.attn.qk", "encoder.*.attn.*", true)]
    [InlineData("encoder.blocks.7.attn", "*.qk", false)]
    [InlineData("model.layers.3", "model.layers.?", true)]
    [InlineData("model.layers.13", "model.layers.?", false)]
    [InlineData("abc", "*", true)]
    [InlineData("", "*", true)]
    [InlineData("a*b", "a*b", true)]
    [InlineData("aXbYb", "a*b", true)]
    [InlineData("aXbYc", "a*b", false)]
    public void Globs(string name, string pattern, bool expected) => Assert.Equal(expected, NameGlob.IsMatch(name, pattern));

    [Fact]
    public void UnreadableTensorIsAnErrorRowNotACrash()
    {
        var (cand, refs) = Pair("a.0", "a.1");
        var broken = new InMemoryTensorSource("cand.safetensors");
        broken.Add("a.0", cand.Get("a.0")).AddUnreadable("a.1", cand.Get("a.1"));
        var d = DumpComparer.Compare(broken, refs);
        var row = d.Rows.Single(r => r.Name == "a.1");
        Assert.Equal(RowStatus.Error, row.Status);
        Assert.True(row.IsFailure);
        Assert.Contains("cand.safetensors [a.1]", row.Error);
        Assert.False(d.AllPassed);
    }

    [Fact]
    public void EmptyIntersectionNeverPasses()
    {
        var cand = new InMemoryTensorSource().Add("x", T(1, 2));
        var refs = new InMemoryTensorSource().Add("y", T(1, 2));
        var d = DumpComparer.Compare(cand, refs);
        Assert.Equal(0, d.Compared);
        Assert.False(d.AllPassed);
        Assert.Null(d.FirstFailure);
    }

    [Fact]
    public void ProgressIsReportedForEveryRow()
    {
        var (cand, refs) = Pair("a", "b", "c");
        var seen = new List<(int, int, string)>();
        var d = DumpComparer.Compare(cand, refs, new CompareOptions { Progress = new SyncProgress(seen.Add) });
        Assert.Equal([(1, 3, "a"), (2, 3, "b"), (3, 3, "c")], seen);
        Assert.True(d.AllPassed);
    }

    /// <summary>Calls back synchronously (Progress&lt;T&gt; posts to the thread pool).</summary>
    private sealed class SyncProgress(Action<(int, int, string)> report) : IProgress<(int Done, int Total, string Name)>
    {
        public void Report((int Done, int Total, string Name) value) => report(value);
    }
}
