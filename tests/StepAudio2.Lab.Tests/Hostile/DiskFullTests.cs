using System.Diagnostics;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Cli;
using StepAudio2.Lab.IO;
using Xunit.Abstractions;
using static StepAudio2.Lab.Tests.Hostile.HostileFiles;

namespace StepAudio2.Lab.Tests.Hostile;

/// <summary>
/// ENOSPC: writers are atomic (temporary file + rename) and the CLI exits 2 naming the path and the reason. A real full
/// disk is a 64 KiB tmpfs mounted for the test (CI runs as root); where mounting is not allowed the test says so in its
/// output and the injected-stream case below still covers the writers' behaviour.
/// </summary>
public sealed class DiskFullTests(ITestOutputHelper output)
{
    /// <summary>A stream that accepts <paramref name="capacity"/> bytes, then fails as a full disk does.</summary>
    private sealed class FullDiskStream(int capacity) : MemoryStream
    {
        public override void Write(byte[] buffer, int offset, int count)
        {
            if (Length + count > capacity) throw new IOException("No space left on device (injected)", 28);
            base.Write(buffer, offset, count);
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            if (Length + buffer.Length > capacity) throw new IOException("No space left on device (injected)", 28);
            base.Write(buffer);
        }
    }

    [Fact]
    public void Atomic_file_leaves_nothing_when_the_stream_fails()
    {
        using var dir = TestPaths.Temp();
        string target = dir.File("out.wav");
        File.WriteAllText(target, "previous content");
        string? temp = null;
        var ex = Assert.Throws<IOException>(() =>
        {
            using var f = AtomicFile.Create(target, p => { temp = p; File.WriteAllBytes(p, []); return new FullDiskStream(1000); });
            WavWriter.Write(f.Stream, Tone(24000, 24000), 1, 24000, WavSampleFormat.Float32);
            f.Commit();
        });
        Assert.Contains("No space left", ex.Message);
        Assert.Equal("previous content", File.ReadAllText(target)); // the old file is untouched
        Assert.NotNull(temp);
        Assert.False(File.Exists(temp));
        Assert.Single(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void Out_at_a_directory_names_it()
    {
        using var dir = TestPaths.Temp();
        var ex = Assert.Throws<IOException>(() => WavWriter.Write(dir.Path, Tone(10, 16000), 16000));
        Assert.Contains("is a directory", ex.Message);
    }

    [Fact]
    public void Real_full_disk_gives_exit_2_with_path_and_reason_and_no_partial_file()
    {
        using var dir = TestPaths.Temp();
        string mount = dir.File("tiny");
        Directory.CreateDirectory(mount);
        if (!TryMountTmpfs(mount, out string why))
        {
            output.WriteLine($"NOT RUN against a real full disk: cannot mount a 64 KiB tmpfs ({why}); the injected-stream test covers the writers.");
            return;
        }
        try
        {
            string wav = dir.File("in.wav");
            File.WriteAllBytes(wav, Wav(16000, Tone(16000 * 5, 16000)));
            foreach (string outName in new[] { "m.safetensors", "m.npz", "m.npy" })
            {
                string target = Path.Combine(mount, outName);
                var (code, _, err) = RunCli("mel", wav, "--out", target);
                Assert.Equal(StepLabCli.BadInput, code);
                Assert.Contains("No space left on device", err);
                Assert.Empty(Directory.GetFiles(mount)); // no partial output, no temporary file
            }
            var big = Tone(24000 * 5, 24000);
            var ex = Assert.Throws<IOException>(() => WavWriter.Write(Path.Combine(mount, "x.wav"), big, 24000));
            Assert.Contains("No space left on device", ex.Message);
            Assert.Empty(Directory.GetFiles(mount));
        }
        finally
        {
            Run("umount", mount, out _);
        }
    }

    private static bool TryMountTmpfs(string dir, out string why)
    {
        if (!OperatingSystem.IsLinux()) { why = "not Linux"; return false; }
        return Run("mount", $"-t tmpfs -o size=64k tmpfs {dir}", out why);
    }

    private static bool Run(string exe, string args, out string stderr)
    {
        try
        {
            using var p = Process.Start(new ProcessStartInfo(exe, args) { RedirectStandardError = true, RedirectStandardOutput = true })!;
            stderr = p.StandardError.ReadToEnd();
            p.WaitForExit(10_000);
            return p.HasExited && p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            stderr = e.Message;
            return false;
        }
    }
}
