using System.Text.Json;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary><c>steplab compare</c> on the Python reference dumps: passes identical and float64 dumps, catches planted bugs.</summary>
public sealed class CompareCliTests
{
    private static string Tiny(params string[] p) => Path.Combine([TestPaths.ReferenceData, "tiny", .. p]);
    private static string Reference => Tiny("dumps", "audio-short.safetensors");

    [Fact]
    public void IdenticalDumpsPass()
    {
        var (code, stdout, _) = InspectCliTests.Run("compare", Reference, Reference);
        Assert.Equal(StepLabCli.Ok, code);
        Assert.Contains("PASSED", stdout.ToUpperInvariant());
    }

    [Fact]
    public void IndependentFloat64RunPassesTheF32Tier()
    {
        var (code, _, err) = InspectCliTests.Run("compare", Tiny("demo", "candidate-float64.safetensors"), Reference);
        Assert.True(code == StepLabCli.Ok, err);
    }

    [Fact]
    public void GeluInTheAdaptorFailsFirstAtAdapterRelu()
    {
        var (code, stdout, _) = InspectCliTests.Run("compare", Tiny("demo", "candidate-gelu-adaptor.safetensors"), Reference, "--json");
        Assert.Equal(StepLabCli.Failed, code);
        using var doc = JsonDocument.Parse(stdout);
        Assert.False(doc.RootElement.GetProperty("passed").GetBoolean());
        Assert.Equal("adapter.relu", doc.RootElement.GetProperty("first_failure").GetString());
    }

    [Fact]
    public void AlsoShowsSeveralCandidatesSideBySideAgainstOneReference()
    {
        // the three-way view: a float64 re-implementation (passes) and a port with GELU for ReLU (departs at adapter.relu)
        var (code, stdout, _) = InspectCliTests.Run("compare", Tiny("demo", "candidate-float64.safetensors"), Reference,
            "--also", Tiny("demo", "candidate-gelu-adaptor.safetensors"));
        Assert.Equal(StepLabCli.Failed, code);
        var header = stdout.Split('\n')[0];
        Assert.Contains("candidate-float64 relL2", header);
        Assert.Contains("candidate-gelu-adaptor relL2", header);
        var relu = stdout.Split('\n').Single(l => l.StartsWith("adapter.relu ", StringComparison.Ordinal));
        Assert.Matches(@"pass\s+\S+\s+FAIL$", relu);
        Assert.Matches(@"candidate-float64 \(.*\): \d+ compared, 0 failing: PASSED", stdout);
        Assert.Matches(@"candidate-gelu-adaptor \(.*\): \d+ compared, \d+ failing: FAILED; first departure #\d+ adapter\.relu", stdout);
        // both passing → exit 0; JSON is one object per candidate
        var (ok, json, _) = InspectCliTests.Run("compare", Tiny("demo", "candidate-float64.safetensors"), Reference, "--also", Reference, "--json");
        Assert.Equal(StepLabCli.Ok, ok);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(2, doc.RootElement.GetArrayLength());
    }

    [Fact]
    public void APlantedDifferenceIsFoundAtItsPathAndIndex()
    {
        using var tmp = TestPaths.Temp();
        var candidate = tmp.File("candidate.safetensors");
        using (var reference = SafetensorsFile.Open(Reference))
        {
            var order = DumpFile.ReadOrder(reference.Metadata)!;
            var entries = order.Select(name =>
            {
                var t = reference.Get(name);
                if (name != "encoder.blocks.1.attn.value") return (name, t);
                var data = t.ToFloatArray();
                data[(0 * 155 + 42) * 32 + 7] += 0.25f; // index [0, 42, 7]
                return (name, Tensor.FromArray(data, t.Shape));
            });
            DumpFile.Save(candidate, entries);
        }
        var (code, stdout, _) = InspectCliTests.Run("compare", candidate, Reference, "--json");
        Assert.Equal(StepLabCli.Failed, code);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("encoder.blocks.1.attn.value", doc.RootElement.GetProperty("first_failure").GetString());
        var row = doc.RootElement.GetProperty("rows").EnumerateArray().First(r => r.GetProperty("name").GetString() == "encoder.blocks.1.attn.value");
        Assert.Equal([0, 42, 7], row.GetProperty("max_abs_index").EnumerateArray().Select(e => e.GetInt32()).ToArray());
        Assert.Equal(0.25, row.GetProperty("max_abs_diff").GetDouble(), 1e-6);
        // text report names the first failing module path
        var (_, table, _) = InspectCliTests.Run("compare", candidate, Reference);
        Assert.Contains("first failure: #", table);
        Assert.Contains("encoder.blocks.1.attn.value", table);
    }

    [Fact]
    public void RequireAllFailsOnMissingTensorsAndTolerancesApply()
    {
        using var tmp = TestPaths.Temp();
        var partial = tmp.File("partial.safetensors");
        using (var reference = SafetensorsFile.Open(Reference))
            DumpFile.Save(partial, [("adapter", reference.Get("adapter"))]);
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("compare", partial, Reference).Code);
        Assert.Equal(StepLabCli.Failed, InspectCliTests.Run("compare", partial, Reference, "--require-all").Code);
        // a loose tier lets the GELU bug through only when the tolerance is absurdly wide
        Assert.Equal(StepLabCli.Failed, InspectCliTests.Run("compare", Tiny("demo", "candidate-gelu-adaptor.safetensors"), Reference, "--tier", "bf16").Code);
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("compare", Tiny("demo", "candidate-gelu-adaptor.safetensors"), Reference, "--rtol", "1", "--atol", "1").Code);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("compare", partial, Reference, "--tier", "bogus").Code);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("compare", partial, tmp.File("missing.safetensors")).Code);
    }
}
