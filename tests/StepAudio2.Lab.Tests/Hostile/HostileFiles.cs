using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using StepAudio2.Lab.Cli;

namespace StepAudio2.Lab.Tests.Hostile;

/// <summary>Generators of hostile inputs (built here, byte by byte, never stored as blobs) and an in-process CLI runner.</summary>
internal static partial class HostileFiles
{
    /// <summary>Runs <c>steplab</c> in-process; returns exit code, stdout, stderr.</summary>
    public static (int Code, string Out, string Err) RunCli(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = StepLabCli.Run(args, o, e, stdin: new StringReader(""));
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>A canonical 44-byte-header WAV: PCM16 (tag 1) or float32 (tag 3) samples, mono.</summary>
    public static byte[] Wav(uint sampleRate, ReadOnlySpan<float> samples, bool float32 = false)
    {
        int bps = float32 ? 4 : 2;
        var data = new byte[samples.Length * bps];
        for (int i = 0; i < samples.Length; i++)
        {
            if (float32) BinaryPrimitives.WriteSingleLittleEndian(data.AsSpan(i * 4), samples[i]);
            else BinaryPrimitives.WriteInt16LittleEndian(data.AsSpan(i * 2), (short)Math.Clamp(samples[i] * 32767f, -32768f, 32767f));
        }
        var b = new MemoryStream();
        var w = new BinaryWriter(b);
        w.Write("RIFF"u8); w.Write((uint)(36 + data.Length)); w.Write("WAVE"u8);
        w.Write("fmt "u8); w.Write(16u); w.Write((ushort)(float32 ? 3 : 1)); w.Write((ushort)1);
        w.Write(sampleRate); w.Write(sampleRate * (uint)bps); w.Write((ushort)bps); w.Write((ushort)(bps * 8));
        w.Write("data"u8); w.Write((uint)data.Length); w.Write(data);
        return b.ToArray();
    }

    /// <summary>A sine at <paramref name="hz"/> of <paramref name="n"/> samples at <paramref name="rate"/>.</summary>
    public static float[] Tone(int n, double rate, double hz = 440) =>
        Enumerable.Range(0, n).Select(i => (float)(0.3 * Math.Sin(2 * Math.PI * hz * i / rate))).ToArray();

    /// <summary>A safetensors file with F32 tensors of the given names (1 element each), written byte by byte.</summary>
    public static byte[] SafetensorsBytes(params string[] names)
    {
        var header = new StringBuilder("{");
        for (int i = 0; i < names.Length; i++)
        {
            if (i > 0) header.Append(',');
            header.Append(System.Text.Json.JsonSerializer.Serialize(names[i]))
                .Append($":{{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[{i * 4},{i * 4 + 4}]}}");
        }
        header.Append('}');
        var h = Encoding.UTF8.GetBytes(header.ToString());
        int pad = (8 - h.Length % 8) % 8;
        var bytes = new byte[8 + h.Length + pad + names.Length * 4];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)(h.Length + pad));
        h.CopyTo(bytes, 8);
        for (int i = 0; i < pad; i++) bytes[8 + h.Length + i] = (byte)' ';
        for (int i = 0; i < names.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(8 + h.Length + pad + i * 4), i + 1);
        return bytes;
    }

    [LibraryImport("libc", EntryPoint = "mkfifo", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int MkFifo(string path, uint mode);

    /// <summary>Makes a FIFO at <paramref name="path"/> and writes <paramref name="content"/> into it on a background thread (as <c>&lt;(printf …)</c> would).</summary>
    public static Task FeedFifo(string path, byte[] content)
    {
        if (MkFifo(path, Convert.ToUInt32("600", 8)) != 0) throw new IOException($"mkfifo {path} failed: errno {Marshal.GetLastPInvokeError()}");
        return Task.Run(() =>
        {
            using var w = new FileStream(path, FileMode.Open, FileAccess.Write);
            // Dribble the bytes so a reader that sniffs a few and reopens would see a short remainder.
            foreach (var chunk in content.Chunk(3)) { w.Write(chunk); w.Flush(); }
        });
    }
}
