using System.Diagnostics;
using System.Text;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tests.Torch;
using static StepAudio2.Lab.Tests.Hostile.HostileFiles;

namespace StepAudio2.Lab.Tests.Hostile;

/// <summary>
/// Issue 12's hostile inputs, each generated here: every one ends in a typed error / exit 2 naming the file, in bounded
/// time and memory, never a crash, a hang or a silent wrong answer.
/// </summary>
public sealed class HostileInputTests
{
    // ------------------------------------------------------------------ 1. pickle "billion laughs"

    /// <summary>
    /// Lists of 10 references to the previous list, 40 levels deep (under the depth cap): ~400 bytes naming 10^40
    /// entries through the memo. Before the budget, inspect re-walked every shared list (minutes, GBs).
    /// </summary>
    internal static byte[] BillionLaughsPickle(int levels = 40, int width = 10)
    {
        var p = new PickleWriter();
        p.Op(']').Op('q').Op(1).Op('0'); // memo[1] = []
        for (int i = 2; i <= levels + 1; i++)
        {
            p.Op('(');
            for (int k = 0; k < width; k++) p.Op('h').Op((byte)(i - 1));
            p.Op('l').Op('q').Op((byte)i).Op('0');
        }
        p.Op('}').Str("laughs").Op('h').Op((byte)(levels + 1)).Op('s').Op('.');
        return p.ToArray();
    }

    [Fact]
    public void Billion_laughs_pickle_is_refused_quickly_with_bounded_work()
    {
        using var dir = TestPaths.Temp();
        string path = dir.File("laughs.pt");
        PickleWriter.WriteZip(path, BillionLaughsPickle());
        Assert.True(new FileInfo(path).Length < 2000);
        var sw = Stopwatch.StartNew();
        var (code, _, err) = RunCli("inspect", path);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("expands to more than", err);
        Assert.Contains(path, err);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(20), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Modest_shared_containers_still_load()
    {
        // Sharing itself is legal: 3 levels × width 4 = 64 leaves is far below the budget.
        using var dir = TestPaths.Temp();
        string path = dir.File("shared.pt");
        PickleWriter.WriteZip(path, BillionLaughsPickle(levels: 3, width: 4));
        using var ckpt = TorchCheckpoint.Open(path);
        Assert.Single(ckpt.Metadata);
        Assert.Equal(4, ((IReadOnlyList<object?>)ckpt.Metadata["laughs"]!).Count);
    }

    // ------------------------------------------------------------------ 2. absurd sample rates

    [Theory]
    [InlineData(1u)]
    [InlineData(2u)]
    [InlineData(999u)]
    [InlineData(768_001u)]
    public void Sample_rates_outside_the_documented_range_are_refused(uint rate)
    {
        using var dir = TestPaths.Temp();
        string wav = dir.File("rate.wav");
        File.WriteAllBytes(wav, Wav(rate, Tone(5000, 16000)));
        var ex = Assert.Throws<AudioFormatException>(() => AudioFile.Read(wav));
        Assert.Contains($"implausible sample rate {rate} Hz", ex.Message);
        Assert.Contains($"{AudioFile.MinSampleRate}…{AudioFile.MaxSampleRate}", ex.Message);
        var (code, _, err) = RunCli("mel", wav, "--out", dir.File("m.npy"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(wav, err);
        Assert.False(File.Exists(dir.File("m.npy")));
    }

    [Fact]
    public void Edge_rates_are_read_and_resampled_within_a_bounded_factor()
    {
        using var dir = TestPaths.Temp();
        string wav = dir.File("low.wav");
        File.WriteAllBytes(wav, Wav((uint)AudioFile.MinSampleRate, Tone(1000, AudioFile.MinSampleRate, 100)));
        var x = AudioInput.Load16k(wav);
        Assert.Equal(16_000, x.Length); // one second stays one second
    }

    [Fact]
    public void Resampler_output_beyond_an_array_is_a_typed_refusal_not_an_overflow()
    {
        var ex = Assert.Throws<ArgumentException>(() => Resampler.OutputLength(200_000_000, 1000, 24000));
        Assert.Contains("more than one array holds", ex.Message);
    }

    // ------------------------------------------------------------------ 7. pipes

    [Fact]
    public async Task Codes_from_a_pipe_keep_every_code()
    {
        using var dir = TestPaths.Temp();
        string fifo = dir.File("codes.fifo");
        var writer = FeedFifo(fifo, "100 200 300 400 500"u8.ToArray());
        var codes = SpeechCodes.Load(fifo);
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([100, 200, 300, 400, 500], codes);
    }

    [Fact]
    public async Task Npy_codes_from_a_pipe_are_read_whole()
    {
        using var dir = TestPaths.Temp();
        string npy = dir.File("c.npy");
        StepAudio2.Lab.IO.Numpy.NpyWriter.Write(npy, StepAudio2.Lab.Tensors.Tensor.FromArray(new long[] { 7, 8, 9, 6560 }, 4));
        string fifo = dir.File("codes.fifo");
        var writer = FeedFifo(fifo, File.ReadAllBytes(npy));
        var codes = SpeechCodes.Load(fifo);
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal([7, 8, 9, 6560], codes);
    }

    [Fact]
    public async Task Audio_from_a_pipe_is_read_whole_and_a_tensor_pipe_is_refused_by_name()
    {
        using var dir = TestPaths.Temp();
        var tone = Tone(3000, 16000);
        string fifo = dir.File("a.fifo");
        var writer = FeedFifo(fifo, Wav(16000, tone));
        var clip = AudioFile.Read(fifo);
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3000, clip.Frames);

        string fifo2 = dir.File("t.fifo");
        var writer2 = FeedFifo(fifo2, SafetensorsBytes("a"));
        var ex = Assert.Throws<LabDataException>(() => TensorFiles.DetectFormat(fifo2));
        Assert.Contains("non-seekable", ex.Message);
        Assert.Contains(fifo2, ex.Message);
        // The refused pipe was closed unread: its writer may end with a broken pipe, as printf would.
        try { await writer2.WaitAsync(TimeSpan.FromSeconds(10)); } catch (IOException) { }
    }

    [Fact]
    public async Task Token2wav_reads_every_piped_code_and_refuses_more_than_its_limit_by_number()
    {
        using var dir = TestPaths.Temp();
        string t2w = Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
        string features = Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors");

        // <(printf "100 200 300 400 500"): five codes in, 5 × 2 × 480 samples out
        string fifo = dir.File("codes.fifo");
        var writer = FeedFifo(fifo, "100 200 300 400 500"u8.ToArray());
        var (code, stdout, err) = RunCli("token2wav", "--token2wav", t2w, "--prompt-features", features, "--codes-file", fifo, "--out", dir.File("o.wav"), "--json");
        await writer.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True(code == StepLabCli.Ok, err);
        Assert.Equal(5 * 2 * 480, AudioFile.Read(dir.File("o.wav")).Frames);

        string many = string.Join(' ', Enumerable.Range(0, StepAudio2.Lab.Models.Token2Wav.Token2Wav.MaxCodes + 1).Select(i => i % 6561));
        var (code2, _, err2) = RunCli("token2wav", "--token2wav", t2w, "--prompt-features", features, "--codes", many, "--out", dir.File("big.wav"));
        Assert.Equal(StepLabCli.BadInput, code2);
        Assert.Contains($"exceed the limit of {StepAudio2.Lab.Models.Token2Wav.Token2Wav.MaxCodes} codes", err2);
        Assert.False(File.Exists(dir.File("big.wav")));
    }

    [Fact]
    public void A_transposed_prompt_mel_names_the_features_file_and_key()
    {
        using var dir = TestPaths.Temp();
        string t2w = Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav");
        string bad = dir.File("features.safetensors");
        using (var src = StepAudio2.Lab.IO.Safetensors.SafetensorsFile.Open(Path.Combine(TestPaths.ReferenceData, "tiny", "dumps", "token2wav-short.safetensors")))
        {
            var keep = new[] { "input.prompt_tokens", "input.xvector" }.Select(k => KeyValuePair.Create(k, src.Get(k).Contiguous())).ToList();
            keep.Add(KeyValuePair.Create("input.prompt_mel", src.Get("input.prompt_mel").Permute(0, 2, 1).Contiguous())); // [1, 80, 2P]
            StepAudio2.Lab.IO.Safetensors.SafetensorsWriter.Write(bad, keep);
        }
        var (code, _, err) = RunCli("token2wav", "--token2wav", t2w, "--prompt-features", bad, "--codes", "1 2 3", "--out", dir.File("o.wav"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(bad, err);
        Assert.Contains("[input.prompt_mel]", err);
        Assert.DoesNotContain("(Parameter", err);
    }

    // ------------------------------------------------------------------ 8. response files

    [Fact]
    public void At_arguments_are_never_expanded_as_response_files()
    {
        using var dir = TestPaths.Temp();
        string secret = dir.File("secret.txt");
        File.WriteAllText(secret, "SECRET-CONTENT-xyzzy");
        var (code, stdout, err) = RunCli("inspect", "@" + secret);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.DoesNotContain("SECRET-CONTENT", stdout + err);
        Assert.Contains("@" + secret, err); // the argument is taken literally, as a (missing) path

        var (tcode, tout, terr) = RunCli("tokenize", "--model", TestPaths.SharedModel, "@" + secret, "--json");
        Assert.Equal(StepLabCli.Ok, tcode);
        Assert.DoesNotContain("xyzzy", tout + terr);
    }

    // ------------------------------------------------------------------ 9. garbage in

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.PositiveInfinity, "+Inf")]
    [InlineData(float.NegativeInfinity, "-Inf")]
    public void Non_finite_samples_are_bad_input_naming_file_sample_and_offset(float bad, string word)
    {
        using var dir = TestPaths.Temp();
        var x = Tone(4000, 16000);
        x[1234] = bad;
        string wav = dir.File("nan.wav");
        File.WriteAllBytes(wav, Wav(16000, x, float32: true));
        var ex = Assert.Throws<AudioFormatException>(() => AudioFile.Read(wav));
        Assert.Contains($"sample 1234 of channel 0 is {word}", ex.Message);
        Assert.Equal(44 + 1234 * 4, ex.ByteOffset);
        var (code, _, err) = RunCli("mel", wav, "--out", dir.File("m.safetensors"));
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains(wav, err);
        Assert.False(File.Exists(dir.File("m.safetensors")));
    }

    [Fact]
    public void Empty_audio_is_bad_input_for_mel_and_features()
    {
        using var dir = TestPaths.Temp();
        string wav = dir.File("empty.wav");
        File.WriteAllBytes(wav, Wav(16000, []));
        Assert.Equal(0, AudioFile.Read(wav).Frames); // the container itself is valid …
        var (code, _, err) = RunCli("mel", wav, "--out", dir.File("m.safetensors"));
        Assert.Equal(StepLabCli.BadInput, code); // … but there is nothing to compute a mel of
        Assert.Contains("no samples", err);
        Assert.Contains(wav, err);
    }

    // ------------------------------------------------------------------ 11. terminal injection

    private static readonly string[] EvilNames = ["plain.weight", "red\u001b[31mALERT\u001b[0m", "cr\rOVERWRITE", "lf\nforged.line  f32 [1] 4 B", "bidi\u202etxt.exe"];

    [Fact]
    public void Inspect_and_compare_escape_control_characters_from_tensor_names()
    {
        using var dir = TestPaths.Temp();
        string a = dir.File("a.safetensors"), b = dir.File("b.safetensors");
        File.WriteAllBytes(a, SafetensorsBytes(EvilNames));
        File.WriteAllBytes(b, SafetensorsBytes(EvilNames));

        var (code, stdout, _) = RunCli("inspect", a);
        Assert.Equal(StepLabCli.Ok, code);
        AssertInert(stdout);
        Assert.Contains("red\\x1B[31mALERT", stdout);
        Assert.Contains("lf\\x0Aforged.line", stdout);
        Assert.DoesNotContain(stdout.Split('\n'), l => l.StartsWith("forged.line", StringComparison.Ordinal));

        var (ccode, cout, _) = RunCli("compare", a, b);
        Assert.Equal(StepLabCli.Ok, ccode);
        AssertInert(cout);
        Assert.Contains("cr\\x0DOVERWRITE", cout);
        Assert.DoesNotContain(cout.Split('\n'), l => l.StartsWith("forged.line", StringComparison.Ordinal));

        // JSON keeps the real names (JSON escapes control characters itself).
        var (jcode, json, _) = RunCli("inspect", a, "--json");
        Assert.Equal(StepLabCli.Ok, jcode);
        AssertInert(json);
        Assert.Contains("red\\u001B[31mALERT", json);
    }

    [Fact]
    public void Error_messages_escape_keys_from_files()
    {
        var ex = new LabDataException("f.bin", "bad", key: "x\u001b]0;title\u0007\ny");
        Assert.DoesNotContain('\u001b', ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        var w = new StringWriter();
        new TerminalSafeWriter(w).Write("ok\n\tbell\u0007 esc\u001b csi\u009b");
        Assert.Equal("ok\n\tbell\\x07 esc\\x1B csi\\x9B", w.ToString());
    }

    private static void AssertInert(string text)
    {
        foreach (char c in text)
            Assert.False(c is not ('\n' or '\t') && Printable.IsUnsafe(c), $"output holds control character U+{(int)c:X4}");
    }

    // ------------------------------------------------------------------ 10. contract: unreadable tensor in compare

    [Fact]
    public void Compare_on_a_crc_corrupt_npz_member_is_bad_input_after_reporting_the_rest()
    {
        using var dir = TestPaths.Temp();
        string good = dir.File("good.npz"), bad = dir.File("bad.npz");
        var ones = Enumerable.Repeat(1f, 1000).ToArray();
        StepAudio2.Lab.IO.Numpy.NpzWriter.Write(good, [("a", StepAudio2.Lab.Tensors.Tensor.FromArray(ones, 1000)), ("b", StepAudio2.Lab.Tensors.Tensor.FromArray(ones, 1000))]);
        var bytes = File.ReadAllBytes(good);
        int at = bytes.AsSpan().LastIndexOf((ReadOnlySpan<byte>)[0x00, 0x00, 0x80, 0x3F]); // inside member b's stored data
        Assert.True(at > 0);
        bytes[at + 3] = 0x40; // 1.0 → 2.0: a valid float, but the CRC no longer matches
        File.WriteAllBytes(bad, bytes);
        var (code, stdout, err) = RunCli("compare", bad, good);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("CRC-32 mismatch", err);
        Assert.Contains("bad.npz", err);
        Assert.Contains("a", stdout); // the readable row is still reported
    }

    [Fact]
    public void Legacy_pickle_and_huge_header_length_get_specific_messages()
    {
        using var dir = TestPaths.Temp();
        string legacy = dir.File("old.pt");
        File.WriteAllBytes(legacy, [0x80, 0x02, (byte)'}', (byte)'.']);
        var (code, _, err) = RunCli("inspect", legacy);
        Assert.Equal(StepLabCli.BadInput, code);
        Assert.Contains("legacy torch.save format", err);

        string huge = dir.File("huge.safetensors");
        var bytes = new byte[64];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(bytes, 1UL << 40);
        File.WriteAllBytes(huge, bytes);
        var (code2, _, err2) = RunCli("inspect", huge);
        Assert.Equal(StepLabCli.BadInput, code2);
        Assert.DoesNotContain("not a recognised tensor file", err2);
        Assert.Contains(huge, err2);
    }

    [Fact]
    public void Flow_yaml_without_its_root_key_names_no_line_zero()
    {
        string yaml = File.ReadAllText(Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", "flow.yaml")).Replace("flow: !new:", "flaw: !new:");
        var ex = Assert.Throws<ConfigException>(() => StepAudio2.Lab.Config.FlowConfig.Parse(yaml));
        Assert.Contains("[flow]", ex.Message);
        Assert.Contains("required key is missing", ex.Message);
        Assert.DoesNotContain("line 0", ex.Message);
    }

    // ------------------------------------------------------------------ 5. quadratic index handling

    [Fact]
    public void An_index_naming_many_distinct_shards_opens_in_linear_time()
    {
        using var dir = TestPaths.Temp();
        const int n = 40_000; // O(n²) took minutes at 100 k; linear is well under a second
        var sb = new StringBuilder("{\"weight_map\":{");
        for (int i = 0; i < n; i++) sb.Append(i == 0 ? "" : ",").Append($"\"t{i}\":\"s{i}.safetensors\"");
        sb.Append("}}");
        string index = dir.File("model.safetensors.index.json");
        File.WriteAllText(index, sb.ToString());
        var sw = Stopwatch.StartNew();
        var (code, stdout, _) = RunCli("inspect", dir.Path, "--json");
        Assert.Equal(StepLabCli.Failed, code); // every shard is missing
        Assert.Contains($"\"tensor_count\": {n}", stdout);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(15), $"inspect of {n} shards took {sw.Elapsed}");
    }
}
