using System.IO.Compression;
using System.Text;
using System.Text.Json.Nodes;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>
/// The packed payloads of notebook pages (issue 13, executed notebooks ≤ 2 MB): the plotly.js bundle as deflate + basE91
/// and large figure JSON as deflate + base64. Decoded here by an independent C# port of the page's decoder.
/// </summary>
public sealed class PackedPayloadTests
{
    [Fact]
    public void Base91AlphabetNeedsNoEscapingInScriptsStringsOrJson()
    {
        var a = HtmlFragment.Base91Alphabet;
        Assert.Equal(91, a.Length);
        Assert.Equal(91, a.Distinct().Count());
        Assert.All(a, c => Assert.True(c > ' ' && c < 0x7F && c is not ('"' or '\\' or '<'), $"'{c}' in the alphabet"));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(13)]
    [InlineData(4099)]
    public void Base91RoundTripsAnyBytes(int length)
    {
        var rng = new Random(length);
        var data = new byte[length];
        rng.NextBytes(data);
        if (length > 100) Array.Clear(data, 10, 50); // runs of zeros take the 13-bit branch
        var text = HtmlFragment.Base91(data);
        Assert.Equal(data, Decode(text, length));
        Assert.True(text.Length <= Math.Ceiling(length * 16 / 13.0) + 2, $"{text.Length} chars for {length} bytes");
    }

    [Fact]
    public void PackedBundleInflatesToTheSourceAndIsSmallerThanBase64()
    {
        var js = string.Concat(Enumerable.Range(0, 3000).Select(i => $"function f{i}(a){{return a*{i % 17}+\"</script>\";}}\n"));
        var (text, deflated, length) = HtmlFragment.Pack(js);
        Assert.Equal(Encoding.UTF8.GetByteCount(js), length);
        using var z = new DeflateStream(new MemoryStream(Decode(text, deflated)), CompressionMode.Decompress);
        using var raw = new MemoryStream();
        z.CopyTo(raw);
        Assert.Equal(js, Encoding.UTF8.GetString(raw.ToArray()));
        Assert.True(text.Length < (deflated + 2) / 3 * 4, "basE91 is not shorter than base64");
        var boot = HtmlFragment.PackedBootstrap(text, deflated, length);
        Assert.DoesNotContain("</script", boot[..^10], StringComparison.OrdinalIgnoreCase);
        Assert.Contains("steplabBase91(", boot);
    }

    [Fact]
    public void LargeFiguresAreDeflatedAndReadBack()
    {
        var small = new PlotlyFigure("s", [new JsonObject { ["type"] = "scatter", ["y"] = Html.Array([1, 2, 3]) }], PlotlyFigure.BaseLayout("t", "x", "y"));
        var values = Enumerable.Range(0, 20_000).Select(i => (float)Math.Sin(i * 0.01)).ToArray();
        var large = new PlotlyFigure("l<&>", [PlotlyFigure.Heatmap(PlotlyFigure.Matrix(values, 100, 200))], PlotlyFigure.BaseLayout("big", "x", "y"));
        var html = small.ToHtml() + large.ToHtml();
        Assert.Contains("data-target=\"s\">{", html);
        Assert.Contains("data-inflated=", html);
        var read = PlotlyFigure.ReadFigures(html);
        Assert.Equal(["s", "l<&>"], read.Select(f => f.Target));
        Assert.Equal(Html.ScriptJson(small.ToJson()), read[0].Json);
        Assert.Equal(Html.ScriptJson(large.ToJson()), read[1].Json);
        Assert.True(html.Length < read[1].Json.Length / 2, $"{html.Length} chars of HTML for {read[1].Json.Length} chars of JSON");
    }

    // Mirrors steplabBase91 of HtmlFragment.Base91Js.
    private static byte[] Decode(string text, int length)
    {
        var d = new int[128];
        Array.Fill(d, -1);
        for (int i = 0; i < 91; i++) d[HtmlFragment.Base91Alphabet[i]] = i;
        var output = new List<byte>();
        int v = -1, n = 0;
        uint b = 0;
        foreach (char c in text)
        {
            int x = d[c];
            if (v < 0) { v = x; continue; }
            v += x * 91;
            b |= (uint)v << n;
            n += (v & 8191) > 88 ? 13 : 14;
            do { output.Add((byte)b); b >>= 8; n -= 8; } while (n > 7);
            v = -1;
        }
        if (v > -1) output.Add((byte)(b | (uint)v << n));
        Assert.Equal(length, output.Count);
        return output.ToArray();
    }
}
