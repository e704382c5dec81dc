using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Torch;

/// <summary>
/// The bytes of one stored (uncompressed) zip member, viewed in place inside the memory map of the whole archive.
/// Bounds are the member's, not the file's, so a tensor view can never read a neighbouring member.
/// </summary>
public sealed unsafe class ZipMemberStorage : TensorStorage
{
    private readonly MappedFileStorage _archive;
    private readonly long _offset;

    internal ZipMemberStorage(MappedFileStorage archive, long offset, long byteLength, string member)
    {
        if (offset < 0 || byteLength < 0 || offset > archive.ByteLength - byteLength)
            throw new ArgumentOutOfRangeException(nameof(offset), $"member range [{offset}, +{byteLength}) outside {archive.ByteLength}-byte archive");
        _archive = archive;
        _offset = offset;
        ByteLength = byteLength;
        Member = member;
    }

    /// <summary>The member's name inside the archive (<c>archive/data/0</c>).</summary>
    public string Member { get; }

    /// <summary>Absolute offset of the member's first byte in the archive file.</summary>
    public long ArchiveOffset => _offset;

    // Goes through the archive's pointer so that use after the checkpoint is disposed throws instead of reading freed pages.
    public override byte* Pointer => _archive.Pointer + _offset;
    public override long ByteLength { get; }
    public override bool IsMapped => true;
    public override string Origin => $"{_archive.Path}:{Member}";

    /// <summary>Nothing to release: the owning <see cref="TorchCheckpoint"/> holds the mapping.</summary>
    public override void Dispose() { }
}
