using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The small HTML table: header, escaping, number formatting.</summary>
public sealed class TableViewTests
{
    [Fact]
    public void RendersHeaderAndRowsWithEscapedTextAndCompactNumbers()
    {
        var html = TableView.Render(["id", "token", "p"], [[151690, "<audio_patch>", 0.000423836946828], [7, null, 1.0f]]);
        Assert.Equal(
            "<table class=\"stats\"><tr><th>id</th><th>token</th><th>p</th></tr>\n" +
            "<tr><td>151690</td><td>&lt;audio_patch&gt;</td><td>0.0004238</td></tr>\n" +
            "<tr><td>7</td><td></td><td>1</td></tr>\n</table>\n", html);
    }
}
