using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.Models.Token2Wav;

/// <summary>
/// A small thread-safe pool of contiguous f32 tensors for HiFT's large intermediates (up to 64 × 24 000 floats per
/// 4 s). Why: a fresh multi-megabyte array is new memory to the OS, and first-touch page faults on it cost as much as
/// the convolution that fills it on this machine; reused buffers are already mapped. Bounded: at most 6 buffers of a
/// size and 256 MB in all; a buffer that would pass the cap first evicts the other sizes (a new audio length), then is
/// dropped if it still does not fit.
/// </summary>
internal sealed class HiftScratch(long capBytes = 256L << 20)
{
    private const int PerSize = 6;
    private readonly Dictionary<long, Stack<Tensor>> _free = new();
    private long _bytes;

    /// <summary>A contiguous f32 tensor of <paramref name="shape"/>; its contents are undefined (callers overwrite all of it).</summary>
    public Tensor Rent(params int[] shape)
    {
        long n = Tensor.CountElements(shape);
        lock (_free)
            if (_free.TryGetValue(n, out var stack) && stack.TryPop(out var t))
            {
                _bytes -= t.ByteCount;
                return t.Reshape(shape);
            }
        return Tensor.Zeros(DType.F32, shape);
    }

    /// <summary>Bytes held for reuse (for tests).</summary>
    public long PooledBytes { get { lock (_free) return _bytes; } }

    /// <summary>Gives back a tensor the caller owns outright (no other reference will read or write it again).</summary>
    public void Return(Tensor t)
    {
        if (t.ByteCount > capBytes || t.Storage is not ManagedStorage || t.DType != DType.F32 || !t.IsContiguous || t.Offset != 0 || t.Storage.ByteLength != t.ByteCount) return;
        lock (_free)
        {
            if (_bytes + t.ByteCount > capBytes)
                foreach (var n in _free.Keys.Where(n => n != t.ElementCount).ToList())
                {
                    _bytes -= _free[n].Sum(x => x.ByteCount);
                    _free.Remove(n);
                }
            if (_bytes + t.ByteCount > capBytes) return;
            if (!_free.TryGetValue(t.ElementCount, out var stack)) _free[t.ElementCount] = stack = new Stack<Tensor>();
            if (stack.Count >= PerSize) return;
            stack.Push(t);
            _bytes += t.ByteCount;
        }
    }
}
