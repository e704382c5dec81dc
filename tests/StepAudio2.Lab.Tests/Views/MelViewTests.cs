using System.Text.Json.Nodes;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The flow's mel views and the CFM trajectory rebuilt from the PyTorch reference's per-step estimator outputs.</summary>
public sealed class MelViewTests
{
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");

    [Fact]
    public void TrajectoryFromTheReferenceEstimatorEndsAtTheReferenceMel()
    {
        using var dump = SafetensorsFile.Open(DumpPath);
        var steps = CfmSteps.FromSource(dump, 0.7);
        Assert.Equal(10, steps.Steps);
        Assert.Equal(11, steps.Times.Length);
        Assert.Equal([1, 80, 64], steps.States[^1].Shape.ToArray());
        // the reference's own v0/v1 and noise, integrated with its float32 time grid, give its final x (flow.decoder)
        double rel = TestMath.RelL2(steps.States[^1], dump.Get("flow.decoder"));
        Assert.True(rel <= 1e-6, $"rebuilt x_10 vs reference flow.decoder: rel-L2 {rel:E2}");
        // rows are split as the CFM batches them: row 0 conditioned, row 1 unconditioned
        var v = dump.Get("flow.decoder.estimator.step.3").ToFloatArray();
        Assert.Equal(v.AsSpan(0, 80 * 64).ToArray(), steps.Conditional[3].ToFloatArray());
        Assert.Equal(v.AsSpan(80 * 64).ToArray(), steps.Unconditional[3].ToFloatArray());
        var guided = steps.Guided(3).ToFloatArray();
        Assert.Equal(1.7f * v[5] - 0.7f * v[80 * 64 + 5], guided[5]);
        // a different rate gives a different end point
        var plain = CfmSteps.FromSource(dump, 0.0);
        Assert.True(TestMath.RelL2(plain.States[^1], dump.Get("flow.decoder")) > 1e-3);
    }

    [Fact]
    public void TrajectoryNeedsTheNoiseAndTheSteps()
    {
        var trace = new Trace();
        Assert.Contains("input.noise", Assert.Throws<ArgumentException>(() => CfmSteps.FromSource(trace.ToTensorSource())).Message);
        trace.Record("input.noise", Tensor.FromArray(new float[80 * 4], 1, 80, 4));
        Assert.Contains("step.0", Assert.Throws<ArgumentException>(() => CfmSteps.FromSource(trace.ToTensorSource())).Message);
        trace.Record("flow.decoder.estimator.step.0", Tensor.FromArray(new float[80 * 5], 1, 80, 5));
        Assert.Contains("[2, 80, 4]", Assert.Throws<ArgumentException>(() => CfmSteps.FromSource(trace.ToTensorSource())).Message);
    }

    [Fact]
    public void FramesFirstMelIsTransposedToBinsByFrames()
    {
        // [1, T=3, bins=2]: frame f, bin b holds 10f + b
        var m = MelData.FramesFirst(Tensor.FromArray(new float[] { 0, 1, 10, 11, 20, 21 }, 1, 3, 2), "p", promptFrames: 1);
        Assert.Equal((2, 3), (m.Bins, m.Frames));
        Assert.Equal(new float[] { 0, 10, 20, 1, 11, 21 }, m.Values);
        Assert.Equal([0, 1], m.ToSpectrogram().ChunkStarts);
        Assert.Throws<ArgumentOutOfRangeException>(() => MelData.ChannelsFirst(Tensor.FromArray(new float[6], 1, 2, 3), "x", promptFrames: 4));
        Assert.Throws<ArgumentException>(() => MelData.ChannelsFirst(Tensor.FromArray(new float[6], 6), "x"));
    }

    [Fact]
    public void MelFigureMarksThePromptAndTheStripSharesOneColourAxis()
    {
        var a = MelData.ChannelsFirst(Tensor.FromArray(new float[] { 0, 1, 2, 3, 4, 5 }, 1, 2, 3), "a", promptFrames: 2);
        var b = MelData.ChannelsFirst(Tensor.FromArray(new float[] { -1, 0, 0, 0, 0, 9 }, 2, 3), "b");
        var fig = MelView.Figure(a, "m");
        var x = fig.Data[0]!["x"]!.AsArray().Select(n => n!.GetValue<double>()).ToArray();
        Assert.Equal([0, 0.02, 0.04], x);
        var line = fig.Layout["shapes"]!.AsArray().Single(s => (string)s!["type"]! == "line");
        Assert.Equal(1.5 * 0.02, line!["x0"]!.GetValue<double>(), 12);

        var strip = MelView.Strip([a, b], "two", "s", columns: 2);
        Assert.Equal(2, strip.Data.Count);
        Assert.Equal(["x", "x2"], strip.Data.Select(t => (string)t!["xaxis"]!));
        Assert.All(strip.Data, t => Assert.Equal("coloraxis", (string)t!["coloraxis"]!));
        var axis = strip.Layout["coloraxis"]!.AsObject();
        Assert.Equal((-1.0, 9.0), (axis["cmin"]!.GetValue<double>(), axis["cmax"]!.GetValue<double>()));
        Assert.Equal(1, strip.Layout["grid"]!["rows"]!.GetValue<int>());
        Assert.Equal(2, strip.Layout["shapes"]!.AsArray().Count); // only a has prompt frames
        Assert.Throws<ArgumentException>(() => MelView.Strip([], "none"));
    }
}
