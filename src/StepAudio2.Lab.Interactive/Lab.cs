using System.Reflection;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>
/// The notebook-facing facade: where the bundled data is, one-call helpers for the stages a notebook shows, and
/// <see cref="Show"/>. Thin on purpose: the work is the core library's (the same views back <c>steplab report</c>).
/// </summary>
public static partial class Lab
{
    /// <summary>The mel's documented acceptance bound (<see cref="ReferenceOverrides.Mel"/>, as <c>steplab report</c> applies it).</summary>
    public static ToleranceOverride MelOverride => ReferenceOverrides.Mel;

    private static readonly Lazy<string> Root = new(FindRepoRoot);

    /// <summary>The repository checkout (the folder holding <c>reference-data/tiny</c>), found from the working directory
    /// (Jupyter starts the kernel in <c>notebooks/</c>) or from this assembly's location.</summary>
    public static string RepoRoot => Root.Value;

    /// <summary>The bundled tiny checkpoint (official key names, random weights): <c>reference-data/tiny</c>.</summary>
    public static string TinyCheckpoint => Path.Combine(RepoRoot, "reference-data", "tiny");

    /// <summary>A reference dump of the tiny checkpoint made by the PyTorch reference, e.g. <c>TinyDump("audio-short")</c>.</summary>
    public static string TinyDump(string name) => Path.Combine(TinyCheckpoint, "dumps", name + ".safetensors");

    /// <summary><c>../shared</c> beside the checkout: real tokenizer/config files and real audio clips.</summary>
    public static string Shared => Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared"));

    /// <summary>A clip of <c>../shared/audio</c> (default: the real speech clip the tiny dumps were made from).</summary>
    public static string SharedAudio(string name = "real_speech.aiff") => Path.Combine(Shared, "audio", name);

    /// <summary>
    /// The backend new models run on in this notebook (<c>"cpu"</c> by default; <see cref="Backends.Names"/> lists the
    /// others, e.g. <c>"reference"</c>): setting it changes <see cref="Ops.Default"/>. A helper that takes a
    /// <c>backend</c> argument uses that one instead, so two backends can run side by side (<see cref="CompareBackends"/>).
    /// </summary>
    public static string Backend
    {
        get => Ops.Default.Name;
        set => Ops.Default = Backends.Get(value);
    }

    /// <summary>One line: engine version, backend, SIMD level, threads.</summary>
    public static string EngineInfo =>
        $"StepAudio2.Lab {Version(typeof(Tensor).Assembly)} loaded: {Ops.Backend.Describe()} (.NET {Environment.Version}; charts: Plotly.NET in its own load context, plotly.js inline)";

    /// <summary>The clip as read (all channels, own rate); shown as waveform + player.</summary>
    public static AudioClip ReadAudio(string path) => AudioFile.Read(path);

    /// <summary>Channel 0 at 16 kHz (what the model hears); shown as waveform + player.</summary>
    public static Waveform Audio16k(string path) => new(AudioInput.Load16k(path), LogMelFrontend16k, Path.GetFileName(path));

    /// <summary>The official 128-bin log-mel of a file (25 s chunks side by side); shown as a spectrogram.</summary>
    public static SpectrogramData Mel(string audioPath) => Mel(AudioInput.Load16k(audioPath));

    /// <summary>The official 128-bin log-mel of 16 kHz samples.</summary>
    public static SpectrogramData Mel(float[] wav16k) => SpectrogramData.FromChunks(AudioInput.Prepare([wav16k]).Mels);

    /// <summary>
    /// The audio path of a checkpoint on a clip, traced like <c>steplab trace --stage audio</c>: inputs (<c>input.wav</c>,
    /// <c>input.mel.N</c>, lengths), every encoder module with its attention scores (<c>encoder.blocks.N.attn.qk</c>) and the adaptor.
    /// </summary>
    public static Trace EncoderTrace(string checkpointDir, string audioPath, string? backend = null)
    {
        using var checkpoint = ShardedCheckpoint.Open(checkpointDir);
        var model = new StepAudio2Model(checkpoint, StepAudio2Config.Load(checkpointDir), backend is null ? Ops.Default : Backends.Get(backend));
        var prepared = AudioInput.Prepare([AudioInput.Load16k(audioPath)]);
        var trace = new Trace();
        foreach (var (name, tensor) in prepared.InputEntries()) trace.Record(name, tensor);
        model.EncodeAudio(prepared.Batch.Mels, prepared.MelLengths, trace);
        return trace;
    }

    /// <summary>Softmaxed attention of every encoder layer in <paramref name="trace"/> (batch item <paramref name="batchIndex"/>).</summary>
    public static AttentionLayers Attention(Trace trace, int zoomLayer = 0, int zoomHead = 0, int batchIndex = 0) =>
        new(trace.Order.Where(p => p.StartsWith("encoder.blocks.", StringComparison.Ordinal) && p.EndsWith(".attn.qk", StringComparison.Ordinal))
            .Select(p => AttentionMaps.FromScores(p, trace[p], batchIndex)).ToList(), zoomLayer, zoomHead);

    /// <summary>
    /// Compares a trace against a reference dump in the dump's execution order, under the default rules of
    /// <c>steplab compare</c> (port for float32, the documented mel/flow/HiFT floors of <see cref="ReferenceOverrides"/>).
    /// </summary>
    public static ParityResult Compare(Trace trace, string referenceDump, CompareOptions? options = null)
    {
        using var candidate = trace.ToTensorSource();
        return Compare(candidate, referenceDump, options);
    }

    /// <summary>
    /// The same stage on two backends in one process: the audio path (<see cref="EncoderTrace"/>) traced on
    /// <paramref name="backendA"/> and on <paramref name="backendB"/>, compared module by module (A as the candidate, B as
    /// the reference, B's execution order) under the default rules — where a backend's numerics depart, by how much.
    /// </summary>
    public static ParityResult CompareBackends(string checkpointDir, string audioPath, string backendA = "cpu", string backendB = "reference")
    {
        var a = EncoderTrace(checkpointDir, audioPath, backendA);
        var b = EncoderTrace(checkpointDir, audioPath, backendB);
        using var candidate = a.ToTensorSource();
        using var reference = b.ToTensorSource();
        var c = DumpComparer.Compare(candidate, reference, new CompareOptions { ExecutionOrder = b.Order.ToList() });
        var row = ParityView.RowToMap(c);
        return new ParityResult(c, row is null ? null : DiffMap.Of(row.Name, candidate.Get(row.Name), reference.Get(row.Name)));
    }

    /// <summary>Compares two dump files (safetensors/npz) in the reference's execution order.</summary>
    public static ParityResult Compare(string candidateDump, string referenceDump, CompareOptions? options = null)
    {
        using var candidate = TensorFiles.Open(candidateDump);
        return Compare(candidate, referenceDump, options);
    }

    private static ParityResult Compare(ITensorSource candidate, string referenceDump, CompareOptions? options)
    {
        using var reference = TensorFiles.Open(referenceDump);
        var o = (options ?? new CompareOptions()) with { ExecutionOrder = options?.ExecutionOrder ?? DumpFile.ExecutionOrder(reference) };
        var c = DumpComparer.Compare(candidate, reference, o);
        var row = ParityView.RowToMap(c);
        return new ParityResult(c, row is null ? null : DiffMap.Of(row.Name, candidate.Get(row.Name), reference.Get(row.Name)));
    }

    /// <summary>The view of any supported value as a displayable fragment (for several views in one cell: <c>display(Lab.Show(x))</c>).</summary>
    public static HtmlView Show(object value) => new(LabHtml.Body(value));

    /// <summary>A tensor's statistics and plot under a name of your choosing.</summary>
    public static HtmlView Show(string name, Tensor tensor) => new(LabHtml.TensorBody(name, tensor));

    /// <summary>A static PNG of a spectrogram (renders where scripts do not, e.g. on GitHub).</summary>
    public static HtmlView Png(SpectrogramData s) => new(SpectrogramView.Image(s));

    /// <summary>A static PNG heatmap (or line as one row) of a tensor.</summary>
    public static HtmlView Png(string name, Tensor t) => new(TensorPlotView.Image(TensorPlotData.Of(name, t)));

    /// <summary>Plotting helpers drawn by Plotly.NET (in its own load context), shown offline.</summary>
    public static class Plot
    {
        /// <summary>A tensor as a heatmap ([leading dims, last dim], mean-pooled to at most <paramref name="maxSide"/> per side) or a line when it has one row.</summary>
        public static Chart Heatmap(Tensor t, string name = "tensor", int maxSide = 128) => LabHtml.PlotTensor(TensorPlotData.Of(name, t, maxSide));

        /// <summary>A heatmap of row-major <paramref name="z"/> [rows, cols].</summary>
        public static Chart Heatmap(float[] z, int rows, int cols, string title = "", string xTitle = "", string yTitle = "", string colorscale = "Viridis",
            double[]? x = null, double[]? y = null) =>
            Chart.FromJson(ChartHost.Renderer.Heatmap(z, rows, cols, x, y, title, xTitle, yTitle, colorscale));

        /// <summary>One line over the index.</summary>
        public static Chart Line(double[] y, string title = "", string xTitle = "index", string yTitle = "value") =>
            Line(Enumerable.Range(0, y.Length).Select(i => (double)i).ToArray(), [y], ["y"], title, xTitle, yTitle);

        /// <summary>Several named lines over a shared x.</summary>
        public static Chart Line(double[] x, double[][] ys, string[] names, string title = "", string xTitle = "", string yTitle = "") =>
            Chart.FromJson(ChartHost.Renderer.Line(x, ys, names, title, xTitle, yTitle));
    }

    private const int LogMelFrontend16k = Audio.Mel.LogMelFrontend.SampleRate;

    private static string Version(Assembly a) =>
        a.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? a.GetName().Version?.ToString() ?? "?";

    private static string FindRepoRoot()
    {
        var starts = new List<string> { Directory.GetCurrentDirectory() };
        var here = Path.GetDirectoryName(typeof(Lab).Assembly.Location);
        if (!string.IsNullOrEmpty(here)) starts.Add(here);
        foreach (var start in starts)
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "reference-data", "tiny", "config.json"))) return dir.FullName;
        throw new DirectoryNotFoundException($"no StepAudio2.Lab checkout (reference-data/tiny/config.json) above {string.Join(" or ", starts)}; pass paths explicitly");
    }
}
