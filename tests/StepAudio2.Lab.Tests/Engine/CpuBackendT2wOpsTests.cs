using StepAudio2.Lab.Engine;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>
/// The CPU backend's ops that token2wav added or leans on: floor, broadcasting element-wise ops on middle and last axes
/// (one vector pass per output row), and gathering rows of an f32 activation table; each against a plain scalar loop.
/// </summary>
public sealed class CpuBackendT2wOpsTests
{
    private static Tensor Rand(int seed, float scale, params int[] shape)
    {
        var rng = new Random(seed);
        var v = new float[Tensor.CountElements(shape)];
        for (int i = 0; i < v.Length; i++) v[i] = (float)((rng.NextDouble() * 2 - 1) * scale);
        return Tensor.FromArray(v, shape);
    }

    [Fact]
    public void FloorMatchesMathFloorAcrossZeroAndIntegers()
    {
        var x = Tensor.FromArray([-2.5f, -2f, -0.25f, -0f, 0f, 0.75f, 1f, 3.999f, 123456.5f, -1e-30f], 10);
        var want = x.ToFloatArray().Select(MathF.Floor).ToArray();
        Assert.Equal(want, Ops.Floor(x).ToFloatArray());
    }

    public static IEnumerable<object[]> BroadcastCases() =>
    [
        [new[] { 2, 7, 16 }, new[] { 2, 1, 16 }],   // the DiT's modulate / gate: [B, T, D] ∘ [B, 1, D]
        [new[] { 2, 1, 16 }, new[] { 2, 7, 16 }],   // operand order kept
        [new[] { 1, 50, 9 }, new[] { 1, 50, 1 }],   // HiFT's source: [B, n, H] ∘ [B, n, 1]
        [new[] { 1, 50, 1 }, new[] { 1, 50, 9 }],
        [new[] { 3, 1, 10 }, new[] { 1, 4, 1 }],    // both broadcast
    ];

    [Theory]
    [MemberData(nameof(BroadcastCases))]
    public void BroadcastingOpsMatchAScalarLoop(int[] sa, int[] sb)
    {
        var a = Rand(1, 3, sa);
        var b = Ops.Add(Rand(2, 3, sb), Tensor.FromArray([5f], 1)); // away from zero for the division
        var shape = sa.Zip(sb, Math.Max).ToArray();
        var av = a.ToFloatArray(); var bv = b.ToFloatArray();
        foreach (var (op, f) in new (Func<Tensor, Tensor, Tensor>, Func<float, float, float>)[]
                 {
                     (Ops.Add, (p, q) => p + q), (Ops.Subtract, (p, q) => p - q), (Ops.Multiply, (p, q) => p * q),
                     (Ops.Divide, (p, q) => p / q), (Ops.Maximum, MathF.Max), (Ops.Minimum, MathF.Min),
                 })
        {
            var y = op(a, b);
            Assert.Equal(shape, y.Shape);
            var got = y.ToFloatArray();
            int n = 0;
            for (int i = 0; i < shape[0]; i++)
                for (int j = 0; j < shape[1]; j++)
                    for (int k = 0; k < shape[2]; k++, n++)
                    {
                        float p = av[Index(sa, i, j, k)], q = bv[Index(sb, i, j, k)];
                        Assert.Equal(f(p, q), got[n]);
                    }
        }
    }

    private static int Index(int[] s, int i, int j, int k) =>
        ((s[0] == 1 ? 0 : i) * s[1] + (s[1] == 1 ? 0 : j)) * s[2] + (s[2] == 1 ? 0 : k);

    [Fact]
    public void TakeGathersRowsOfAnF32TableAndNamesABadId()
    {
        var table = Rand(3, 1, 6, 9);
        int[] ids = [5, 0, 0, 3];
        var y = Ops.Take(table, ids);
        var tv = table.ToFloatArray();
        Assert.Equal(ids.SelectMany(i => tv.Skip(i * 9).Take(9)).ToArray(), y.ToFloatArray());
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => Ops.Take(table, [1, 6]));
        Assert.Contains("id 6 at position 1", e.Message);
    }
}
