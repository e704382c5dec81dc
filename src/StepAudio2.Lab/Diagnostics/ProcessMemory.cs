namespace StepAudio2.Lab.Diagnostics;

/// <summary>Peak resident memory of this process (Linux VmHWM; mapped weight pages count once touched), for honest numbers.</summary>
public static class ProcessMemory
{
    public static long PeakRssBytes()
    {
        if (!File.Exists("/proc/self/status")) return Environment.WorkingSet;
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith("VmHWM:", StringComparison.Ordinal)) return ParseStatusKb(line);
        return Environment.WorkingSet;
    }

    /// <summary>Bytes of a /proc status line such as "VmHWM:\t15431408 kB" (tabs or spaces before the number).</summary>
    internal static long ParseStatusKb(string line) =>
        long.Parse(line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[1]) * 1024;
}
