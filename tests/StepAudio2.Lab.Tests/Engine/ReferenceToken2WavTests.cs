using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Reference;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;
using T2W = StepAudio2.Lab.Models.Token2Wav.Token2Wav;
using static StepAudio2.Lab.Tests.Engine.ReferenceEndToEndTests;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// Token2wav (flow + HiFT) of the tiny token2wav folder on the reference backend: against the Python dumps at the CPU
/// tests' tolerances, and the CPU backend's fused paths (DiT block, rel-position attention, packed HiFT convs) against
/// the reference backend at every traced path.
/// </summary>
[Collection(SharedReferenceBackend.Name)]
public sealed class ReferenceToken2WavTests(ITestOutputHelper output)
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static IBackend Reference => Backends.Get("reference");

    [Fact]
    public void Token2WavMatchesTheReferenceMelAndWaveform()
    {
        var dumpPath = Path.Combine(Tiny, "dumps", "token2wav-short.safetensors");
        using var t2w = T2W.Load(Path.Combine(Tiny, "token2wav"), promptModels: false, backend: Reference);
        Token2WavInputs i;
        using (var d = SafetensorsFile.Open(dumpPath)) i = Token2WavInputs.Read(d);
        var r = t2w.Generate(i.Codes!, i.PromptTokens!, i.PromptMel!, i.Xvector!, i.Noise, i.HiftNoise);
        using var dump = SafetensorsFile.Open(dumpPath);
        double flow = TestMath.RelL2(r.Mel.ToHost(), dump.Get("flow"));
        double wav = TestMath.RelL2(Tensor.FromArray(r.Waveform, 1, r.Waveform.Length), dump.Get("hift"));
        output.WriteLine($"reference backend: flow rel-L2 {flow:E2}, waveform rel-L2 {wav:E2}");
        Assert.True(flow <= 1e-5, $"flow rel-L2 {flow:E2}");
        Assert.True(wav <= 1e-3, $"waveform rel-L2 {wav:E2}"); // the CPU test's floor: NSF phase accumulates in float32
        Assert.Equal(20 * 960, r.Waveform.Length);
    }

    [Theory]
    [InlineData("hift.pt")]
    [InlineData("hift_parametrizations.pt")]
    public void HiftDecoderFedTheReferenceSourceMatchesEveryModule(string file)
    {
        var hift = Hift.Load(Path.Combine(Tiny, "token2wav", file), backend: Reference);
        using var dump = Fixtures.OpenSafetensors(Path.Combine(Tiny, "dumps", "hift.safetensors"), out _);
        var trace = new Trace();
        var wav = hift.Decode(dump.Get("input.mel"), dump.Get("hift.m_source"), trace);
        Assert.False(wav.IsHost);
        int compared = 0;
        foreach (var path in trace.Order.Where(dump.Contains))
        {
            double rel = TestMath.RelL2(trace[path], dump.Get(path));
            Assert.True(rel <= 1e-5, $"{path}: rel-L2 {rel:E3} > 1e-5 on the reference backend");
            compared++;
        }
        Assert.True(compared >= 20, $"only {compared} HiFT modules compared");
        Assert.True(TestMath.RelL2(wav.ToHost(), dump.Get("hift")) <= 1e-5);
    }

    [Fact]
    public void TheCpuBackendMatchesTheReferenceBackendAtEveryTracedPathOfToken2Wav()
    {
        // the fused CPU paths (DiT block, rel-position attention, packed HiFT convs) against the reference's op-by-op ones
        var dir = Path.Combine(Tiny, "token2wav");
        Token2WavInputs i;
        using (var d = SafetensorsFile.Open(Path.Combine(Tiny, "dumps", "token2wav-short.safetensors"))) i = Token2WavInputs.Read(d);
        Trace Run(IBackend backend)
        {
            using var t2w = T2W.Load(dir, promptModels: false, backend: backend);
            var trace = new Trace();
            t2w.Generate(i.Codes!, i.PromptTokens!, i.PromptMel!, i.Xvector!, i.Noise, i.HiftNoise, trace: trace);
            return trace;
        }
        var rows = CompareTraces(Run(Backends.Get("cpu")), Run(Reference));
        Assert.True(rows.Count >= 20, $"only {rows.Count} paths compared");
        output.WriteLine($"{rows.Count} paths; worst: {string.Join(", ", rows.Take(5).Select(r => $"{r.Path} {r.Rel:E2}"))}");
        // the documented floors (ReferenceOverrides): flow at the float32 bound, the HiFT chain at 1e-3 because the NSF
        // phase accumulates in float32 over every sample; HiftDecoderFedTheReferenceSource holds each HiFT module to 1e-5
        Assert.All(rows, r => Assert.True(r.Rel <= (r.Path.StartsWith("hift") ? 1e-3 : 1e-5), $"{r.Path}: CPU vs reference rel-L2 {r.Rel:E3}"));
        Assert.Contains(rows, r => r.Path.StartsWith("flow.decoder"));
    }

    [Fact]
    public void TraceCliWithBackendReferenceRunsToken2WavThereAndMatchesTheDump()
    {
        // --backend enters a scope; token2wav loaded inside it must belong to that backend, not the process default
        using var tmp = TestPaths.Temp();
        var dumpPath = Path.Combine(Tiny, "dumps", "token2wav-short.safetensors");
        var output = tmp.File("t2w.safetensors");
        long before = Reference.Stats.Ops;
        var (code, _, err) = StepAudio2.Lab.Tests.Cli.InspectCliTests.Run(
            "trace", "--token2wav", Path.Combine(Tiny, "token2wav"), "--inputs", dumpPath, "--out", output, "--backend", "reference");
        Assert.True(code == StepAudio2.Lab.Cli.StepLabCli.Ok, err);
        Assert.True(Reference.Stats.Ops - before > 100, $"only {Reference.Stats.Ops - before} ops ran on the reference backend");
        using var traced = SafetensorsFile.Open(output);
        using var dump = SafetensorsFile.Open(dumpPath);
        Assert.True(TestMath.RelL2(traced.Get("flow"), dump.Get("flow")) <= 1e-5);
        Assert.True(TestMath.RelL2(traced.Get("hift"), dump.Get("hift")) <= 1e-3);
    }
}
