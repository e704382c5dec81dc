using System.Runtime.InteropServices;
using System.Text.Json;

namespace StepAudio2.Lab.Tests.Audio;

/// <summary>Access to reference-data/fixtures/audio/, written by reference-data/make_audio_fixtures.py.</summary>
internal static class AudioFixtures
{
    public static string Dir => TestPaths.Fixture("audio");
    public static string File(string name) => Path.Combine(Dir, name);
    public static string RealSpeech => Path.Combine(TestPaths.SharedAudio, "real_speech.aiff");

    /// <summary>A little-endian float32 sidecar written by the Python script.</summary>
    public static float[] F32(string name)
    {
        var bytes = System.IO.File.ReadAllBytes(File(name));
        Assert.True(BitConverter.IsLittleEndian);
        Assert.Equal(0, bytes.Length % 4);
        return MemoryMarshal.Cast<byte, float>(bytes).ToArray();
    }

    public static JsonElement Json(string name) => JsonDocument.Parse(System.IO.File.ReadAllText(File(name))).RootElement;

    /// <summary>Entries of formats.json, one per fixture file, as xunit theory data (file name only).</summary>
    public static IEnumerable<object[]> FormatFixtureNames() =>
        Json("formats.json").GetProperty("fixtures").EnumerateArray().Select(e => new object[] { e.GetProperty("file").GetString()! });

    public static JsonElement FormatEntry(string file) =>
        Json("formats.json").GetProperty("fixtures").EnumerateArray().Single(e => e.GetProperty("file").GetString() == file);
}
