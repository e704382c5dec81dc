using System.Text.RegularExpressions;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Engine.Cuda;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>A fact that runs only where a CUDA device can be used; elsewhere it is skipped with the reason (no driver,
/// no GPU, no NVRTC/cuBLAS) shown in the test results.</summary>
public sealed class GpuFactAttribute : FactAttribute
{
    public GpuFactAttribute()
    {
        if (CudaDevice.UnavailableReason() is { } why) Skip = "needs a CUDA GPU: " + why;
    }
}

/// <summary>
/// The CUDA backend (Engine/Cuda): what can be checked without a GPU — library resolution fails with a clear message,
/// the NVRTC source defines every kernel the backend launches and is well-formed — and, on a GPU, a few ops against the
/// CPU backend (the full op-by-op run is tests/StepAudio2.Lab.GpuTests, run on the GPU machine by scripts/gpu.sh).
/// </summary>
public sealed class CudaBackendTests
{
    // kernels written out, plus those stamped out by the COPY_KERNEL macro (whose own body names its parameter NAME)
    private static readonly string[] Defined = Regex.Matches(CudaKernels.Source, @"extern ""C"" __global__ void (\w+)\(")
        .Select(m => m.Groups[1].Value).Where(n => n != "NAME")
        .Concat(Regex.Matches(CudaKernels.Source, @"COPY_KERNEL\((\w+),").Select(m => m.Groups[1].Value).Where(n => n != "NAME"))
        .ToArray();

    [Fact]
    public void QGemvSlicesKnobTakesItsValuesAndNamesItselfOnABadOne()
    {
        Assert.Equal(2, CudaKernels.ParseSlices(null));
        Assert.Equal(2, CudaKernels.ParseSlices(""));
        foreach (int n in new[] { 1, 2, 4, 8 }) Assert.Equal(n, CudaKernels.ParseSlices(n.ToString()));
        foreach (string bad in new[] { "3", "0", "-2", "16", "two", "NaN" })
        {
            var e = Assert.Throws<ArgumentException>(() => CudaKernels.ParseSlices(bad));
            Assert.Contains($"STEPLAB_QGEMV_SLICES={bad}", e.Message);
        }
    }

    [Fact]
    public void DeviceBlockSizeClassesHoldTheRequestWithAtMostAnEighthToSpare()
    {
        // the caching allocator reuses a dropped block for any request of its class: a class must hold the request,
        // waste at most 12.5 %, and the classes must not multiply (8 per octave) as attention rows grow by one a step
        long last = 0;
        var classes = new HashSet<long>();
        for (long bytes = 1; bytes <= 1 << 22; bytes += 1 + bytes / 97)
        {
            long c = CudaDevice.SizeClass(bytes);
            Assert.True(c >= bytes, $"{bytes} → {c}");
            Assert.True(c >= last, "size classes grow with the request");
            if (bytes > 512) Assert.True(c <= bytes + bytes / 8 + 1, $"{bytes} → {c} wastes more than an eighth");
            classes.Add(c);
            last = c;
        }
        Assert.Equal(512, CudaDevice.SizeClass(1));
        Assert.InRange(classes.Count, 50, 8 * 13 + 1); // 2^9 … 2^22: at most eight classes per power of two
    }

    [Fact]
    public void EveryKernelTheBackendLaunchesIsDefinedOnceInTheSource()
    {
        foreach (var name in CudaKernels.Names.All)
            Assert.True(Defined.Count(d => d == name) == 1, $"kernel '{name}' is defined {Defined.Count(d => d == name)} times in CudaKernels.Source");
        // and the list is complete: every kernel of the source is one the backend names
        Assert.Empty(Defined.Except(CudaKernels.Names.All));
    }

    [Fact]
    public void EveryKernelNameConstantIsInTheListTheTestsCheck()
    {
        var constants = typeof(CudaKernels.Names).GetFields()
            .Where(f => f.IsLiteral && f.FieldType == typeof(string)).Select(f => (string)f.GetRawConstantValue()!).ToArray();
        Assert.NotEmpty(constants);
        Assert.Empty(constants.Except(CudaKernels.Names.All));
    }

    [Fact]
    public void KernelSourceIsBalancedAndNeedsNoHeader()
    {
        var src = CudaKernels.Source;
        // comments and string literals aside, braces and parentheses pair up
        var code = Regex.Replace(src, @"//[^\n]*", "");
        Assert.Equal(code.Count(c => c == '{'), code.Count(c => c == '}'));
        Assert.Equal(code.Count(c => c == '('), code.Count(c => c == ')'));
        // NVRTC without a toolkit has no include folder: the source must not include anything
        Assert.DoesNotMatch(@"#\s*include", src);
        // parity: precise math only, never the fast intrinsics (__expf, __sinf …)
        Assert.DoesNotMatch(@"__(expf|sinf|cosf|logf|powf|tanf|fdividef)\(", src);
        // the struct the strided kernels take has the layout of StridedMeta (rank, pad, four arrays of MAXR longs)
        Assert.Contains("struct Strided { int rank; int pad_; i64 shape[MAXR]; i64 s0[MAXR]; i64 s1[MAXR]; i64 s2[MAXR]; };", src);
        Assert.Contains($"#define MAXR {CudaKernels.MaxRank}", src);
        Assert.Equal(8 + 4 * 8 * CudaKernels.MaxRank, System.Runtime.InteropServices.Marshal.SizeOf<StridedMeta>());
    }

    [Fact]
    public void UnaryAndBinaryOpCodesCoverEveryEnumValue()
    {
        // the kernels switch on the enums' ordinals: a new enum value needs a case
        foreach (UnaryOp op in Enum.GetValues<UnaryOp>())
            Assert.Contains($"case {(int)op}:", Regex.Match(CudaKernels.Source, @"float unary\(.*?\n}\n", RegexOptions.Singleline).Value);
        var binary = Regex.Match(CudaKernels.Source, @"float binary\(.*?\n}\n", RegexOptions.Singleline).Value;
        Assert.Equal(Enum.GetValues<BinaryOp>().Length - 1, Regex.Matches(binary, @"case \d+:").Count); // the last is the default
        Assert.Equal(0, (int)DType.F32); Assert.Equal(2, (int)DType.BF16); Assert.Equal(9, (int)DType.Bool); // to_f32_strided's codes
    }

    [Fact]
    public void AMissingLibraryFailsNamingEveryNameFolderAndTheOverride()
    {
        var dir = Directory.CreateTempSubdirectory("steplab-cuda-").FullName;
        try
        {
            var e = Assert.Throws<CudaUnavailableException>(() =>
                CudaLibraries.Load("NVRTC (libnvrtc)", ["libnvrtc-steplab-absent.so.13", "libnvrtc-steplab-absent.so.12"], [dir]));
            Assert.Contains("NVRTC (libnvrtc) not found", e.Message);
            Assert.Contains("libnvrtc-steplab-absent.so.13", e.Message);
            Assert.Contains("libnvrtc-steplab-absent.so.12", e.Message);
            Assert.Contains(dir, e.Message);
            Assert.Contains(CudaLibraries.LibDirVariable, e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void AFileThatIsNotALibraryIsReportedAsFoundButNotLoadable()
    {
        var dir = Directory.CreateTempSubdirectory("steplab-cuda-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "libcublas-steplab-fake.so.13"), "not an ELF file");
            var e = Assert.Throws<CudaUnavailableException>(() => CudaLibraries.Load("cuBLAS", ["libcublas-steplab-fake.so.13"], [dir]));
            Assert.Contains("found but could not be loaded", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void SearchOrderStartsWithTheOverrideAndCoversCuda12And13Names()
    {
        var dirs = CudaLibraries.SearchDirectories("/opt/a:/opt/b");
        Assert.Equal(["/opt/a", "/opt/b"], dirs.Take(2));
        Assert.Contains("/usr/local/cuda/lib64", dirs);
        Assert.Equal(["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"], CudaLibraries.NvrtcNames);
        Assert.Equal(["libcublas.so.13", "libcublas.so.12", "libcublas.so"], CudaLibraries.CublasNames);
        Assert.Equal("libcuda.so.1", CudaLibraries.DriverNames[0]);
    }

    [Fact]
    public void WithoutADeviceTheReasonIsClearAndTheBackendConstructorThrowsIt()
    {
        if (CudaDevice.UnavailableReason() is not { } why) return; // a GPU is here: the GPU facts below run instead
        Assert.StartsWith("CUDA backend:", why);
        var e = Assert.ThrowsAny<Exception>(() => new CudaBackend());
        Assert.True(e is CudaUnavailableException or CudaException, e.GetType().Name);
        Assert.Equal(why, e.Message);
    }

    [Fact]
    public void TheBackendTableKnowsCudaAndWithoutADeviceSaysWhy()
    {
        Assert.Contains("cuda", Backends.Names);
        Assert.Contains("cuda-bf16", Backends.Names);
        if (CudaDevice.UnavailableReason() is not { } why) return;
        var e = Assert.ThrowsAny<Exception>(() => Backends.Get("cuda"));
        Assert.Equal(why, e.Message);
    }

    [Fact]
    public void CliBackendCudaWithoutAGpuIsBadInputWithTheReasonAndPrecisionIsChecked()
    {
        string tiny = Path.Combine(TestPaths.ReferenceData, "tiny"), wav = Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");
        var (code, _, err) = Cli.InspectCliTests.Run("transcribe", "--model", tiny, "--backend", "cpu", "--precision", "fp8", wav);
        Assert.Equal(2, code);
        Assert.Contains("--precision 'fp8' is not one of fp32, bf16", err);
        (code, _, err) = Cli.InspectCliTests.Run("transcribe", "--model", tiny, "--backend", "cpu", "--precision", "bf16", wav);
        Assert.Equal(2, code);
        Assert.Contains("backend 'cpu' has no bf16 mode (backends with one: cuda)", err);
        Assert.Equal("cuda-bf16", StepAudio2.Lab.Cli.StepLabCli.BackendName("cuda", "bf16"));
        Assert.Equal("cuda", StepAudio2.Lab.Cli.StepLabCli.BackendName("cuda", "fp32"));
        if (CudaDevice.UnavailableReason() is not { } why) return;
        (code, _, err) = Cli.InspectCliTests.Run("transcribe", "--model", tiny, "--backend", "cuda", "--precision", "bf16", wav);
        Assert.Equal(2, code);
        Assert.Contains(why, err);
    }

    [Fact]
    public void PrecisionNamesParse()
    {
        Assert.Equal(CudaPrecision.Fp32, CudaBackend.ParsePrecision("fp32"));
        Assert.Equal(CudaPrecision.Bf16, CudaBackend.ParsePrecision("BF16"));
        var e = Assert.Throws<ArgumentException>(() => CudaBackend.ParsePrecision("fp8"));
        Assert.Contains("fp32, bf16", e.Message);
    }

    // ------------------------------------------------------------------------------------------------ on a GPU

    private static float[] Random(int n, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
    }

    [GpuFact]
    public void LinearAttentionAndNormsMatchTheCpuBackend()
    {
        var gpu = new CudaBackend(CudaPrecision.Fp32);
        var cpu = new CpuBackend();
        var x = Tensor.FromArray(Random(3 * 64, 1), 3, 64);
        var w = Tensor.FromArray(Random(48 * 64, 2), 48, 64);
        var b = Tensor.FromArray(Random(48, 3), 48);
        AssertClose(cpu.Linear(x, w, b), gpu.ToHost(gpu.Linear(gpu.FromHost(x), w, b)), 1e-5);
        AssertClose(cpu.RmsNorm(x, Tensor.FromArray(Random(64, 4), 64), 1e-6f), gpu.ToHost(gpu.RmsNorm(gpu.FromHost(x), Tensor.FromArray(Random(64, 4), 64), 1e-6f)), 1e-5);
        var q = Tensor.FromArray(Random(1 * 4 * 5 * 16, 5), 1, 4, 5, 16);
        var k = Tensor.FromArray(Random(1 * 2 * 7 * 16, 6), 1, 2, 7, 16);
        var v = Tensor.FromArray(Random(1 * 2 * 7 * 16, 7), 1, 2, 7, 16);
        AssertClose(cpu.ScaledDotProductAttention(q, k, v, 0.25f, null, true, null),
            gpu.ToHost(gpu.ScaledDotProductAttention(gpu.FromHost(q), gpu.FromHost(k), gpu.FromHost(v), 0.25f, null, true, null)), 1e-5);
    }

    [GpuFact]
    public void DeviceTensorsRefuseHostAccessAndCountTransfers()
    {
        var gpu = new CudaBackend(CudaPrecision.Fp32);
        gpu.Stats.Reset();
        var d = gpu.FromHost(Tensor.FromArray(new float[] { 1, 2, 3 }, 3));
        Assert.False(d.IsHost);
        Assert.Throws<HostAccessException>(() => d.ToFloatArray());
        Assert.Equal(new float[] { 1, 2, 3 }, d.ToHost().ToFloatArray());
        Assert.Equal(1, gpu.Stats.Uploads);
        Assert.Equal(1, gpu.Stats.Downloads);
    }

    private static void AssertClose(Tensor expected, Tensor actual, double tol)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        var e = expected.ToFloatArray(); var a = actual.ToFloatArray();
        double num = 0, den = 0;
        for (int i = 0; i < e.Length; i++) { num += (a[i] - e[i]) * (double)(a[i] - e[i]); den += e[i] * (double)e[i]; }
        Assert.True(Math.Sqrt(num / den) <= tol, $"rel-L2 {Math.Sqrt(num / den):E2} > {tol:E0}");
    }
}
