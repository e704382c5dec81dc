using System.Diagnostics;

namespace StepAudio2.Lab.Bench;

/// <summary>
/// Per-op wall and process-CPU time (and bytes streamed) summed by op name, in first-seen order: the op profiles
/// (<c>decode-profile</c>, <c>model --only encoder_profile</c>). An op's CPU ÷ wall is how many cores it kept busy.
/// </summary>
internal sealed class OpTimer
{
    public sealed class Entry { public double WallMs, CpuMs, Bytes; public long Calls; }

    private readonly Process _proc = Process.GetCurrentProcess();
    private readonly Dictionary<string, Entry> _entries = new();
    private readonly List<string> _order = new();

    /// <summary>While false (a warm-up), ops run untimed.</summary>
    public bool Recording { get; set; } = true;

    /// <summary>Every op timed so far, in the order first seen.</summary>
    public IEnumerable<(string Name, Entry Entry)> Entries => _order.Select(n => (n, _entries[n]));

    public T Time<T>(string name, Func<T> op, long bytes = 0)
    {
        if (!Recording) return op();
        var cpu0 = _proc.TotalProcessorTime;
        long t0 = Stopwatch.GetTimestamp();
        var y = op();
        double wall = Stopwatch.GetElapsedTime(t0).TotalMilliseconds;
        _proc.Refresh();
        double cpu = (_proc.TotalProcessorTime - cpu0).TotalMilliseconds;
        if (!_entries.TryGetValue(name, out var e)) { _entries[name] = e = new Entry(); _order.Add(name); }
        e.WallMs += wall; e.CpuMs += cpu; e.Bytes += bytes; e.Calls++;
        return y;
    }

    public void Clear() { _entries.Clear(); _order.Clear(); }
}

/// <summary>The machine's load average as /proc/loadavg has it ("" where there is none): every benchmark records it.</summary>
internal static class LoadAverage
{
    public static string Now() => File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Trim() : "";
}
