using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Tests.Views;

/// <summary>The plain listing table: escaped cells, invariant numbers, rows checked against the columns.</summary>
public sealed class TableViewTests
{
    [Fact]
    public void RendersHeaderAndEscapedInvariantCells()
    {
        var html = TableView.Render(["role", "content", "n"], [["assistant", "<tool_call>a & b", 1.5], ["input", null, 12345678.0]], "turns");
        Assert.Equal("<table class=\"turns\"><tr><th>role</th><th>content</th><th>n</th></tr>" +
                     "<tr><td>assistant</td><td>&lt;tool_call&gt;a &amp; b</td><td>1.5</td></tr>" +
                     "<tr><td>input</td><td></td><td>1.235E+07</td></tr></table>\n", html);
    }

    [Fact]
    public void RowWithWrongWidthIsRejectedNamingTheRow()
    {
        var e = Assert.Throws<ArgumentException>(() => TableView.Render(["a", "b"], [["1", "2"], ["3"]]));
        Assert.Contains("row 1 has 1 values, the table has 2 columns", e.Message);
        Assert.Throws<ArgumentException>(() => TableView.Render([], []));
    }

    [Fact]
    public void RendersHeaderAndRowsWithEscapedTextAndCompactNumbers()
    {
        var html = TableView.Render(["id", "token", "p"], [[151690, "<audio_patch>", 0.000423836946828], [7, null, 1.0f]]);
        Assert.Equal(
            "<table class=\"listing\"><tr><th>id</th><th>token</th><th>p</th></tr>" +
            "<tr><td>151690</td><td>&lt;audio_patch&gt;</td><td>0.0004238</td></tr>" +
            "<tr><td>7</td><td></td><td>1</td></tr></table>\n", html);
    }
}
