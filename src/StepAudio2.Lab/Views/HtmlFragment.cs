using System.IO.Compression;
using System.Text;

namespace StepAudio2.Lab.Views;

/// <summary>
/// A self-contained piece of HTML for a notebook output cell (as opposed to <see cref="ReportPage"/>'s whole page): the
/// report styles, the body, and — when the body holds plotly figures — a loader that draws every not-yet-drawn figure,
/// preceded by the plotly.js bundle when the page does not have it yet. Works where the page has requirejs (classic
/// Jupyter) and where it has not (nbconvert HTML, JupyterLab, VS Code), and never touches the network.
/// </summary>
/// <remarks>
/// A notebook page needs plotly.js once, not once per output (3.6 MB each): the kernel side decides which output carries
/// it (<see cref="Compose"/>'s <c>bootstrap</c>). The bundle travels deflated and basE91-encoded (1.34 MB instead of
/// 3.6 MB) and is inflated synchronously by <see cref="InflateJs"/>, so it is defined before the next script runs
/// (no promise to await: headless Chromium's virtual clock, Jupyter and VS Code all see the same order).
/// </remarks>
public static class HtmlFragment
{
    /// <summary>Marker class of the figure JSON elements emitted by <see cref="PlotlyFigure.ToHtml"/>.</summary>
    private const string FigureMarker = "class=\"plotly-figure\"";

    /// <summary>Tries of the loader (50 ms apart) before it says in the plot that plotly.js is not on the page.</summary>
    public const int LoaderTries = 200;

    // Draws pending figures; the target div may not be attached yet when a host evaluates the script (JupyterLab renders
    // output off-document first), so it retries for a few seconds instead of failing. Without plotly.js on the page after
    // that, each pending plot says so instead of staying blank.
    private const string Loader = """
        (function(){var tries=0;function draw(){var pending=false;
        document.querySelectorAll('script.plotly-figure:not([data-drawn])').forEach(function(s){
        var el=document.getElementById(s.dataset.target);if(!el||!window.Plotly){pending=true;return;}s.setAttribute('data-drawn','1');
        var f=steplabFigure(s);Plotly.newPlot(el,f.data,f.layout,{responsive:true,displaylogo:false});});
        if(!pending)return;if(tries++<TRIES){setTimeout(draw,50);return;}
        if(!window.Plotly)document.querySelectorAll('script.plotly-figure:not([data-drawn])').forEach(function(s){
        var el=document.getElementById(s.dataset.target);if(el&&!el.querySelector('.steplab-noplotly'))el.innerHTML=
        '<p class="hint steplab-noplotly">plotly.js is not on this page: it comes with the first chart output of the kernel '+
        'session. Run <code>Lab.ReloadPlotly()</code> and run this cell again.</p>';});}FIGUREJS draw();})();
        """;

    /// <summary>
    /// <c>steplabFigure(scriptElement)</c>: the figure of a <see cref="PlotlyFigure.ToHtml"/> script, inflating a deflated
    /// one (a JSON string of base64 DEFLATE bytes, <c>data-inflated</c> = UTF-8 length) with <see cref="InflateJs"/>.
    /// Needs <c>steplabInflate</c> in scope.
    /// </summary>
    public const string FigureJs = """
        function steplabFigure(s){var t=JSON.parse(s.textContent);if(typeof t!=='string')return t;
        var b=atob(t),z=new Uint8Array(b.length);for(var i=0;i<b.length;i++)z[i]=b.charCodeAt(i);
        return JSON.parse(new TextDecoder().decode(steplabInflate(z,+s.dataset.inflated)));}
        """;

    /// <summary>The loader with its helpers: what every fragment with figures ends with.</summary>
    internal static string LoaderScript => Loader.Replace("TRIES", LoaderTries.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal)
        .Replace("FIGUREJS", InflateJs + FigureJs, StringComparison.Ordinal);

    /// <summary>
    /// A raw-DEFLATE (RFC 1951) decoder, <c>steplabInflate(bytes, outputLength)</c>: synchronous, no dependency, enough for
    /// the one stream this page carries. Huffman codes are canonical: decoded bit by bit against per-length counts.
    /// </summary>
    public const string InflateJs = """
        function steplabInflate(src,outLen){var out=new Uint8Array(outLen),op=0,ip=0,bb=0,bc=0;
        function bits(n){while(bc<n){if(ip>=src.length)throw new Error('deflate: input ends early');bb|=src[ip++]<<bc;bc+=8;}
        var v=bb&((1<<n)-1);bb>>>=n;bc-=n;return v;}
        function table(len,off,n){var count=new Uint16Array(16),sym=new Uint16Array(n),offs=new Uint16Array(16),i;
        for(i=0;i<n;i++)count[len[off+i]]++;count[0]=0;for(i=1;i<16;i++)offs[i]=offs[i-1]+count[i-1];
        for(i=0;i<n;i++)if(len[off+i])sym[offs[len[off+i]]++]=i;return{count:count,sym:sym};}
        function decode(h){var code=0,first=0,index=0;for(var l=1;l<16;l++){code|=bits(1);var c=h.count[l];
        if(code-c<first)return h.sym[index+(code-first)];index+=c;first+=c;first<<=1;code<<=1;}throw new Error('deflate: bad code');}
        var LB=[3,4,5,6,7,8,9,10,11,13,15,17,19,23,27,31,35,43,51,59,67,83,99,115,131,163,195,227,258],
        LE=[0,0,0,0,0,0,0,0,1,1,1,1,2,2,2,2,3,3,3,3,4,4,4,4,5,5,5,5,0],
        DB=[1,2,3,4,5,7,9,13,17,25,33,49,65,97,129,193,257,385,513,769,1025,1537,2049,3073,4097,6145,8193,12289,16385,24577],
        DE=[0,0,0,0,1,1,2,2,3,3,4,4,5,5,6,6,7,7,8,8,9,9,10,10,11,11,12,12,13,13],
        ORDER=[16,17,18,0,8,7,9,6,10,5,11,4,12,3,13,2,14,1,15];
        function codes(lt,dt){for(;;){var s=decode(lt);if(s<256){out[op++]=s;continue;}if(s===256)return;s-=257;
        if(s>=29)throw new Error('deflate: bad length');var n=LB[s]+bits(LE[s]);var d=decode(dt);if(d>=30)throw new Error('deflate: bad distance');
        var dist=DB[d]+bits(DE[d]);if(dist>op)throw new Error('deflate: distance too far');for(;n>0;n--,op++)out[op]=out[op-dist];}}
        var last;do{last=bits(1);var type=bits(2);
        if(type===0){bb=0;bc=0;if(ip+4>src.length)throw new Error('deflate: input ends early');var n=src[ip]|src[ip+1]<<8;ip+=4;
        out.set(src.subarray(ip,ip+n),op);ip+=n;op+=n;}
        else if(type===1){var l=new Uint8Array(318),i;for(i=0;i<144;i++)l[i]=8;for(;i<256;i++)l[i]=9;for(;i<280;i++)l[i]=7;for(;i<288;i++)l[i]=8;
        for(i=288;i<318;i++)l[i]=5;codes(table(l,0,288),table(l,288,30));}
        else if(type===2){var nlen=bits(5)+257,ndist=bits(5)+1,ncode=bits(4)+4,cl=new Uint8Array(19),i;
        for(i=0;i<ncode;i++)cl[ORDER[i]]=bits(3);var ct=table(cl,0,19),l=new Uint8Array(nlen+ndist);
        for(i=0;i<nlen+ndist;){var s=decode(ct);if(s<16){l[i++]=s;continue;}var v=0,r;
        if(s===16){if(i===0)throw new Error('deflate: repeat with no length');v=l[i-1];r=3+bits(2);}else if(s===17)r=3+bits(3);else r=11+bits(7);
        if(i+r>nlen+ndist)throw new Error('deflate: too many lengths');while(r--)l[i++]=v;}
        codes(table(l,0,nlen),table(l,nlen,ndist));}
        else throw new Error('deflate: bad block type');}while(!last);
        if(op!==outLen)throw new Error('deflate: '+op+' bytes, expected '+outLen);return out;}
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

    /// <summary>
    /// The 91 characters of the bundle's text encoding: printable ASCII without space, <c>"</c>, <c>\</c> and <c>&lt;</c>, so
    /// the text needs no escaping in a JavaScript string, in the notebook's JSON, or in a script element (no <c>&lt;/script</c>,
    /// no <c>&lt;!--</c>). basE91 packs 13 or 14 bits into two characters: 1.23 characters per byte where base64 takes 1.33,
    /// which saves about 110 kB on the bundle, a sixth of what a notebook's own data may weigh beside it.
    /// </summary>
    public static readonly string Base91Alphabet = new(Enumerable.Range(0x21, 0x7E - 0x21 + 1).Select(c => (char)c).Where(c => c is not ('"' or '\\' or '<')).ToArray());

    /// <summary>
    /// The bundle deflated (raw RFC 1951) and basE91-encoded (<see cref="Base91Alphabet"/>), with the deflated length and the
    /// UTF-8 length: what <see cref="PackedBootstrap"/> carries.
    /// </summary>
    public static (string Text, int Deflated, int Length) Pack(string plotlyJs)
    {
        var bytes = Encoding.UTF8.GetBytes(plotlyJs);
        using var ms = new MemoryStream();
        using (var z = new DeflateStream(ms, CompressionLevel.SmallestSize, leaveOpen: true)) z.Write(bytes);
        return (Base91(ms.GetBuffer().AsSpan(0, (int)ms.Length)), (int)ms.Length, bytes.Length);
    }

    /// <summary>basE91 (Henke's scheme) over <see cref="Base91Alphabet"/>; <see cref="Base91Js"/> decodes it.</summary>
    public static string Base91(ReadOnlySpan<byte> data)
    {
        var sb = new StringBuilder(data.Length * 5 / 4 + 2);
        uint b = 0;
        int n = 0;
        foreach (var x in data)
        {
            b |= (uint)x << n;
            n += 8;
            if (n <= 13) continue;
            uint v = b & 8191;
            if (v > 88) { b >>= 13; n -= 13; }
            else { v = b & 16383; b >>= 14; n -= 14; }
            sb.Append(Base91Alphabet[(int)(v % 91)]).Append(Base91Alphabet[(int)(v / 91)]);
        }
        if (n > 0)
        {
            sb.Append(Base91Alphabet[(int)(b % 91)]);
            if (n > 7 || b > 90) sb.Append(Base91Alphabet[(int)(b / 91)]);
        }
        return sb.ToString();
    }

    /// <summary><c>steplabBase91(text, byteCount)</c>: the bytes <see cref="Base91"/> encoded, as a Uint8Array.</summary>
    public static string Base91Js =>
        "function steplabBase91(t,len){var A=\"" + Base91Alphabet + "\",D=new Int16Array(128).fill(-1),i;for(i=0;i<91;i++)D[A.charCodeAt(i)]=i;" +
        "var out=new Uint8Array(len),o=0,v=-1,b=0,n=0;for(i=0;i<t.length;i++){var d=D[t.charCodeAt(i)];if(d<0)continue;" +
        "if(v<0){v=d;continue;}v+=d*91;b|=v<<n;n+=(v&8191)>88?13:14;do{out[o++]=b&255;b>>>=8;n-=8;}while(n>7);v=-1;}" +
        "if(v>-1)out[o++]=(b|v<<n)&255;if(o!==len)throw new Error('base91: '+o+' bytes, expected '+len);return out;}";

    /// <summary>
    /// The same as <see cref="PlotlyBootstrap"/> for a bundle made by <see cref="Pack"/>: inflated and run synchronously
    /// (an inserted script element, so no <c>eval</c>), <c>define</c> hidden meanwhile.
    /// </summary>
    public static string PackedBootstrap(string text, int deflated, int length) =>
        "<script>(function(){if(window.Plotly)return;" + InflateJs + Base91Js +
        "var z=steplabBase91(\"" + text + "\"," + deflated.ToString(System.Globalization.CultureInfo.InvariantCulture) + ");" +
        "var js=new TextDecoder().decode(steplabInflate(z," + length.ToString(System.Globalization.CultureInfo.InvariantCulture) + "));" +
        "var d=window.define,m=window.module,e=window.exports;window.define=undefined;window.module=undefined;window.exports=undefined;" +
        "try{var s=document.createElement('script');s.textContent=js;(document.head||document.documentElement).appendChild(s);}" +
        "finally{window.define=d;window.module=m;window.exports=e;}})();</script>\n";

    /// <summary>True when <paramref name="body"/> holds at least one plotly figure.</summary>
    public static bool HasFigures(string body) => body.Contains(FigureMarker, StringComparison.Ordinal);

    /// <summary>
    /// The fragment: styles, <paramref name="body"/>, and (only when it has figures) the bundle from
    /// <paramref name="plotlyJs"/> once plus the loader. Standalone: every such fragment carries the bundle.
    /// </summary>
    public static string Render(string body, Func<string>? plotlyJs) =>
        Compose(body, plotlyJs is null ? null : () => PlotlyBootstrap(plotlyJs()));

    /// <summary>
    /// The fragment with the bundle decided by the caller: <paramref name="bootstrap"/> gives the script that defines
    /// plotly.js, or null when the page has it already (an earlier output of the same notebook carried it).
    /// </summary>
    public static string Compose(string body, Func<string?>? bootstrap)
    {
        bool figures = HasFigures(body);
        if (figures && bootstrap is null) throw new ArgumentException("the body has plotly figures but no plotly.js source was given", nameof(bootstrap));
        // the second rule wraps long code lines of the notebook page itself (nbconvert's HTML clips them at the edge)
        var head = $"<div class=\"steplab\"><style>{ReportPage.ScopedCss(".steplab")}{CodeWrapCss}</style>\n";
        return figures
            ? head + body + (bootstrap!() ?? "") + "<script>" + LoaderScript + "</script>\n</div>\n"
            : head + body + "</div>\n";
    }

    /// <summary>Wraps the page's code cells instead of clipping them (nbconvert's lab/classic templates, JupyterLab).</summary>
    public const string CodeWrapCss = "\n.jp-InputArea-editor pre,.jp-Cell .highlight pre,div.input_area pre{white-space:pre-wrap;overflow-wrap:anywhere}";
}
