using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Tracing;

namespace StepAudio2.Lab.Tests.Cli;

/// <summary><c>steplab mel</c> and <c>steplab trace</c> from the real AIFF-C clip, checked against the Python reference dump.</summary>
public sealed class TraceCliTests
{
    private static string Clip => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");
    private static string Tiny => Path.Combine(TestPaths.ReferenceData, "tiny");
    private static string Reference => Path.Combine(Tiny, "dumps", "audio-short.safetensors");

    [Fact]
    public void MelWritesADumpAndANpy()
    {
        using var tmp = TestPaths.Temp();
        var (code, stdout, err) = InspectCliTests.Run("mel", Clip, "--out", tmp.File("mel.safetensors"));
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("mel [128, 309] → 39 audio tokens", stdout);
        using var mel = SafetensorsFile.Open(tmp.File("mel.safetensors"));
        using var reference = SafetensorsFile.Open(Reference);
        var a = mel.Get("input.mel.0").ToFloatArray();
        var b = reference.Get("input.mel.0").ToFloatArray();
        Assert.True(a.Zip(b, (x, y) => Math.Abs(x - y)).Max() <= 1e-4);
        Assert.Equal(reference.Get("input.wav_lens").ToInt64Array(), mel.Get("input.wav_lens").ToInt64Array());

        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("mel", Clip, "--out", tmp.File("mel.npy")).Code);
        Assert.Equal([128, 309], NpyReader.Read(tmp.File("mel.npy")).Shape);
        Assert.Equal(StepLabCli.BadInput, InspectCliTests.Run("mel", tmp.File("none.wav"), "--out", tmp.File("x.npy")).Code);
    }

    [Fact]
    public void TraceIsAReferenceDumpThatMatchesPyTorch()
    {
        using var tmp = TestPaths.Temp();
        var out1 = tmp.File("trace.safetensors");
        var (code, _, err) = InspectCliTests.Run("trace", "--model", Tiny, "--stage", "audio", "--audio", Clip, "--out", out1);
        Assert.True(code == StepLabCli.Ok, err);
        using (var trace = SafetensorsFile.Open(out1))
        {
            var order = DumpFile.ReadOrder(trace.Metadata)!;
            Assert.Equal("input.wav", order[0]);
            Assert.Equal("adapter", order[^1]);
            Assert.Contains("encoder.blocks.1.attn.qk", order);
        }
        // the mel of two float32 FFT paths differs by ~2e-5 near the clamp: the acceptance bound for it is 1e-4
        var (cmp, table, _) = InspectCliTests.Run("compare", out1, Reference, "--override", "input.mel.*=rtol=0,atol=1e-4", "input.wav=rtol=0,atol=1e-5", "--require-all");
        Assert.True(cmp == StepLabCli.Ok, table);

        var out2 = tmp.File("some.safetensors");
        Assert.Equal(StepLabCli.Ok, InspectCliTests.Run("trace", "--model", Tiny, "--stage", "audio", "--audio", Clip, "--capture", "encoder.blocks.*.attn", "--out", out2).Code);
        using var some = SafetensorsFile.Open(out2);
        Assert.Equal(["input.wav", "input.mel.0", "input.wav_lens", "encoder.blocks.0.attn", "encoder.blocks.1.attn"], DumpFile.ReadOrder(some.Metadata));
    }

    [Fact]
    public void FullTraceFromTheRealClipMatchesTheReferenceForwardAndGreedyIds()
    {
        using var tmp = TestPaths.Temp();
        var output = tmp.File("llm.safetensors");
        var (code, stdout, err) = InspectCliTests.Run("trace", "--model", Tiny, "--tokenizer", TestPaths.SharedModel, "--audio", Clip,
            "--instruction", "Please repeat what you hear in English:", "--greedy", "8", "--out", output);
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Contains("prompt 66 ids", stdout);
        var llmReference = Path.Combine(Tiny, "dumps", "llm-instruction.safetensors");
        var (cmp, table, _) = InspectCliTests.Run("compare", output, llmReference);
        Assert.True(cmp == StepLabCli.Ok, table);
        Assert.Contains("output.greedy_ids", table);
        Assert.Contains("lm_head.last", table);
        Assert.Contains("model.rotary_emb", table);
        Assert.Contains("34 compared, 0 failing", table);
        Assert.DoesNotContain("batch dim", table); // official shapes on both sides
        // without a tokenizer the full stage is refused with a clear error naming the folder
        var (bad, _, message) = InspectCliTests.Run("trace", "--model", Tiny, "--audio", Clip, "--out", tmp.File("x.safetensors"));
        Assert.Equal(StepLabCli.BadInput, bad);
        Assert.Contains("vocab.json", message);
    }
}
