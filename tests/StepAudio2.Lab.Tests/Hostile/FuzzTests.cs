using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Numpy;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Tensors;
using Xunit.Abstractions;
using static StepAudio2.Lab.Tests.Hostile.HostileFiles;

namespace StepAudio2.Lab.Tests.Hostile;

/// <summary>
/// Mutation fuzzing of every format the workbench reads: a valid seed per format is mutated (bit flips, truncation,
/// extreme integers over header fields, spliced and repeated slices, inserted bytes) and fed to the reader the way users
/// reach it — the <c>steplab</c> entry point in-process for tensor files, the library readers for the others. Each case
/// must end in exit 0/1/2 or a <see cref="LabDataException"/>, within <see cref="CaseLimit"/>; time and allocation per
/// case are measured and reported. The normal run does <see cref="DefaultCases"/> per format; <c>scripts/fuzz.sh</c>
/// sets <c>STEPLAB_FUZZ_CASES</c> (≥ 10 000) and <c>STEPLAB_FUZZ_OUT</c> (the JSON results).
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output)
{
    private const int DefaultCases = 200;
    private static readonly TimeSpan CaseLimit = TimeSpan.FromSeconds(10);

    private sealed record Format(string Name, string FileName, Func<TempDir, byte[]> Seed, Func<string, int?> Run, int SeedExit = 0);

    /// <summary>Runs the CLI and returns its exit code (the contract: 0, 1 or 2).</summary>
    private static int? Cli(params string[] args)
    {
        var r = RunCli(args);
        _lastError = r.Err;
        return r.Code;
    }

    [ThreadStatic] private static string? _lastError;

    /// <summary>Runs a library reader: null when it returned, a typed LabDataException counts as exit 2.</summary>
    private static int? Lib(Action read)
    {
        try { read(); return 0; }
        catch (LabDataException e) { _lastError = e.Message; return 2; }
    }

    private static IReadOnlyList<Format> Formats() =>
    [
        new("safetensors", "f.safetensors", _ => SafetensorsBytes("a.weight", "b.bias", "c"), p => Cli("compare", p, p)),
        new("index-json", "model.safetensors.index.json",
            _ => File.ReadAllBytes(Path.Combine(TestPaths.ReferenceData, "tiny", "model.safetensors.index.json")),
            p => Cli("inspect", Path.GetDirectoryName(p)!), SeedExit: 1), // shards absent: an incomplete checkpoint
        new("config-json", "config.json",
            _ => File.ReadAllBytes(Path.Combine(TestPaths.ReferenceData, "tiny", "config.json")),
            p => Lib(() => StepAudio2Config.Load(p))),
        new("npy", "f.npy", d => TensorBytes(d, "s.npy", f => NpyWriter.Write(f, Tensor.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, 2, 3)))
            , p => Cli("compare", p, p)),
        new("npz", "f.npz", d => TensorBytes(d, "s.npz", f => NpzWriter.Write(f, [("x", Tensor.FromArray(new float[] { 1, 2, 3 }, 3)), ("y", Tensor.FromArray(new long[] { 4, 5 }, 2))])),
            p => Cli("compare", p, p)),
        new("pickle-pt", "f.pt", _ => File.ReadAllBytes(TestPaths.Fixture("torch", "nested.pt")), p => Cli("compare", p, p)),
        new("wav", "f.wav", _ => Wav(16000, Tone(400, 16000)), p => Lib(() => AudioInput.Load16k(p))),
        new("aiff", "f.aiff", _ => File.ReadAllBytes(TestPaths.Fixture("audio", "aiff_s16_1ch_11025_offset_oddchunk.aiff")), p => Lib(() => AudioInput.Load16k(p))),
        new("aiff-c", "f.aifc", _ => File.ReadAllBytes(TestPaths.Fixture("audio", "aifc_twos_s16_1ch_22050.aifc")), p => Lib(() => AudioInput.Load16k(p))),
        new("flow-yaml", "flow.yaml", _ => File.ReadAllBytes(Path.Combine(TestPaths.ReferenceData, "tiny", "token2wav", "flow.yaml")), p => Lib(() => FlowConfig.Load(p))),
        new("codes-text", "codes.txt", _ => "# codes\n1 2 3, 4\n6560 0\n"u8.ToArray(), p => Lib(() => SpeechCodes.Load(p))),
        new("codes-npy", "codes.npy", d => TensorBytes(d, "c.npy", f => NpyWriter.Write(f, Tensor.FromArray(new long[] { 1, 2, 3, 6560 }, 4))), p => Lib(() => SpeechCodes.Load(p))),
    ];

    private static byte[] TensorBytes(TempDir dir, string name, Action<string> write)
    {
        string f = dir.File(name);
        write(f);
        return File.ReadAllBytes(f);
    }

    [Fact]
    public void Every_format_survives_mutation_with_a_contract_exit_in_bounded_time()
    {
        int cases = int.TryParse(Environment.GetEnvironmentVariable("STEPLAB_FUZZ_CASES"), out int n) && n > 0 ? n : DefaultCases;
        string? outPath = Environment.GetEnvironmentVariable("STEPLAB_FUZZ_OUT");
        var results = new JsonObject();
        var failures = new List<string>();
        long totalCases = 0;
        var wall = Stopwatch.StartNew();
        foreach (var format in Formats())
        {
            using var dir = TestPaths.Temp();
            byte[] seed = format.Seed(dir);
            Assert.Equal(format.SeedExit, format.Run(Write(dir, format, seed))); // the seed itself is valid
            var rng = new Random(format.Name.Aggregate(17, (h, c) => h * 31 + c));
            int failed = 0;
            double maxMs = 0;
            long maxAlloc = 0;
            var codes = new int[3];
            string? sampleError = null;
            for (int i = 0; i < cases; i++)
            {
                var (bytes, how) = Mutate(seed, rng);
                string path = Write(dir, format, bytes);
                long alloc0 = GC.GetAllocatedBytesForCurrentThread();
                var sw = Stopwatch.StartNew();
                string? fault = null;
                try
                {
                    int? code = format.Run(path);
                    if (code is not (0 or 1 or 2)) fault = $"exit {code}";
                    else codes[code.Value]++;
                    if (code == 2 && sampleError is null) sampleError = _lastError?.Split('\n')[0];
                }
                catch (Exception e)
                {
                    fault = $"{e.GetType().Name}: {e.Message.Split('\n')[0]}";
                }
                sw.Stop();
                maxMs = Math.Max(maxMs, sw.Elapsed.TotalMilliseconds);
                maxAlloc = Math.Max(maxAlloc, GC.GetAllocatedBytesForCurrentThread() - alloc0);
                if (fault is null && sw.Elapsed > CaseLimit) fault = $"took {sw.Elapsed.TotalSeconds:F1} s";
                if (fault is not null)
                {
                    failed++;
                    if (failures.Count < 20) failures.Add($"{format.Name} case {i} ({how}): {fault}");
                }
            }
            totalCases += cases;
            results[format.Name] = new JsonObject
            {
                ["cases"] = cases, ["failures"] = failed,
                ["exit0"] = codes[0], ["exit1"] = codes[1], ["exit2"] = codes[2],
                ["max_case_ms"] = Math.Round(maxMs, 1), ["max_case_alloc_bytes"] = maxAlloc,
                ["first_exit2_message"] = sampleError,
            };
        }
        var summary = new JsonObject
        {
            ["cases_per_format"] = cases,
            ["total_cases"] = totalCases,
            ["wall_seconds"] = Math.Round(wall.Elapsed.TotalSeconds, 1),
            ["peak_working_set_bytes"] = Process.GetCurrentProcess().PeakWorkingSet64,
            ["formats"] = results,
            ["first_failures"] = new JsonArray(failures.Select(f => (JsonNode)f).ToArray()),
        };
        string json = summary.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
        output.WriteLine(json);
        if (outPath is not null) File.WriteAllText(outPath, json + "\n");
        Assert.True(failures.Count == 0, "fuzz failures:\n" + string.Join("\n", failures));
        Assert.True(Process.GetCurrentProcess().PeakWorkingSet64 < 2L << 30, "peak working set above 2 GiB");
    }

    private static string Write(TempDir dir, Format format, byte[] bytes)
    {
        string path = dir.File(format.FileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static readonly long[] Extremes = [0, 1, -1, 0x7f, 0xff, 0x7fff, 0xffff, int.MaxValue, uint.MaxValue, 1L << 31, 1L << 32, 1L << 40, long.MaxValue, long.MinValue];

    /// <summary>One to three mutations of <paramref name="seed"/>; returns the bytes and a description for failure reports.</summary>
    internal static (byte[] Bytes, string How) Mutate(byte[] seed, Random rng)
    {
        var b = new List<byte>(seed);
        var how = new StringBuilder();
        int rounds = 1 + rng.Next(3);
        for (int r = 0; r < rounds && b.Count > 0; r++)
        {
            int at = rng.Next(b.Count);
            switch (rng.Next(7))
            {
                case 0: // bit flip
                    b[at] ^= (byte)(1 << rng.Next(8));
                    how.Append($"flip@{at} ");
                    break;
                case 1: // random byte
                    b[at] = (byte)rng.Next(256);
                    how.Append($"byte@{at} ");
                    break;
                case 2: // truncate
                    b.RemoveRange(at, b.Count - at);
                    how.Append($"truncate@{at} ");
                    break;
                case 3: // extreme integer over a (likely) header field, either endianness
                {
                    long v = Extremes[rng.Next(Extremes.Length)];
                    int width = new[] { 2, 4, 8 }[rng.Next(3)];
                    var bytes = BitConverter.GetBytes(v).AsSpan(0, width).ToArray();
                    if (rng.Next(2) == 0) Array.Reverse(bytes);
                    at = Math.Min(at, Math.Min(64, b.Count)); // headers live near the start
                    for (int k = 0; k < width && at + k < b.Count; k++) b[at + k] = bytes[k];
                    how.Append($"int{width * 8}={v}@{at} ");
                    break;
                }
                case 4: // insert random bytes
                {
                    int len = 1 + rng.Next(16);
                    b.InsertRange(at, Enumerable.Range(0, len).Select(_ => (byte)rng.Next(256)));
                    how.Append($"insert{len}@{at} ");
                    break;
                }
                case 5: // delete a slice
                {
                    int len = Math.Min(1 + rng.Next(16), b.Count - at);
                    b.RemoveRange(at, len);
                    how.Append($"delete{len}@{at} ");
                    break;
                }
                default: // repeat a slice (duplicated keys, chunks, members)
                {
                    int len = Math.Min(1 + rng.Next(64), b.Count - at);
                    var slice = b.GetRange(at, len);
                    b.InsertRange(rng.Next(b.Count + 1), slice);
                    how.Append($"repeat{len}@{at} ");
                    break;
                }
            }
        }
        return (b.ToArray(), how.ToString().Trim());
    }
}
