using System.Diagnostics;

namespace StepAudio2.Lab.Engine.Cpu;

/// <summary>
/// Persistent worker threads for the decode GEMVs (the role of ggml-cpu's thread pool, whose workers spin between graph
/// nodes). A decoding step makes ~200 memory-bound GEMV calls of 0.1–5 ms each; through <see cref="Parallel.For(int, int, Action{int})"/>
/// every call queued a task to the thread pool and, with one part per thread, the calling thread often took the second
/// part itself before the pool thread woke (measured: ~1.1 busy cores of 2 through the int4 decode). Here the work is
/// cut into small chunks claimed from one shared counter, the caller starts on them at once, and workers that spin-wait
/// between calls (then sleep) join within microseconds: a late worker costs only the chunks it did not take.
/// </summary>
/// <remarks>
/// One job at a time: a second caller while a job runs (parallel tests, a GEMV issued from inside another worker) runs
/// its chunks alone on its own thread. Each chunk is computed entirely by one thread, so results do not depend on
/// which thread took it.
/// </remarks>
internal static class GemvTeam
{
    /// <summary>How long an idle worker spins before it sleeps: longer than the gaps between a decode step's GEMVs
    /// (norms, attention, element-wise ops: tens of µs), shorter than a pause a user would notice as a busy core.</summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 2000; // 0.5 ms

    private static readonly object Gate = new();
    private static readonly object CallerLock = new();
    private static Thread[] _workers = [];
    private static int _sleeping;

    // the current job: generation (high 32 bits) and next unclaimed chunk (low 32 bits) in one word, so a worker that
    // wakes late can only ever claim a chunk of the job it saw published
    private static long _state;
    private static Action<int>? _body;
    private static int _count;
    private static int _done;

    /// <summary>Runs body(0) … body(count − 1) on the calling thread and up to <paramref name="threads"/> − 1 workers.</summary>
    public static void For(int threads, int count, Action<int> body)
    {
        if (count <= 0) return;
        if (threads <= 1 || count == 1 || !Monitor.TryEnter(CallerLock))
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        try
        {
            EnsureWorkers(threads - 1);
            _body = body;
            _count = count;
            Volatile.Write(ref _done, 0);
            long gen = (Volatile.Read(ref _state) >> 32) + 1;
            Interlocked.Exchange(ref _state, gen << 32); // full fence: the job is visible before any worker can claim from it
            if (Volatile.Read(ref _sleeping) > 0) lock (Gate) Monitor.PulseAll(Gate);
            Work(gen, body, count);
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < count) spin.SpinOnce(-1); // only chunks already being computed remain
            _body = null;
            if (Interlocked.Exchange(ref _failure, null) is { } f) throw new AggregateException(f);
        }
        finally
        {
            Monitor.Exit(CallerLock);
        }
    }

    /// <summary>The first exception a chunk of the current job threw (recorded before the chunk counts as done).</summary>
    private static Exception? _failure;

    /// <summary>Claims and runs chunks of job <paramref name="gen"/> until none is left; every claimed chunk counts as done, thrown or not.</summary>
    private static void Work(long gen, Action<int> body, int count)
    {
        while (true)
        {
            long s = Volatile.Read(ref _state);
            if (s >> 32 != gen) return;
            int i = (int)(s & 0xFFFFFFFF);
            if (i >= count) return;
            if (Interlocked.CompareExchange(ref _state, s + 1, s) != s) continue;
            try { body(i); }
            catch (Exception e) { Interlocked.CompareExchange(ref _failure, e, null); }
            finally { Interlocked.Increment(ref _done); }
        }
    }

    private static void EnsureWorkers(int wanted)
    {
        if (_workers.Length >= wanted) return;
        var all = new Thread[wanted];
        Array.Copy(_workers, all, _workers.Length);
        for (int i = _workers.Length; i < wanted; i++)
        {
            all[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"steplab-gemv-{i + 1}" };
            all[i].Start(Volatile.Read(ref _state) >> 32);
        }
        _workers = all;
    }

    private static void WorkerLoop(object? start)
    {
        long seen = (long)start!;
        while (true)
        {
            long gen = WaitForJob(seen);
            seen = gen;
            // the job's body and count were written before its generation was published; if the caller has moved on to
            // a newer job meanwhile, the claim in Work fails on the generation and nothing runs
            var body = Volatile.Read(ref _body);
            int count = Volatile.Read(ref _count);
            if (body is null) continue;
            Work(gen, body, count);
        }
    }

    private static long WaitForJob(long seen)
    {
        long t0 = Stopwatch.GetTimestamp();
        var spin = new SpinWait();
        while (true)
        {
            long gen = Volatile.Read(ref _state) >> 32;
            if (gen != seen) return gen;
            if (Stopwatch.GetTimestamp() - t0 > SpinTicks) break;
            spin.SpinOnce(-1); // pause instructions, never a sleep: the next GEMV is usually microseconds away
        }
        lock (Gate)
        {
            Interlocked.Increment(ref _sleeping);
            try
            {
                while (true)
                {
                    long gen = Volatile.Read(ref _state) >> 32;
                    if (gen != seen) return gen;
                    Monitor.Wait(Gate, 50);
                }
            }
            finally
            {
                Interlocked.Decrement(ref _sleeping);
            }
        }
    }
}
