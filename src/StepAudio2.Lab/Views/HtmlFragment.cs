namespace StepAudio2.Lab.Views;

/// <summary>
/// A self-contained piece of HTML for a notebook output cell (as opposed to <see cref="ReportPage"/>'s whole page): the
/// report styles, the body, and — when the body holds plotly figures — the inline plotly.js bundle plus a loader that
/// draws every not-yet-drawn figure. Works where the page has requirejs (classic Jupyter) and where it has not (nbconvert
/// HTML, JupyterLab), and never touches the network.
/// </summary>
public static class HtmlFragment
{
    /// <summary>Marker class of the figure JSON elements emitted by <see cref="PlotlyFigure.ToHtml"/>.</summary>
    private const string FigureMarker = "class=\"plotly-figure\"";

    // Draws pending figures; the target div may not be attached yet when a host evaluates the script (JupyterLab renders
    // output off-document first), so it retries for a few seconds instead of failing.
    private const string Loader = """
        (function(){var tries=0;function draw(){if(!window.Plotly){if(tries++<100)setTimeout(draw,50);return;}
        var pending=false;document.querySelectorAll('script.plotly-figure:not([data-drawn])').forEach(function(s){
        var el=document.getElementById(s.dataset.target);if(!el){pending=true;return;}s.setAttribute('data-drawn','1');
        var f=JSON.parse(s.textContent);Plotly.newPlot(el,f.data,f.layout,{responsive:true,displaylogo:false});});
        if(pending&&tries++<100)setTimeout(draw,50);}draw();})();
        """;

    /// <summary>
    /// The plotly.js bundle as a script that runs only when <c>window.Plotly</c> is not there yet, with AMD's <c>define</c>
    /// hidden meanwhile: under requirejs the bundle would register an anonymous module instead of setting <c>window.Plotly</c>.
    /// </summary>
    public static string PlotlyBootstrap(string plotlyJs) =>
        "<script>(function(){if(window.Plotly)return;var d=window.define,m=window.module,e=window.exports;" +
        "window.define=undefined;window.module=undefined;window.exports=undefined;try{\n" +
        PlotlyScript.ForInlineScript(plotlyJs) +
        "\n}finally{window.define=d;window.module=m;window.exports=e;}})();</script>\n";

    /// <summary>True when <paramref name="body"/> holds at least one plotly figure.</summary>
    public static bool HasFigures(string body) => body.Contains(FigureMarker, StringComparison.Ordinal);

    /// <summary>
    /// The fragment: styles, <paramref name="body"/>, and (only when it has figures) the bundle from
    /// <paramref name="plotlyJs"/> once plus the loader.
    /// </summary>
    public static string Render(string body, Func<string>? plotlyJs)
    {
        bool figures = HasFigures(body);
        if (figures && plotlyJs is null) throw new ArgumentException("the body has plotly figures but no plotly.js source was given", nameof(plotlyJs));
        var head = $"<div class=\"steplab\"><style>{ReportPage.ScopedCss(".steplab")}</style>\n";
        return figures
            ? head + body + PlotlyBootstrap(plotlyJs!()) + "<script>" + Loader + "</script>\n</div>\n"
            : head + body + "</div>\n";
    }
}
