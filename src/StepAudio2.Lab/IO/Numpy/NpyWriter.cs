using System.Diagnostics;
using System.Buffers.Binary;
using System.Text;
using StepAudio2.Lab.Tensors;

namespace StepAudio2.Lab.IO.Numpy;

/// <summary>Options for <see cref="NpyWriter"/> and <see cref="NpzWriter"/>.</summary>
public sealed record NpyWriteOptions
{
    public static NpyWriteOptions Default { get; } = new();

    /// <summary>numpy has no bfloat16: when true, BF16 tensors are widened (exactly) to <c>&lt;f4</c>; when false they are refused.</summary>
    public bool BFloat16AsFloat32 { get; init; }
}

/// <summary>
/// Writes tensors as NumPy <c>.npy</c>: little-endian, C order, format 1.0 (2.0 when the header exceeds 65535 bytes),
/// with the header laid out byte-for-byte as numpy 1.24 writes it (same key order, growth padding, 64-byte alignment).
/// Strided views are written in logical (row-major) order.
/// </summary>
public static class NpyWriter
{
    private const int Align = 64;
    // numpy leaves room to grow the first axis in place: it pads the dict so the first dimension could take 21 digits.
    private const int GrowthAxisMaxDigits = 21;

    /// <summary>Writes <paramref name="tensor"/> to <paramref name="path"/> (via a temporary sibling, so a failed write leaves no half file).</summary>
    public static void Write(string path, Tensor tensor, NpyWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        tensor = Prepare(tensor, options);
        string full = Path.GetFullPath(path);
        string temp = full + ".tmp-" + Guid.NewGuid().ToString("N")[..8];
        try
        {
            using (var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
                WritePrepared(stream, tensor);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    /// <summary>Writes <paramref name="tensor"/> as a complete .npy to <paramref name="stream"/> at its current position.</summary>
    public static void Write(Stream stream, Tensor tensor, NpyWriteOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        WritePrepared(stream, Prepare(tensor, options));
    }

    /// <summary>The magic, version, length field and padded header dict for an array of this dtype and shape.</summary>
    public static byte[] BuildHeader(DType dtype, IReadOnlyList<int> shape)
    {
        var dict = new StringBuilder("{'descr': '").Append(NpyDescr.For(dtype)).Append("', 'fortran_order': False, 'shape': ");
        dict.Append(NpyReader.ShapeText(shape)).Append(", }");
        if (shape.Count > 0) dict.Append(' ', GrowthAxisMaxDigits - shape[0].ToString(System.Globalization.CultureInfo.InvariantCulture).Length);
        byte[] text = Encoding.ASCII.GetBytes(dict.ToString());

        // Exactly numpy's _wrap_header: pad with spaces then '\n' so the data starts on a 64-byte boundary
        // (a full 64 bytes of padding when already aligned, as numpy does).
        foreach (var (major, prefix) in new[] { (1, 10), (2, 12) })
        {
            int hlen = text.Length + 1;
            int pad = Align - (prefix + hlen) % Align;
            long headerLength = (long)hlen + pad;
            if (major == 1 && headerLength > ushort.MaxValue) continue;
            var bytes = new byte[prefix + headerLength];
            NpyReader.Magic.CopyTo(bytes);
            bytes[6] = (byte)major;
            bytes[7] = 0;
            if (major == 1) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), (ushort)headerLength);
            else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(8), checked((uint)headerLength));
            text.CopyTo(bytes, prefix);
            bytes.AsSpan(prefix + text.Length, pad).Fill((byte)' ');
            bytes[^1] = (byte)'\n';
            return bytes;
        }
        throw new UnreachableException();
    }

    private static Tensor Prepare(Tensor tensor, NpyWriteOptions? options)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor.DType != DType.BF16) return tensor;
        if ((options ?? NpyWriteOptions.Default).BFloat16AsFloat32) return tensor.To(DType.F32);
        throw new ArgumentException(
            $"cannot write a bf16 tensor {Tensor.ShapeString(tensor.Shape)} as .npy: numpy has no bfloat16 dtype. " +
            "Convert it (tensor.To(DType.F32)) or pass new NpyWriteOptions { BFloat16AsFloat32 = true }.", nameof(tensor));
    }

    private static void WritePrepared(Stream stream, Tensor tensor)
    {
        stream.Write(BuildHeader(tensor.DType, tensor.Shape));
        WriteLogicalData(stream, tensor);
    }

    /// <summary>Writes the elements in row-major order: whole spans when contiguous, last-axis rows gathered otherwise.</summary>
    internal static unsafe void WriteLogicalData(Stream stream, Tensor tensor)
    {
        if (tensor.ElementCount == 0) return;
        int size = tensor.DType.SizeOf();
        byte* basePtr = tensor.Storage.Pointer;
        if (tensor.IsContiguous)
        {
            long offset = tensor.Offset * size, remaining = tensor.ByteCount;
            while (remaining > 0)
            {
                int n = (int)Math.Min(remaining, 1 << 30);
                stream.Write(new ReadOnlySpan<byte>(basePtr + offset, n));
                offset += n;
                remaining -= n;
            }
            GC.KeepAlive(tensor); // basePtr does not keep the storage alive
            return;
        }

        int rank = tensor.Rank; // > 0: a rank-0 tensor is always contiguous
        int inner = tensor.Shape[rank - 1];
        long innerStride = tensor.Strides[rank - 1];
        var buffer = new byte[Math.Max(1 << 16, inner * size)];
        int used = 0;
        var index = new int[rank - 1];
        long rowStart = tensor.Offset;
        long rows = tensor.ElementCount / inner;
        for (long r = 0; r < rows; r++)
        {
            if (used + inner * size > buffer.Length) { stream.Write(buffer, 0, used); used = 0; }
            fixed (byte* dst0 = buffer)
            {
                byte* dst = dst0 + used;
                if (innerStride == 1)
                    Buffer.MemoryCopy(basePtr + rowStart * size, dst, inner * size, inner * size);
                else
                    for (int i = 0; i < inner; i++)
                        Buffer.MemoryCopy(basePtr + (rowStart + i * innerStride) * size, dst + i * size, size, size);
            }
            used += inner * size;
            // Advance the outer multi-index (odometer over all axes but the last).
            for (int d = rank - 2; d >= 0; d--)
            {
                rowStart += tensor.Strides[d];
                if (++index[d] < tensor.Shape[d]) break;
                rowStart -= tensor.Strides[d] * tensor.Shape[d];
                index[d] = 0;
            }
        }
        stream.Write(buffer, 0, used);
    }
}
