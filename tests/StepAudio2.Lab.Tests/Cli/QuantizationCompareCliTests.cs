using System.Text.Json;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tests.Parity;
using StepAudio2.Lab.Tests.Safetensors;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary>
/// <c>steplab compare --quantization</c> end to end on the tiny checkpoint: quantize it to 4 and 8 bits (group 32, every
/// decoder linear), trace the three checkpoints on the real clip with full logits, compare; int8 departs less than int4
/// and every number equals reference-data/quant_compare.py's on the same dumps.
/// </summary>
public sealed class QuantizationCompareCliTests
{
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string Clip => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");

    private static string Trace(TempDir dir, string model, string name)
    {
        string output = dir.File(name + ".safetensors");
        var (code, _, err) = InspectCliTests.Run("trace", "--model", model, "--tokenizer", TestPaths.SharedModel, "--audio", Clip, "--greedy", "8",
            "--capture", "model.layers.*", "model.norm", "lm_head", "--out", output);
        Assert.True(code == StepLabCli.Ok, err);
        return output;
    }

    [PythonFact]
    public void Int8DepartsLessThanInt4AndMatchesTorch()
    {
        using var dir = TestPaths.Temp();
        var traces = new Dictionary<int, string>();
        foreach (int bits in new[] { 4, 8 })
        {
            string q = Path.Combine(dir.Path, $"q{bits}");
            var (code, _, err) = InspectCliTests.Run("quantize", "--model", Tiny, "--bits", bits.ToString(), "--group-size", "32", "--out", q);
            Assert.True(code == StepLabCli.Ok, err);
            traces[bits] = Trace(dir, q, $"q{bits}");
        }
        string reference = Trace(dir, Tiny, "ref");

        var results = new Dictionary<int, JsonElement>();
        foreach (var (bits, trace) in traces)
        {
            var (code, stdout, err) = InspectCliTests.Run("compare", "--quantization", trace, reference, "--json");
            Assert.True(code == StepLabCli.Ok, err);
            results[bits] = JsonDocument.Parse(stdout).RootElement.Clone();

            // the library's numbers (what the CLI printed) against torch's
            QuantizationComparison q;
            using (var c = TensorFiles.Open(trace))
            using (var r = TensorFiles.Open(reference))
                q = QuantizationReport.Compare(c, r);
            var (pc, py) = PythonFactAttribute.Run(Path.Combine(TestPaths.ReferenceData, "quant_compare.py"), trace, reference);
            Assert.True(pc == 0, py);
            using var doc = JsonDocument.Parse(py);
            QuantizationReportTests.AssertMatchesPython(q, doc.RootElement);
            Assert.Equal(q.MeanKL, results[bits].GetProperty("logits").GetProperty("mean_kl").GetDouble());
            Assert.Equal(58, q.Positions!.Count);
            Assert.Equal("model.layers.0.self_attn.q_proj", q.FirstDeparture!.Name);

            (code, stdout, err) = InspectCliTests.Run("compare", "--quantization", trace, reference);
            Assert.True(code == StepLabCli.Ok, err);
            Assert.Contains("KL(p_ref‖p_cand) mean", stdout);
            Assert.Contains("top-1 agreement:", stdout);
            Assert.Contains("model.layers      1", stdout);
        }
        double Logit(int bits, string key) => results[bits].GetProperty("logits").GetProperty(key).GetDouble();
        Assert.True(Logit(8, "mean_kl") < Logit(4, "mean_kl") / 10, $"int8 KL {Logit(8, "mean_kl")} vs int4 {Logit(4, "mean_kl")}");
        Assert.True(Logit(8, "top1_agreement") > Logit(4, "top1_agreement"));
        double LastLayer(int bits) => results[bits].GetProperty("layers").EnumerateArray().Last().GetProperty("output_rel_l2").GetDouble();
        Assert.True(LastLayer(8) < LastLayer(4));
    }

    [Fact]
    public void UnreadableOrMismatchedInputIsExit2()
    {
        using var dir = TestPaths.Temp();
        var (code, _, err) = InspectCliTests.Run("compare", "--quantization", dir.File("none.safetensors"), dir.File("ref.safetensors"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("none.safetensors", err);
        // logits of different lengths: not the same inputs
        StepAudio2.Lab.IO.Safetensors.SafetensorsWriter.Write(dir.File("a.safetensors"),
            new Dictionary<string, StepAudio2.Lab.Tensors.Tensor> { ["lm_head"] = StepAudio2.Lab.Tensors.Tensor.FromArray(new float[20], 2, 10) });
        StepAudio2.Lab.IO.Safetensors.SafetensorsWriter.Write(dir.File("b.safetensors"),
            new Dictionary<string, StepAudio2.Lab.Tensors.Tensor> { ["lm_head"] = StepAudio2.Lab.Tensors.Tensor.FromArray(new float[30], 3, 10) });
        (code, _, err) = InspectCliTests.Run("compare", "--quantization", dir.File("a.safetensors"), dir.File("b.safetensors"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("lm_head", err);
        (code, _, err) = InspectCliTests.Run("compare", "--quantization", "--rtol", "1e-3", dir.File("a.safetensors"), dir.File("a.safetensors"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("--quantization", err);
    }
}
