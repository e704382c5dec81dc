using System.Buffers.Binary;
using System.IO.Compression;
using StepAudio2.Lab.IO.Numpy;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A minimal PNG encoder (8-bit RGB or, when the image has at most 256 colours, 8-bit palette; filter 0; zlib by
/// System.IO.Compression) for static, script-free images. The views' colour ramps are quantised to fewer than 256 steps, so
/// their images take the palette form: one byte per pixel instead of three, which deflates to about a third.
/// </summary>
public static class PngImage
{
    /// <summary>Encodes row-major RGB bytes (3 per pixel, top row first).</summary>
    public static byte[] EncodeRgb(int width, int height, ReadOnlySpan<byte> rgb)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(width);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(height);
        if (rgb.Length != (long)width * height * 3) throw new ArgumentException($"{rgb.Length} bytes are not {width}×{height} RGB pixels", nameof(rgb));
        var indexed = ToPalette(rgb, out var palette);
        using var png = new MemoryStream();
        png.Write([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A]);
        Span<byte> ihdr = stackalloc byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr[4..], height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = (byte)(indexed is null ? 2 : 3); // colour type RGB or palette
        Chunk(png, "IHDR"u8, ihdr);
        if (indexed is not null) Chunk(png, "PLTE"u8, palette);
        int stride = indexed is null ? width * 3 : width;
        ReadOnlySpan<byte> pixels = indexed is null ? rgb : indexed;
        using (var raw = new MemoryStream())
        {
            using (var z = new ZLibStream(raw, CompressionLevel.Optimal, leaveOpen: true))
                for (int y = 0; y < height; y++)
                {
                    z.WriteByte(0); // filter: none
                    z.Write(pixels.Slice(y * stride, stride));
                }
            Chunk(png, "IDAT"u8, raw.GetBuffer().AsSpan(0, (int)raw.Length));
        }
        Chunk(png, "IEND"u8, []);
        return png.ToArray();
    }

    /// <summary>One palette index per pixel and the PLTE bytes, or null when the image has more than 256 colours.</summary>
    private static byte[]? ToPalette(ReadOnlySpan<byte> rgb, out byte[] palette)
    {
        var index = new Dictionary<int, byte>();
        var indexed = new byte[rgb.Length / 3];
        var plte = new List<byte>();
        palette = [];
        for (int p = 0; p < indexed.Length; p++)
        {
            int key = rgb[3 * p] << 16 | rgb[3 * p + 1] << 8 | rgb[3 * p + 2];
            if (!index.TryGetValue(key, out var i))
            {
                if (index.Count == 256) return null;
                i = (byte)index.Count;
                index.Add(key, i);
                plte.Add(rgb[3 * p]); plte.Add(rgb[3 * p + 1]); plte.Add(rgb[3 * p + 2]);
            }
            indexed[p] = i;
        }
        palette = plte.ToArray();
        return indexed;
    }

    private static void Chunk(Stream s, ReadOnlySpan<byte> type, ReadOnlySpan<byte> data)
    {
        Span<byte> u32 = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(u32, data.Length);
        s.Write(u32);
        s.Write(type);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(u32, Crc32.Append(Crc32.Append(0, type), data));
        s.Write(u32);
    }
}
