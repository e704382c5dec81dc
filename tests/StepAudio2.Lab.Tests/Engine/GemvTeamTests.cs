using StepAudio2.Lab.Engine.Cpu;

namespace StepAudio2.Lab.Tests.Engine;

/// <summary>The persistent GEMV workers (<see cref="GemvTeam"/>): every chunk runs exactly once per call, a chunk's
/// exception reaches the caller and leaves the team usable, and concurrent callers each get all of their chunks.</summary>
public sealed class GemvTeamTests
{
    [Fact]
    public void EveryChunkRunsExactlyOncePerCall()
    {
        foreach (int threads in new[] { 2, 4 })
            for (int count = 0; count <= 130; count += 13)
                for (int call = 0; call < 20; call++)
                {
                    var hits = new int[count];
                    GemvTeam.For(threads, count, i => Interlocked.Increment(ref hits[i]));
                    Assert.All(hits, h => Assert.Equal(1, h));
                }
    }

    [Fact]
    public void AChunksExceptionReachesTheCallerAndTheTeamKeepsWorking()
    {
        var e = Assert.Throws<AggregateException>(() => GemvTeam.For(2, 64, i =>
        {
            Thread.SpinWait(200);
            if (i == 37) throw new InvalidOperationException("chunk 37");
        }));
        Assert.Contains("chunk 37", e.InnerException!.Message);
        var hits = new int[64];
        GemvTeam.For(2, 64, i => Interlocked.Increment(ref hits[i]));
        Assert.All(hits, h => Assert.Equal(1, h));
    }

    [Fact]
    public void ConcurrentCallersEachGetAllTheirChunks()
    {
        var totals = new long[4];
        Parallel.For(0, 4, new ParallelOptions { MaxDegreeOfParallelism = 4 }, c =>
        {
            for (int call = 0; call < 50; call++)
            {
                long sum = 0;
                GemvTeam.For(2, 40, i => Interlocked.Add(ref sum, i + 1));
                Assert.Equal(40 * 41 / 2, sum);
                totals[c] += sum;
            }
        });
        Assert.All(totals, t => Assert.Equal(50L * 820, t));
    }
}
