using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO;

/// <summary>One tensor as listed by a file's header or index, before (or without) loading its data.</summary>
/// <param name="Name">Key in the file (safetensors/state-dict key, .npz member without ".npy").</param>
/// <param name="File">The file that holds (or, for an index, should hold) the data.</param>
public sealed record TensorInfo(string Name, DType DType, int[] Shape, long ByteLength, string File)
{
    public long ElementCount => Tensor.CountElements(Shape);

    /// <summary>
    /// False when only the name and file are known (an index entry whose shard is absent or lacks the tensor):
    /// <see cref="DType"/>, <see cref="Shape"/> and <see cref="ByteLength"/> are then placeholders (F32, [], 0).
    /// </summary>
    public bool IsResolved { get; init; } = true;
}

/// <summary>
/// A named collection of tensors read from one or more files (safetensors, sharded checkpoint, .npz, .npy, torch .pt).
/// Listing is cheap (headers only); <see cref="Get"/> returns zero-copy views where the format allows.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>The file or folder this source was opened from.</summary>
    string Path { get; }

    /// <summary>Every tensor, in file order.</summary>
    IReadOnlyList<TensorInfo> Tensors { get; }

    bool Contains(string name);

    /// <summary>Loads one tensor; throws a <see cref="LabDataException"/> naming the key when absent or unreadable.</summary>
    Tensor Get(string name);
}
