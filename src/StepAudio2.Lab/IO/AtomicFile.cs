namespace StepAudio2.Lab.IO;

/// <summary>
/// A file written beside its destination under a temporary name and renamed over it only once complete and flushed:
/// a full disk (ENOSPC), a crash or an exception leaves the old file (or none), never a truncated one whose header
/// promises more than it holds. Dispose without <see cref="Commit"/> deletes the temporary file.
/// </summary>
public sealed class AtomicFile : IDisposable
{
    private readonly string _temp;
    private bool _done;

    private AtomicFile(string path, Func<string, Stream>? open)
    {
        FullPath = System.IO.Path.GetFullPath(path);
        if (Directory.Exists(FullPath))
            throw new IOException($"cannot write {path}: it is a directory");
        string dir = System.IO.Path.GetDirectoryName(FullPath)!;
        if (!Directory.Exists(dir))
            throw new DirectoryNotFoundException($"cannot write {path}: folder {dir} does not exist");
        _temp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(FullPath)}.{Guid.NewGuid():N}.tmp");
        Stream = open?.Invoke(_temp) ?? new FileStream(_temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16);
    }

    /// <summary>Starts writing <paramref name="path"/>; <paramref name="open"/> replaces the temporary file's stream (tests inject failing streams).</summary>
    public static AtomicFile Create(string path, Func<string, Stream>? open = null) => new(path, open);

    /// <summary>The destination.</summary>
    public string FullPath { get; }

    /// <summary>Where to write the content.</summary>
    public Stream Stream { get; }

    /// <summary>Flushes to disk and renames the temporary file over the destination.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (Stream is FileStream fs) fs.Flush(flushToDisk: true);
        else Stream.Flush();
        Stream.Dispose();
        File.Move(_temp, FullPath, overwrite: true);
        _done = true;
    }

    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { Stream.Dispose(); } catch (IOException) { } // a full disk can fail the final flush too
        try { File.Delete(_temp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    /// <summary>Writes <paramref name="path"/> atomically through <paramref name="write"/>.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        using var f = Create(path);
        write(f.Stream);
        f.Commit();
    }
}
