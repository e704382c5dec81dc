using System.Diagnostics;
using System.Text.Json;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.GpuTests;

// steplab-gpu-tests: the CUDA backend's op checks, tiny-checkpoint parity and benchmarks on a GPU machine.
// Usage: steplab-gpu-tests [--out DIR] [--tiny DIR] [--sections ops,parity,bench,model,t2w,load] [--steps N] [--prompt N]
//          [--model DIR (config.json + model.safetensors.index.json of the real checkpoint)] [--wav FILE] [--t2w DIR]
//          [--weights bf16|int4|both (model section)]
//        steplab-gpu-tests steplab <command> [options]   (the steplab CLI, e.g. trace … --backend cuda)
// Exit codes: 0 every check passed, 1 a check failed, 2 bad arguments or no CUDA device (the reason is printed).
// `steplab-gpu-tests steplab <command> …` is the steplab CLI (same entry point, same exit codes) inside this published
// runner, so the GPU machine runs `steplab … --backend cuda` without a second copy of the runtime
if (args.Length > 0 && args[0] == "steplab") return StepAudio2.Lab.Cli.StepLabCli.Run(args[1..], Console.Out, Console.Error);
var opts = new Dictionary<string, string>();
for (int i = 0; i < args.Length; i++)
{
    if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length) { Console.Error.WriteLine($"bad argument '{args[i]}' (options: --out, --tiny, --sections, --steps, --prompt, --model, --wav, --t2w, --bf16-load 1, --weights bf16|int4|both)"); return 2; }
    opts[args[i][2..]] = args[++i];
}
string outDir = opts.GetValueOrDefault("out", "gpu-results");
string tiny = opts.GetValueOrDefault("tiny", Path.Combine("reference-data", "tiny"));
var sections = opts.GetValueOrDefault("sections", "ops,parity,bench").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet();
int steps = int.Parse(opts.GetValueOrDefault("steps", "128"));
int prompt = int.Parse(opts.GetValueOrDefault("prompt", "500"));
Directory.CreateDirectory(outDir);
using var logFile = new StreamWriter(Path.Combine(outDir, $"cuda-{string.Join("-", sections.Order())}.log")) { AutoFlush = true };
var log = new TeeWriter(Console.Out, logFile);

var total = Stopwatch.StartNew();
if (sections.Contains("load"))
{
    // no GPU needed: builds the full-size model from the random source (int4, then bf16 with --bf16-load) on the host,
    // so a key or shape the model asserts is found before a device call is spent on it
    foreach (bool int4 in opts.GetValueOrDefault("bf16-load", "0") == "1" ? new[] { true, false } : new[] { true })
    {
        var sw = Stopwatch.StartNew();
        var (source, _) = ModelBench.Build(opts.GetValueOrDefault("model", Path.Combine(".gpu", "model")), int4, StepAudio2.Lab.Engine.Ops.Default);
        source.Dispose();
        log.WriteLine($"load {(int4 ? "int4" : "bf16")}: {source.Tensors.Count} tensors, model built in {sw.Elapsed.TotalSeconds:F1} s (every key and shape asserted)");
    }
    if (sections.Count == 1) return 0;
}
if (CudaDevice.UnavailableReason() is { } why)
{
    log.WriteLine($"CUDA backend unavailable: {why}");
    return 2;
}
var device = CudaDevice.Shared;
log.WriteLine($"device: {device.Describe()}");
log.WriteLine($"libraries: {device.LibraryPaths}");
log.WriteLine($"kernels: {(device.KernelsFromCache ? "cubin from cache" : "compiled by NVRTC")} in {device.KernelLoadMs:F0} ms ({device.CubinPath})");
var fp32 = new CudaBackend(CudaPrecision.Fp32, device);
var bf16 = new CudaBackend(CudaPrecision.Bf16, device);
// NaN/∞ (a failed case, an unreachable bound) are written as the named literals, not refused
var json = new JsonSerializerOptions { WriteIndented = true, NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };
var info = new { device = device.Name, capability = $"sm_{device.Major}{device.Minor}", driver = device.DriverVersion, nvrtc = device.NvrtcVersion, cublas = device.CublasVersion,
    kernelsFromCache = device.KernelsFromCache, kernelLoadMs = device.KernelLoadMs, date = DateTime.UtcNow.ToString("u") };
bool failed = false;

if (sections.Contains("ops"))
{
    var checks = new OpChecks(fp32, log);
    checks.RunAll(bf16);
    int bad = checks.Results.Count(r => !r.Passed);
    log.WriteLine($"ops: {checks.Results.Count - bad} passed, {bad} failed");
    failed |= bad > 0;
    File.WriteAllText(Path.Combine(outDir, "cuda-ops.json"), JsonSerializer.Serialize(new { info, passed = checks.Results.Count - bad, failed = bad, results = checks.Results }, json));
}

if (sections.Contains("parity"))
{
    var all = new List<ParityResult>();
    foreach (var b in new[] { fp32, bf16 })
        all.AddRange(TinyParity.Run(tiny, b, log));
    // per dump and precision the last result counts (the host-results rerun when the device run hit host access);
    // fp32 must hold the CPU tests' bound, the default rules and the greedy ids; bf16 every path within the bf16 tier's
    // rel-L2 or PyTorch's own bf16 run's there, and ids that differ from the float32 reference's no earlier than PyTorch's
    // own bf16 run's (TinyParity.Bf16Ids; reference-data/tiny/bf16-reference.json)
    var final = all.GroupBy(r => (r.Dump, Bf16: r.Backend.Contains("bf16"))).Select(g => g.Last()).ToList();
    var f32 = final.Where(r => !r.Backend.Contains("bf16")).ToList();
    var b16 = final.Where(r => r.Backend.Contains("bf16")).ToList();
    int bad = f32.Count(r => !r.Passed), bad16 = b16.Count(r => !r.Passed);
    log.WriteLine($"parity fp32: {f32.Count - bad} of {f32.Count} dumps pass the port rules at the CPU bound with identical greedy ids " +
        $"({f32.Count(r => !r.Backend.Contains("host"))} device-resident); bf16: {b16.Count - bad16} of {b16.Count} are within the bf16 tier's rel-L2 or PyTorch bf16's own, with the ids rule");
    failed |= bad > 0 || bad16 > 0 || f32.Count == 0;
    File.WriteAllText(Path.Combine(outDir, "cuda-parity.json"), JsonSerializer.Serialize(new { info, results = all }, json));
}

if (sections.Contains("bench") || sections.Contains("smallbench"))
{
    var results = new List<BenchResult>();
    var shape = sections.Contains("bench") ? DecoderShape.StepAudio2Mini : DecoderShape.Small;
    string tag = shape == DecoderShape.StepAudio2Mini ? "qwen2-7b-shapes" : "small";
    foreach (var (backend, int4) in new[] { (bf16, false), (bf16, true) })
    {
        try
        {
            var bench = new DecodeBench(backend, shape, prompt + steps + 8, int4);
            results.Add(bench.Run($"{tag}{(int4 ? "-int4" : "")}", prompt, steps, log));
        }
        catch (Exception e) { log.WriteLine($"bench {tag} {(int4 ? "int4" : backend.Precision)} FAILED: {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); failed = true; }
        GC.Collect(); GC.WaitForPendingFinalizers();
    }
    File.WriteAllText(Path.Combine(outDir, "cuda-bench.json"), JsonSerializer.Serialize(new { info, shape, results }, json));
}

if (sections.Contains("model"))
{
    // the real model classes at full size (random weights made in memory from the real config and index)
    string modelDir = opts.GetValueOrDefault("model", Path.Combine(".gpu", "model"));
    string wav = opts.GetValueOrDefault("wav", Path.Combine(".gpu", "speech.wav"));
    var results = new List<ModelBenchResult>();
    string weights = opts.GetValueOrDefault("weights", "both"); // bf16, int4 or both
    foreach (bool int4 in new[] { false, true })
    {
        if (weights != "both" && weights != (int4 ? "int4" : "bf16")) continue;
        try { results.Add(ModelBench.Run(modelDir, wav, bf16, int4, prompt, steps, log)); }
        catch (Exception e) { log.WriteLine($"model {(int4 ? "int4" : "bf16")} FAILED: {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); failed = true; }
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
    }
    File.WriteAllText(Path.Combine(outDir, "cuda-model.json"), JsonSerializer.Serialize(new { info, model = modelDir, results }, json));
}

if (sections.Contains("t2w"))
{
    string dir = opts.GetValueOrDefault("t2w", "/tmp/steplab-t2w");
    var results = new List<Token2WavBenchResult>();
    foreach (var b in new[] { bf16, fp32 })
    {
        try { results.Add(ModelBench.Token2Wav(dir, b, log)); }
        catch (Exception e) { log.WriteLine($"token2wav {b.Name} FAILED: {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); failed = true; }
        GC.Collect(); GC.WaitForPendingFinalizers(); GC.Collect();
    }
    File.WriteAllText(Path.Combine(outDir, "cuda-token2wav.json"), JsonSerializer.Serialize(new { info, input = dir, results }, json));
}

log.WriteLine($"total {total.Elapsed.TotalSeconds:F1} s; {(failed ? "FAILED" : "all passed")}");
return failed ? 1 : 0;

/// <summary>Writes to the console and the log file at once.</summary>
sealed class TeeWriter(TextWriter a, TextWriter b) : TextWriter
{
    public override System.Text.Encoding Encoding => a.Encoding;
    public override void Write(char value) { a.Write(value); b.Write(value); }
    public override void WriteLine(string? value) { a.WriteLine(value); b.WriteLine(value); }
}
