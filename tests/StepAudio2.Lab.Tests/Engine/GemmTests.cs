using System.Text.Json;
using CsCheck;
using StepAudio2.Lab.Engine.Cpu;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>Gemm against a float64 naive product (many shapes, tails, strides, bias, accumulate) and against PyTorch fixtures,
/// on the best path of the machine, on the AVX2 path where the best one is AVX-512, and on the portable Vector128 path
/// (<see cref="Gemm.ForcePath"/>).</summary>
public sealed unsafe class GemmTests
{
    public enum Op { NT, NN, Bf16NT }

    private const double U = 1.0 / (1 << 24); // f32 unit roundoff

    // m ≤ 4 takes the GEMV path; the rest exercise the 6×16 tile edges (m mod 6, n mod 16), the 8-wide packing
    // transposes (k mod 8) and k beyond one 256-deep block.
    private static readonly (int M, int N, int K)[] Shapes =
    [
        (1, 1, 1), (1, 7, 3), (1, 4, 16), (1, 9, 100), (2, 9, 17), (3, 16, 8), (4, 33, 65), (2, 5, 1),
        (5, 1, 1), (5, 16, 256), (6, 16, 257), (7, 17, 255), (6, 32, 8), (12, 48, 24), (13, 35, 300),
        (64, 100, 513), (100, 37, 31), (31, 129, 7), (8, 15, 600),
        (1, 11, 6150), (3, 6, 6200), // GEMV with rows too long for A to stay in L1: four-row kernel plus tail rows
    ];

    public static IEnumerable<object[]> Cases()
    {
        foreach (var (m, n, k) in Shapes)
            foreach (var op in new[] { Op.NT, Op.NN, Op.Bf16NT })
            {
                yield return [op, m, n, k, false, false, 0];
                yield return [op, m, n, k, op != Op.NN, true, 3];
            }
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void MatchesFloat64Reference(Op op, int m, int n, int k, bool bias, bool accumulate, int pad)
    {
        var p = new Problem(op, m, n, k, bias, accumulate, pad, seed: m * 1_000_003 + n * 1009 + k);
        p.Run();
        p.AssertMatchesReference();
    }

    [Theory]
    [InlineData(Op.NT, 1, 7, 3)]
    [InlineData(Op.NT, 13, 35, 300)]
    [InlineData(Op.NN, 3, 9, 17)]
    [InlineData(Op.NN, 11, 29, 45)]
    [InlineData(Op.Bf16NT, 2, 19, 129)]
    [InlineData(Op.Bf16NT, 17, 33, 270)]
    public void ScalarFallbackMatchesFloat64Reference(Op op, int m, int n, int k)
    {
        var p = new Problem(op, m, n, k, bias: op != Op.NN, accumulate: true, pad: 2, seed: 7);
        Gemm.ForceScalar = true;
        try { p.Run(); }
        finally { Gemm.ForceScalar = false; }
        p.AssertMatchesReference();
    }

    // The portable Vector128 path (ARM64 NEON, x86 without AVX2), forced on this thread as on such a machine.
    [Theory]
    [MemberData(nameof(Cases))]
    public void PortablePathMatchesFloat64Reference(Op op, int m, int n, int k, bool bias, bool accumulate, int pad)
    {
        var p = new Problem(op, m, n, k, bias, accumulate, pad, seed: m * 1_000_003 + n * 1009 + k + 1);
        OnPath(GemmPath.Portable, p.Run);
        p.AssertMatchesReference();
    }

    [Theory]
    [InlineData(Op.NT)]
    [InlineData(Op.NN)]
    [InlineData(Op.Bf16NT)]
    public void PortablePathCrossesEveryCacheBlockBoundary(Op op)
    {
        var p = new Problem(op, 150, 2100, 300, bias: op != Op.NN, accumulate: true, pad: 5, seed: 12);
        OnPath(GemmPath.Portable, p.Run);
        p.AssertMatchesReference();
    }

    [Fact]
    public void PortablePathRandomShapesAndStridesMatchFloat64Reference()
    {
        Gen.Select(Gen.Int[0, 2], Gen.Int[1, 30], Gen.Int[1, 40], Gen.Int[0, 70], Gen.Int[0, 4], Gen.Bool, Gen.Bool, Gen.Int)
            .Sample(t =>
            {
                var (opIndex, m, n, k, pad, bias, acc, seed) = t;
                var op = (Op)opIndex;
                var p = new Problem(op, m, n, k, bias && op != Op.NN, acc, pad, seed);
                OnPath(GemmPath.Portable, p.Run);
                p.AssertMatchesReference();
            }, iter: 200);
    }

    [Theory]
    [InlineData(Op.NT, 13, 35, 300)]   // blocked GEMM with edge tiles
    [InlineData(Op.NN, 64, 100, 513)]
    [InlineData(Op.Bf16NT, 17, 33, 270)]
    [InlineData(Op.NN, 3, 37, 70)]     // NN GEMV: one multiply-add per k into each column's accumulator
    public void PortableTileGivesTheAvx2BitsWhereTheMultiplyAddIsFused(Op op, int m, int n, int k)
    {
        // Same packing, same k order, same (sum + bias) then C + sum merge: with a fused multiply-add the two paths must
        // agree bit for bit. Without hardware FMA (SSE-only x86) the portable path rounds each product and is held to
        // the float64 tolerance above instead; an ARM64 machine has no AVX2 path to compare with.
        if (Gemm.BestPath < GemmPath.Avx2) return;
        var avx = new Problem(op, m, n, k, bias: op != Op.NN, accumulate: true, pad: 2, seed: 21);
        OnPath(GemmPath.Avx2, avx.Run);
        var portable = new Problem(op, m, n, k, bias: op != Op.NN, accumulate: true, pad: 2, seed: 21);
        OnPath(GemmPath.Portable, portable.Run);
        Assert.Equal(avx.C, portable.C);
    }

    [Theory]
    [InlineData(1, 37, 70)]
    [InlineData(3, 20, 33)]
    [InlineData(40, 50, 300)]
    public void PortableBf16WeightsGiveTheSameBitsAsTheirF32Widening(int m, int n, int k)
    {
        // The 128-bit bf16 widening (u16 → u32, shift 16) is exact, so bf16 and f32 rows take identical sums.
        var bf = new Problem(Op.Bf16NT, m, n, k, bias: true, accumulate: false, pad: 0, seed: 4);
        OnPath(GemmPath.Portable, bf.Run);
        var f = new float[bf.BF32.Length];
        for (int i = 0; i < f.Length; i++) f[i] = BFloat16.ToSingle(bf.B16![i]);
        var c = new float[m * n];
        OnPath(GemmPath.Portable, () =>
        {
            fixed (float* pa = bf.A, pb = f, pc = c, pbias = bf.Bias)
                Gemm.SgemmNT(m, n, k, pa, bf.Lda, pb, bf.Ldb, pc, n, pbias);
        });
        Assert.Equal(bf.C, c);
    }

    [Fact]
    public void ForcingAPathRestoresTheBestOneAfterwards()
    {
        OnPath(GemmPath.Portable, () => Assert.Equal(GemmPath.Portable, Gemm.CurrentPath));
        Assert.Equal(Gemm.BestPath, Gemm.CurrentPath);
        Assert.Null(Gemm.ForcePath);
    }

    [Fact]
    public void BestPathHonoursTheDisabledInstructionSets()
    {
        // test.sh runs the kernel tests a second time with DOTNET_EnableAVX2=0: this pins that that run really takes
        // the portable kernels (and the normal run the AVX-512 or AVX2 ones where the machine has them). On .NET 10 the
        // switch for AVX-512 is DOTNET_EnableAVX512 (DOTNET_EnableAVX512F is no longer read); either way IsSupported decides.
        if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX2") == "0")
            Assert.Equal(GemmPath.Portable, Gemm.BestPath);
        else if (Environment.GetEnvironmentVariable("DOTNET_EnableAVX512") == "0" && System.Runtime.Intrinsics.X86.Avx2.IsSupported)
            Assert.Equal(GemmPath.Avx2, Gemm.BestPath);
        else if (System.Runtime.Intrinsics.X86.Avx2.IsSupported && System.Runtime.Intrinsics.X86.Fma.IsSupported)
            Assert.Equal(System.Runtime.Intrinsics.X86.Avx512F.IsSupported ? GemmPath.Avx512 : GemmPath.Avx2, Gemm.BestPath);
        else
            Assert.Equal(System.Runtime.Intrinsics.Vector128.IsHardwareAccelerated ? GemmPath.Portable : GemmPath.Scalar, Gemm.BestPath);
    }

    // ---- AVX-512 (12×32 tile) against float64 and against the AVX2 6×16 tile; where the machine has no AVX-512 the
    // ---- best path (AVX2 or portable) runs the same cases, so they never pass by doing nothing.

    // Edges of the 12×32 tile (m mod 12, n mod 32), the 8-wide packing transposes (k mod 8), k across 256-deep blocks.
    private static readonly (int M, int N, int K)[] WideShapes =
    [
        (5, 31, 7), (11, 32, 8), (12, 32, 1), (12, 33, 9), (13, 31, 255), (23, 64, 256), (24, 65, 257),
        (25, 95, 300), (36, 96, 513), (47, 100, 31), (60, 17, 70),
    ];

    public static IEnumerable<object[]> WideCases()
    {
        foreach (var (m, n, k) in WideShapes)
            foreach (var op in new[] { Op.NT, Op.NN, Op.Bf16NT })
            {
                yield return [op, m, n, k, false, false, 0];
                yield return [op, m, n, k, op != Op.NN, true, 3];
            }
    }

    private static GemmPath WidestPath => Gemm.BestPath;

    [Theory]
    [MemberData(nameof(WideCases))]
    public void Avx512TileMatchesFloat64Reference(Op op, int m, int n, int k, bool bias, bool accumulate, int pad)
    {
        var p = new Problem(op, m, n, k, bias, accumulate, pad, seed: m * 7919 + n * 31 + k);
        OnPath(WidestPath, p.Run);
        p.AssertMatchesReference();
    }

    [Theory]
    [MemberData(nameof(WideCases))]
    public void Avx512TileGivesTheAvx2Bits(Op op, int m, int n, int k, bool bias, bool accumulate, int pad)
    {
        // Both tiles sum each element in k order over the same 256-deep blocks with one FMA per k, and merge (sum + bias)
        // then C + sum alike, so they must agree bit for bit; on a machine without AVX-512 this compares AVX2 with itself.
        if (Gemm.BestPath < GemmPath.Avx2) return;
        Assert.Equal(GemmBlocked.KC, GemmBlocked.KC512);
        var wide = new Problem(op, m, n, k, bias, accumulate, pad, seed: m + n + k);
        OnPath(WidestPath, wide.Run);
        var avx2 = new Problem(op, m, n, k, bias, accumulate, pad, seed: m + n + k);
        OnPath(GemmPath.Avx2, avx2.Run);
        Assert.Equal(avx2.C, wide.C);
    }

    [Theory]
    [InlineData(Op.NT)]
    [InlineData(Op.NN)]
    [InlineData(Op.Bf16NT)]
    public void Avx512TileCrossesEveryCacheBlockBoundary(Op op)
    {
        // m > MC512 (240) and not a multiple of 12, n > NC512 (2048) and not a multiple of 32, k > KC512 (256).
        var p = new Problem(op, 250, 2085, 300, bias: op != Op.NN, accumulate: true, pad: 5, seed: 13);
        OnPath(WidestPath, p.Run);
        p.AssertMatchesReference();
    }

    [Fact]
    public void Avx512TileRandomShapesAndStridesMatchFloat64Reference()
    {
        Gen.Select(Gen.Int[0, 2], Gen.Int[5, 60], Gen.Int[1, 90], Gen.Int[0, 70], Gen.Int[0, 4], Gen.Bool, Gen.Bool, Gen.Int)
            .Sample(t =>
            {
                var (opIndex, m, n, k, pad, bias, acc, seed) = t;
                var op = (Op)opIndex;
                var p = new Problem(op, m, n, k, bias && op != Op.NN, acc, pad, seed);
                OnPath(WidestPath, p.Run);
                p.AssertMatchesReference();
            }, iter: 200);
    }

    [Fact]
    public void ForcingAvx2OnAnAvx512MachineTakesTheAvx2Path()
    {
        if (Gemm.BestPath < GemmPath.Avx2) { Assert.Throws<PlatformNotSupportedException>(() => Gemm.ForcePath = GemmPath.Avx2); return; }
        OnPath(GemmPath.Avx2, () => Assert.Equal(GemmPath.Avx2, Gemm.CurrentPath));
        if (Gemm.BestPath == GemmPath.Avx512) Assert.True(System.Runtime.Intrinsics.X86.Avx512F.IsSupported);
        else Assert.Throws<PlatformNotSupportedException>(() => Gemm.ForcePath = GemmPath.Avx512);
    }

    [Theory]
    [InlineData(Op.NT)]
    [InlineData(Op.NN)]
    [InlineData(Op.Bf16NT)]
    public void SharedPackingOfBGivesTheOneThreadBits(Op op)
    {
        // Rows split across threads pack B once between them, a group of KC panels at a time. A tiny group budget makes
        // every KC panel its own group; n > NC and k > KC cross both loops, with bias and accumulation into C.
        int savedBudget = GemmBlocked.SharedPackFloats, savedThreads = Gemm.MaxThreads;
        try
        {
            GemmBlocked.SharedPackFloats = 1;
            foreach (var path in new[] { Gemm.BestPath, Gemm.BestPath >= GemmPath.Avx2 ? GemmPath.Avx2 : GemmPath.Portable, GemmPath.Portable }.Distinct())
            {
                var one = new Problem(op, 100, 2100, 600, bias: op != Op.NN, accumulate: true, pad: 3, seed: 9);
                Gemm.MaxThreads = 1;
                OnPath(path, one.Run);
                foreach (int threads in new[] { 2, 3 })
                {
                    var more = new Problem(op, 100, 2100, 600, bias: op != Op.NN, accumulate: true, pad: 3, seed: 9);
                    Gemm.MaxThreads = threads;
                    OnPath(path, more.Run);
                    Assert.Equal(one.C, more.C);
                }
            }
            one0().AssertMatchesReference();
        }
        finally { GemmBlocked.SharedPackFloats = savedBudget; Gemm.MaxThreads = savedThreads; }

        Problem one0()
        {
            var p = new Problem(op, 100, 2100, 600, bias: op != Op.NN, accumulate: true, pad: 3, seed: 9);
            Gemm.MaxThreads = 2;
            p.Run();
            return p;
        }
    }

    private static void OnPath(GemmPath path, Action run)
    {
        Gemm.ForcePath = path;
        try { run(); }
        finally { Gemm.ForcePath = null; }
    }

    [Theory]
    [InlineData(Op.NT)]
    [InlineData(Op.NN)]
    [InlineData(Op.Bf16NT)]
    public void CrossesEveryCacheBlockBoundary(Op op)
    {
        // m > MC (144), n > NC (2048), k > KC (256): several blocks of each loop, with bias, accumulate and strides.
        var p = new Problem(op, 150, 2100, 300, bias: op != Op.NN, accumulate: true, pad: 5, seed: 11);
        p.Run();
        p.AssertMatchesReference();
    }

    [Fact]
    public void RandomShapesAndStridesMatchFloat64Reference()
    {
        Gen.Select(Gen.Int[0, 2], Gen.Int[1, 30], Gen.Int[1, 40], Gen.Int[0, 70], Gen.Int[0, 4], Gen.Bool, Gen.Bool, Gen.Int)
            .Sample(t =>
            {
                var (opIndex, m, n, k, pad, bias, acc, seed) = t;
                var op = (Op)opIndex;
                var p = new Problem(op, m, n, k, bias && op != Op.NN, acc, pad, seed);
                p.Run();
                p.AssertMatchesReference();
            }, iter: 300);
    }

    [Theory]
    [InlineData(Op.NT, 150, 200, 64)]   // rows split across threads
    [InlineData(Op.NT, 20, 600, 100)]   // columns split across threads
    [InlineData(Op.NN, 150, 200, 64)]
    [InlineData(Op.Bf16NT, 20, 600, 100)]
    [InlineData(Op.Bf16NT, 1, 301, 300)] // GEMV, columns split
    [InlineData(Op.NT, 1, 67, 6200)]     // long-row GEMV (four-row kernel), columns split
    [InlineData(Op.NN, 2, 3000, 40)]     // NN GEMV, columns split
    public void ResultDoesNotDependOnThreadCount(Op op, int m, int n, int k)
    {
        foreach (var path in new[] { Gemm.BestPath, Gemm.BestPath >= GemmPath.Avx2 ? GemmPath.Avx2 : GemmPath.Portable, GemmPath.Portable }.Distinct())
        {
            int saved = Gemm.MaxThreads;
            try
            {
                var one = new Problem(op, m, n, k, bias: op != Op.NN, accumulate: false, pad: 1, seed: 5);
                Gemm.MaxThreads = 1;
                OnPath(path, one.Run);
                var two = new Problem(op, m, n, k, bias: op != Op.NN, accumulate: false, pad: 1, seed: 5);
                Gemm.MaxThreads = 2;
                OnPath(path, two.Run);
                Assert.Equal(one.C, two.C);
                two.AssertMatchesReference();
            }
            finally { Gemm.MaxThreads = saved; }
        }
    }

    [Theory]
    [InlineData(1, 37, 70)]
    [InlineData(1, 9, 6200)]
    [InlineData(3, 20, 33)]
    [InlineData(40, 50, 300)]
    public void Bf16WeightsGiveTheSameBitsAsTheirF32Widening(int m, int n, int k)
    {
        // The bf16 path differs from the f32 path only in where widening happens, so on bf16-exact weights the
        // two must agree bit for bit.
        var bf = new Problem(Op.Bf16NT, m, n, k, bias: true, accumulate: false, pad: 0, seed: 3);
        bf.Run();
        var f = new float[bf.BF32.Length];
        for (int i = 0; i < f.Length; i++) f[i] = BFloat16.ToSingle(bf.B16![i]);
        var c = new float[m * n];
        fixed (float* pa = bf.A, pb = f, pc = c, pbias = bf.Bias)
            Gemm.SgemmNT(m, n, k, pa, bf.Lda, pb, bf.Ldb, pc, n, pbias);
        Assert.Equal(bf.C, c);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    public void NonFiniteInputsStayInTheirRowAndColumn(int m)
    {
        const int n = 21, k = 40;
        var rnd = new Random(9);
        var a = RandomFloats(rnd, m * k);
        var b = RandomFloats(rnd, n * k);
        b[5 * k + 17] = float.PositiveInfinity; // column 5 of C
        a[(m - 1) * k + 3] = float.NaN;         // row m-1 of C
        var c = new float[m * n];
        fixed (float* pa = a, pb = b, pc = c) Gemm.SgemmNT(m, n, k, pa, k, pb, k, pc, n);
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
            Assert.True(float.IsFinite(c[i * n + j]) == (i != m - 1 && j != 5), $"C[{i},{j}] = {c[i * n + j]}");
    }

    [Fact]
    public void EmptyInnerDimensionGivesBiasOrKeepsC()
    {
        float[] bias = [1f, -2f, 3f];
        var c = new float[] { 9, 9, 9, 9, 9, 9 };
        fixed (float* pc = c, pb = bias)
        {
            Gemm.SgemmNT(2, 3, 0, null, 0, null, 0, pc, 3, pb);
            Assert.Equal(new float[] { 1, -2, 3, 1, -2, 3 }, c);
            Gemm.GemmBf16NT(2, 3, 0, null, 0, null, 0, pc, 3, pb, accumulate: true);
            Assert.Equal(new float[] { 2, -4, 6, 2, -4, 6 }, c);
            Gemm.SgemmNN(2, 3, 0, null, 0, null, 3, pc, 3, accumulate: true);
            Assert.Equal(new float[] { 2, -4, 6, 2, -4, 6 }, c);
            Gemm.SgemmNN(2, 3, 0, null, 0, null, 3, pc, 3);
            Assert.Equal(new float[6], c);
        }
    }

    [Fact]
    public void InvalidArgumentsAreRejected()
    {
        var buf = new float[64];
        fixed (float* p = buf)
        {
            float* q = p;
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmNT(-1, 2, 2, q, 2, q, 2, q, 2));
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmNT(2, 2, 3, q, 2, q, 3, q, 2));       // lda < k
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmNT(2, 2, 3, q, 3, q, 2, q, 2));       // ldb < k
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmNN(2, 4, 3, q, 3, q, 3, q, 4));       // ldb < n
            Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.SgemmNN(2, 4, 3, q, 3, q, 4, q, 3));       // ldc < n
            Assert.Throws<ArgumentNullException>(() => Gemm.SgemmNT(2, 2, 2, null, 2, q, 2, q, 2));
            Assert.Throws<ArgumentNullException>(() => Gemm.GemmBf16NT(2, 2, 2, q, 2, null, 2, q, 2));
            Assert.Throws<ArgumentNullException>(() => Gemm.SgemmNN(2, 2, 2, q, 2, q, 2, null, 2));
        }
        Assert.Throws<ArgumentOutOfRangeException>(() => Gemm.MaxThreads = 0);
    }

    public static IEnumerable<object[]> FixtureNames()
        => new[] { "nt_gemv_m1", "nt_gemm_tails", "nn_gemm_tails", "nn_gemv_m3", "bf16_gemv_m2", "bf16_gemm" }.Select(s => new object[] { s });

    [Theory]
    [MemberData(nameof(FixtureNames))]
    public void MatchesPyTorchFixture(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(TestPaths.Fixture("gemm", "manifest.json")));
        var e = doc.RootElement.GetProperty("cases").EnumerateArray().Single(x => x.GetProperty("name").GetString() == name);
        int m = e.GetProperty("m").GetInt32(), n = e.GetProperty("n").GetInt32(), k = e.GetProperty("k").GetInt32();
        string op = e.GetProperty("op").GetString()!;
        var a = ReadBin<float>(e.GetProperty("a").GetString()!, m * k);
        var expected = ReadBin<float>(e.GetProperty("c").GetString()!, m * n);
        float[]? bias = e.GetProperty("bias").ValueKind == JsonValueKind.Null ? null : ReadBin<float>(e.GetProperty("bias").GetString()!, n);
        var c = new float[m * n];
        fixed (float* pa = a, pc = c, pbias = bias)
        {
            switch (op)
            {
                case "nt":
                    fixed (float* pb = ReadBin<float>(e.GetProperty("b").GetString()!, n * k)) Gemm.SgemmNT(m, n, k, pa, k, pb, k, pc, n, pbias);
                    break;
                case "nn":
                    Assert.Null(bias);
                    fixed (float* pb = ReadBin<float>(e.GetProperty("b").GetString()!, k * n)) Gemm.SgemmNN(m, n, k, pa, k, pb, n, pc, n);
                    break;
                case "bf16_nt":
                    fixed (ushort* pb = ReadBin<ushort>(e.GetProperty("b").GetString()!, n * k)) Gemm.GemmBf16NT(m, n, k, pa, k, pb, k, pc, n, pbias);
                    break;
                default:
                    Assert.Fail($"unknown op {op}");
                    break;
            }
        }
        double num = 0, den = 0;
        for (int i = 0; i < c.Length; i++) { double d = c[i] - (double)expected[i]; num += d * d; den += (double)expected[i] * expected[i]; }
        Assert.True(den > 0);
        double rel = Math.Sqrt(num / den);
        Assert.True(rel <= 1e-6, $"{name}: rel-L2 vs torch {rel:E3}");
    }

    private static T[] ReadBin<T>(string file, int count) where T : unmanaged
    {
        var bytes = File.ReadAllBytes(TestPaths.Fixture("gemm", file));
        Assert.Equal(count * sizeof(T), bytes.Length);
        var r = new T[count];
        bytes.AsSpan().CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(r.AsSpan()));
        return r;
    }

    private static float[] RandomFloats(Random rnd, int count)
    {
        var r = new float[count];
        for (int i = 0; i < count; i++) r[i] = (float)(rnd.NextDouble() * 2 - 1);
        return r;
    }

    /// <summary>One product with padded strides: padding of A and B holds NaN (any read of it would poison C), padding
    /// of C holds a sentinel that must survive, and C's valid part starts as NaN unless the call accumulates.</summary>
    private sealed class Problem
    {
        private const float Sentinel = 12345.5f;
        private readonly Op _op;
        private readonly int _m, _n, _k, _ldc;
        private readonly bool _accumulate;
        private readonly float[] _c0;

        public float[] A { get; }
        public float[] BF32 { get; }          // B's values as f32 (the widening of B16 for bf16)
        public ushort[]? B16 { get; }
        public float[]? Bias { get; }
        public float[] C { get; }
        public int Lda { get; }
        public int Ldb { get; }

        public Problem(Op op, int m, int n, int k, bool bias, bool accumulate, int pad, int seed)
        {
            _op = op; _m = m; _n = n; _k = k; _accumulate = accumulate;
            var rnd = new Random(seed);
            Lda = k + pad;
            Ldb = (op == Op.NN ? n : k) + pad;
            _ldc = n + pad;
            int bRows = op == Op.NN ? k : n, bCols = op == Op.NN ? n : k;
            A = Padded(rnd, m, k, Lda, float.NaN);
            BF32 = Padded(rnd, bRows, bCols, Ldb, float.NaN);
            if (op == Op.Bf16NT)
            {
                B16 = new ushort[BF32.Length];
                for (int i = 0; i < BF32.Length; i++) { B16[i] = BFloat16.FromSingle(BF32[i]); BF32[i] = BFloat16.ToSingle(B16[i]); }
            }
            Bias = bias ? RandomFloats(rnd, n) : null;
            C = Padded(rnd, m, n, _ldc, Sentinel);
            if (!accumulate)
                for (int i = 0; i < m; i++) C.AsSpan(i * _ldc, n).Fill(float.NaN);
            _c0 = (float[])C.Clone();
        }

        private static float[] Padded(Random rnd, int rows, int cols, int ld, float fill)
        {
            var r = new float[Math.Max(1, rows * ld)];
            r.AsSpan().Fill(fill);
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) r[i * ld + j] = (float)(rnd.NextDouble() * 2 - 1);
            return r;
        }

        public void Run()
        {
            fixed (float* pa = A, pb = BF32, pc = C, pbias = Bias)
            fixed (ushort* pb16 = B16)
            {
                switch (_op)
                {
                    case Op.NT: Gemm.SgemmNT(_m, _n, _k, pa, Lda, pb, Ldb, pc, _ldc, pbias, _accumulate); break;
                    case Op.NN: Gemm.SgemmNN(_m, _n, _k, pa, Lda, pb, Ldb, pc, _ldc, _accumulate); break;
                    default: Gemm.GemmBf16NT(_m, _n, _k, pa, Lda, pb16, Ldb, pc, _ldc, pbias, _accumulate); break;
                }
            }
        }

        /// <summary>rel-L2 ≤ 1e-6 (growing as √k beyond k = 256) and every element within 4u√k of its magnitude scale
        /// Σ|a||b| + |bias| + |C₀| (a probabilistic rounding bound); padding of C untouched.</summary>
        public void AssertMatchesReference()
        {
            double num = 0, den = 0;
            for (int i = 0; i < _m; i++)
            for (int j = 0; j < _n; j++)
            {
                double sum = 0, scale = 0;
                for (int p = 0; p < _k; p++)
                {
                    double x = A[i * Lda + p];
                    double y = _op == Op.NN ? BF32[p * Ldb + j] : BF32[j * Ldb + p];
                    sum += x * y;
                    scale += Math.Abs(x * y);
                }
                if (Bias is not null) { sum += Bias[j]; scale += Math.Abs(Bias[j]); }
                if (_accumulate) { sum += _c0[i * _ldc + j]; scale += Math.Abs(_c0[i * _ldc + j]); }
                double got = C[i * _ldc + j];
                double err = Math.Abs(got - sum);
                double bound = 4 * U * Math.Sqrt(Math.Max(_k, 1)) * scale;
                if (!(err <= bound))
                    Assert.Fail($"{_op} m={_m} n={_n} k={_k}: C[{i},{j}] = {got:R}, expected {sum:R} (|err| {err:E3} > {bound:E3})");
                num += err * err;
                den += sum * sum;
            }
            double rel = den == 0 ? Math.Sqrt(num) : Math.Sqrt(num / den);
            double relTol = 1e-6 * Math.Max(1, Math.Sqrt(_k / 256.0));
            Assert.True(rel <= relTol, $"{_op} m={_m} n={_n} k={_k}: rel-L2 {rel:E3} > {relTol:E3}");
            for (int i = 0; i < _m; i++)
                for (int j = _n; j < _ldc; j++)
                    if (i * _ldc + j < C.Length) Assert.Equal(Sentinel, C[i * _ldc + j]);
        }
    }
}
