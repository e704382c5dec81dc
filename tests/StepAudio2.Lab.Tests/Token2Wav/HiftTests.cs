using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tests.Parity;
using StepAudio2.Lab.Tracing;
using Xunit.Abstractions;

namespace StepAudio2.Lab.Tests.Token2Wav;

/// <summary>
/// The tiny HiFT of reference-data/make_hift.py (official key names and structure, small widths) against the Python
/// reference dump: f0 predictor, NSF source, decoder fed the reference's own source, and the whole chain (docs/model.md §9).
/// </summary>
public sealed class HiftTests(ITestOutputHelper output)
{
    private static string Ckpt(string name) => Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", name);
    private static string DumpPath => Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "hift.safetensors");

    private static readonly string[] DecoderPaths =
    [
        "hift.source_stft", "hift.conv_pre",
        "hift.ups.0", "hift.source_downs.0", "hift.source_resblocks.0", "hift.resblocks.0", "hift.resblocks.1", "hift.resblocks.2",
        "hift.ups.1", "hift.source_downs.1", "hift.source_resblocks.1", "hift.resblocks.3", "hift.resblocks.4", "hift.resblocks.5",
        "hift.ups.2", "hift.source_downs.2", "hift.source_resblocks.2", "hift.resblocks.6", "hift.resblocks.7", "hift.resblocks.8",
        "hift.conv_post", "hift",
    ];

    private static double RelL2(Tensor actual, Tensor expected, string name)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape),
            $"{name}: shape {Tensor.ShapeString(actual.Shape)} vs reference {Tensor.ShapeString(expected.Shape)}");
        var a = actual.ToDoubleArray();
        var e = expected.ToDoubleArray();
        double num = 0, den = 0;
        for (int i = 0; i < a.Length; i++) { num += (a[i] - e[i]) * (a[i] - e[i]); den += e[i] * e[i]; }
        Assert.True(den > 0, $"{name}: reference is all zeros");
        return Math.Sqrt(num / den);
    }

    [Theory]
    [InlineData("hift.pt")]
    [InlineData("hift_parametrizations.pt")]
    public void LoadsBothWeightNormKeyStylesAndInfersWidths(string file)
    {
        using var ckpt = TorchCheckpoint.Open(Ckpt(file));
        Assert.All(ckpt.Tensors, t => Assert.StartsWith("generator.", t.Name));
        Assert.Equal(file == "hift.pt", ckpt.Contains("generator.conv_pre.weight_g"));
        Assert.Equal(file != "hift.pt", ckpt.Contains("generator.conv_pre.parametrizations.weight.original0"));
        var hift = Hift.Load(ckpt);
        Assert.Equal(80, hift.MelChannels);
        Assert.Equal(32, hift.BaseChannels);
        Assert.Equal([16, 8, 4], hift.StageChannels);
        Assert.Equal(16, hift.F0Predictor.CondChannels);
        Assert.Equal(480, hift.Config.SamplesPerFrame);
    }

    [Theory]
    [InlineData("hift.pt")]
    [InlineData("hift_parametrizations.pt")]
    public void F0PredictorMatchesTheReference(string file)
    {
        var hift = Hift.Load(Ckpt(file));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var f0 = hift.F0Predictor.Forward(dump.Get("input.mel"));
        var expected = dump.Get("hift.f0_predictor");
        double rel = RelL2(f0, expected, "hift.f0_predictor");
        output.WriteLine($"hift.f0_predictor rel-L2 {rel:E3}");
        Assert.True(rel <= 1e-5, $"f0 rel-L2 {rel:E3}");
        // the fixture exercises both NSF branches: some frames voiced (> 10 Hz), some not
        var v = expected.ToFloatArray();
        Assert.Contains(v, x => x > 10f);
        Assert.Contains(v, x => x <= 10f);
    }

    [Fact]
    public void SourceFromTheReferenceF0MatchesTheReference()
    {
        var hift = Hift.Load(Ckpt("hift.pt"));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var trace = new Trace();
        var source = hift.Source.Forward(dump.Get("hift.f0_predictor"), dump.Get("input.hift_noise"), trace);
        double rel = RelL2(source, dump.Get("hift.m_source"), "hift.m_source");
        output.WriteLine($"hift.m_source (reference f0) rel-L2 {rel:E3}");
        Assert.True(rel <= 1e-5, $"m_source rel-L2 {rel:E3} from the reference f0");
        // what the trace records under hift.m_source is checked against the reference too (not against our own output)
        Assert.True(trace.Contains("hift.m_source"), "trace lacks hift.m_source");
        double relTraced = RelL2(trace["hift.m_source"], dump.Get("hift.m_source"), "hift.m_source (traced)");
        Assert.True(relTraced <= 1e-5, $"traced hift.m_source rel-L2 {relTraced:E3}");
    }

    [Theory]
    [InlineData("hift.pt")]
    [InlineData("hift_parametrizations.pt")]
    public void DecoderFedTheReferenceSourceMatchesEveryModule(string file)
    {
        var hift = Hift.Load(Ckpt(file));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var trace = new Trace();
        var wav = hift.Decode(dump.Get("input.mel"), dump.Get("hift.m_source"), trace);
        Assert.Equal([1, 40 * 480], wav.Shape);
        foreach (var path in DecoderPaths)
        {
            Assert.True(trace.Contains(path), $"trace lacks {path}");
            double rel = RelL2(trace[path], dump.Get(path), path);
            output.WriteLine($"{path} rel-L2 {rel:E3}");
            Assert.True(rel <= 1e-5, $"{path}: rel-L2 {rel:E3} > 1e-5");
        }
        Assert.True(RelL2(wav, dump.Get("hift"), "hift") <= 1e-5);
        Assert.All(wav.ToFloatArray(), x => Assert.InRange(x, -0.99f, 0.99f));
    }

    [Fact]
    public void WholeChainMatchesTheReferenceWithinTheNsfPhaseFloor()
    {
        var hift = Hift.Load(Ckpt("hift.pt"));
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var trace = new Trace();
        var wav = hift.Forward(dump.Get("input.mel"), dump.Get("input.hift_noise"), trace: trace);
        Assert.Equal(["hift.f0_predictor", "hift.m_source", "hift.source_stft", "hift.conv_pre"], trace.Order.Take(4));
        double relSource = RelL2(trace["hift.m_source"], dump.Get("hift.m_source"), "hift.m_source");
        double rel = RelL2(wav, dump.Get("hift"), "hift");
        output.WriteLine($"chain: m_source rel-L2 {relSource:E3}, waveform rel-L2 {rel:E3}");
        Assert.True(relSource <= 1e-3, $"chain m_source rel-L2 {relSource:E3}");
        Assert.True(rel <= 1e-3, $"chain waveform rel-L2 {rel:E3}");
    }

    [Fact]
    public void SeededNoiseIsReproducibleAndStandardNormal()
    {
        var hift = Hift.Load(Ckpt("hift.pt"));
        var a = hift.Source.SampleNoise(1, 20, 7).ToFloatArray();
        var b = hift.Source.SampleNoise(1, 20, 7).ToFloatArray();
        var c = hift.Source.SampleNoise(1, 20, 8).ToFloatArray();
        Assert.Equal(20 * 480 * 9, a.Length);
        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
        double mean = a.Average(x => (double)x), var = a.Average(x => (x - mean) * (x - mean));
        Assert.InRange(mean, -0.03, 0.03);
        Assert.InRange(var, 0.95, 1.05);
        // the unseeded-looking path (no noise given) runs end to end and stays inside the output limit
        using var dump = Fixtures.OpenSafetensors(DumpPath, out _);
        var wav = hift.Forward(dump.Get("input.mel"), seed: 3);
        Assert.Equal([1, 40 * 480], wav.Shape);
        Assert.All(wav.ToFloatArray(), x => Assert.InRange(x, -0.99f, 0.99f));
    }

    private static InMemoryTensorSource CopyOf(string file, Func<string, Tensor, Tensor?> edit)
    {
        using var ckpt = TorchCheckpoint.Open(Ckpt(file));
        var mem = new InMemoryTensorSource(Ckpt(file));
        foreach (var info in ckpt.Tensors)
        {
            var t = ckpt.Get(info.Name);
            var owned = Tensor.FromArray(t.ToFloatArray(), t.Shape);
            var edited = edit(info.Name, owned);
            if (edited is not null) mem.Add(info.Name, edited);
        }
        return mem;
    }

    [Theory]
    [InlineData("hift.pt", "generator.resblocks.4.convs1.2.weight_v", "resblocks.4.convs1.2.weight_v")]
    [InlineData("hift.pt", "generator.source_downs.1.bias", "source_downs.1.bias")]
    [InlineData("hift.pt", "generator.f0_predictor.classifier.weight", "f0_predictor.classifier.weight")]
    [InlineData("hift_parametrizations.pt", "generator.ups.2.parametrizations.weight.original0", "ups.2.parametrizations.weight.original0")]
    [InlineData("hift.pt", "generator.m_source.l_linear.weight", "m_source.l_linear.weight")]
    [InlineData("hift.pt", "generator.resblocks.8.activations2.1.alpha", "resblocks.8.activations2.1.alpha")]
    public void MissingKeyIsAWeightExceptionNamingIt(string file, string drop, string expectedKey)
    {
        using var src = CopyOf(file, (name, t) => name == drop ? null : t);
        var ex = Assert.Throws<WeightException>(() => Hift.Load(src));
        Assert.Equal(expectedKey, ex.Key);
        Assert.Contains(expectedKey, ex.Message);
    }

    [Theory]
    [InlineData("generator.conv_post.weight_v", "conv_post.weight_v")]
    [InlineData("generator.ups.1.weight_g", "ups.1.weight_g")]
    [InlineData("generator.source_resblocks.2.convs2.0.bias", "source_resblocks.2.convs2.0.bias")]
    [InlineData("generator.source_downs.0.weight", "source_downs.0.weight")]
    [InlineData("generator.f0_predictor.condnet.6.weight_v", "f0_predictor.condnet.6.weight_v")]
    public void MisShapedKeyIsAWeightExceptionNamingIt(string bad, string expectedKey)
    {
        // one extra element on the last axis: rank kept, shape wrong
        using var src = CopyOf("hift.pt", (name, t) =>
        {
            if (name != bad) return t;
            var shape = (int[])t.Shape.Clone();
            shape[^1] += 1;
            return Tensor.Zeros(DType.F32, shape);
        });
        var ex = Assert.Throws<WeightException>(() => Hift.Load(src));
        Assert.Equal(expectedKey, ex.Key);
        Assert.Contains("shape", ex.Fault);
    }

    [Fact]
    public void UnexpectedKeyIsAWeightExceptionNamingIt()
    {
        using var src = CopyOf("hift.pt", (_, t) => t);
        src.Add("generator.resblocks.9.convs1.0.bias", Tensor.Zeros(DType.F32, 4));
        var ex = Assert.Throws<WeightException>(() => Hift.Load(src));
        Assert.Equal("resblocks.9.convs1.0.bias", ex.Key);
    }

    [Fact]
    public void FoldedWeightNormEqualsGTimesVOverItsNorm()
    {
        // v [2, 2, 1]: rows (3, 4) and (0, 5) have norms 5 and 5; g = (10, −1)
        var w = WeightNorm.Fold([10f, -1f], [3f, 4f, 0f, 5f], [2, 2, 1]);
        Assert.Equal([6f, 8f, 0f, -1f], w.ToFloatArray());
    }

    [Fact]
    public void TruncatedCheckpointIsALabDataException()
    {
        using var tmp = TestPaths.Temp();
        var bytes = File.ReadAllBytes(Ckpt("hift.pt"));
        var path = tmp.File("hift.pt");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var ex = Assert.ThrowsAny<LabDataException>(() => Hift.Load(path));
        Assert.Equal(path, ex.FilePath);
    }

    /// <summary>
    /// The full-size key table of docs/model.md §7.13 (new-style weight-norm keys, `generator.` prefix), written here from the
    /// spec, loads with the widths 512 → 256/128/64 and F0 width 512 inferred, and a two-frame mel runs to 960 samples.
    /// </summary>
    [Fact]
    public void FullSizeKeyTableOfTheSpecLoads()
    {
        var mem = new InMemoryTensorSource("full-size-hift");
        var rng = new Random(1);
        Tensor Rand(params int[] shape)
        {
            var v = new float[Tensor.CountElements(shape)];
            for (int i = 0; i < v.Length; i++) v[i] = (float)(rng.NextDouble() - 0.5);
            return Tensor.FromArray(v, shape);
        }
        void Wn(string m, int[] shape, bool transposed = false)
        {
            mem.Add($"generator.{m}.parametrizations.weight.original0", Tensor.FromArray(Enumerable.Repeat(0.05f, shape[0]).ToArray(), shape[0], 1, 1));
            mem.Add($"generator.{m}.parametrizations.weight.original1", Rand(shape));
            mem.Add($"generator.{m}.bias", Rand(transposed ? shape[1] : shape[0]));
        }
        void ResBlock(string m, int ch, int k)
        {
            for (int j = 0; j < 3; j++)
            {
                Wn($"{m}.convs1.{j}", [ch, ch, k]);
                Wn($"{m}.convs2.{j}", [ch, ch, k]);
                mem.Add($"generator.{m}.activations1.{j}.alpha", Tensor.FromArray(Enumerable.Repeat(1f, ch).ToArray(), ch));
                mem.Add($"generator.{m}.activations2.{j}.alpha", Tensor.FromArray(Enumerable.Repeat(1f, ch).ToArray(), ch));
            }
        }
        mem.Add("generator.m_source.l_linear.weight", Rand(1, 9));
        mem.Add("generator.m_source.l_linear.bias", Rand(1));
        Wn("conv_pre", [512, 80, 7]);
        Wn("ups.0", [512, 256, 16], transposed: true);
        Wn("ups.1", [256, 128, 11], transposed: true);
        Wn("ups.2", [128, 64, 7], transposed: true);
        int[][] downs = [[256, 18, 30], [128, 18, 6], [64, 18, 1]];
        int[] chs = [256, 128, 64], srcK = [7, 7, 11], resK = [3, 7, 11];
        for (int i = 0; i < 3; i++)
        {
            mem.Add($"generator.source_downs.{i}.weight", Rand(downs[i]));
            mem.Add($"generator.source_downs.{i}.bias", Rand(chs[i]));
            ResBlock($"source_resblocks.{i}", chs[i], srcK[i]);
            for (int j = 0; j < 3; j++) ResBlock($"resblocks.{3 * i + j}", chs[i], resK[j]);
        }
        Wn("conv_post", [18, 64, 7]);
        Wn("f0_predictor.condnet.0", [512, 80, 3]);
        foreach (var n in new[] { 2, 4, 6, 8 }) Wn($"f0_predictor.condnet.{n}", [512, 512, 3]);
        mem.Add("generator.f0_predictor.classifier.weight", Rand(1, 512));
        mem.Add("generator.f0_predictor.classifier.bias", Rand(1));

        var hift = Hift.Load(mem);
        Assert.Equal(512, hift.BaseChannels);
        Assert.Equal([256, 128, 64], hift.StageChannels);
        Assert.Equal(512, hift.F0Predictor.CondChannels);
        var wav = hift.Forward(TestData.RandnTensor(5, 1, 80, 2), seed: 1);
        Assert.Equal([1, 960], wav.Shape);
        Assert.All(wav.ToFloatArray(), x => Assert.True(float.IsFinite(x) && Math.Abs(x) <= 0.99f));
    }
}
