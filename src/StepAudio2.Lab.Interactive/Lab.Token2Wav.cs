using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Torch;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

namespace StepAudio2.Lab.Interactive;

/// <summary>The speech-out half in notebooks 06–08: the tiny token2wav folder, flow/vocoder pictures and their tolerances.</summary>
public static partial class Lab
{
    /// <summary>The bundled tiny token2wav folder (flow.pt, flow.yaml, hift.pt and the two tiny ONNX prompt models).</summary>
    public static string TinyToken2Wav => Path.Combine(TinyCheckpoint, "token2wav");

    /// <summary>A mel of the flow as a heatmap; <paramref name="framesFirst"/> for [1, T, 80] (the voice prompt's layout).</summary>
    public static Chart MelChart(Tensor mel, string title = "mel", int promptFrames = 0, bool framesFirst = false, int heightPx = 300) =>
        new(MelView.Figure(framesFirst ? MelData.FramesFirst(mel, title, promptFrames) : MelData.ChannelsFirst(mel, title, promptFrames), LabHtml.NewId()), heightPx);

    /// <summary>The CFM trajectory rebuilt from a trace (or dump) with <c>input.noise</c> and <c>flow.decoder.estimator.step.K</c>.</summary>
    public static CfmSteps CfmSteps(Trace trace, double cfgRate = 0.7)
    {
        using var source = trace.ToTensorSource();
        return Views.CfmSteps.FromSource(source, cfgRate);
    }

    /// <summary>The states x₁ … x_n of the CFM as a strip of mels on one colour scale (prompt frames marked).</summary>
    public static Chart CfmStrip(CfmSteps steps, int promptFrames = 0, int columns = 5) =>
        new(MelView.Strip(steps.StateMels(promptFrames), $"CFM states after each of the {steps.Steps} Euler steps (CFG rate {steps.CfgRate:0.###})",
            LabHtml.NewId(), columns), 170 * ((steps.Steps + columns - 1) / columns) + 70);

    /// <summary>Several mels side by side on one colour scale.</summary>
    public static Chart MelStrip(string title, params MelData[] mels) =>
        new(MelView.Strip(mels, title, LabHtml.NewId(), mels.Length), 260);

    /// <summary>A curve over mel frames (e.g. <c>hift.f0_predictor</c> [1, T] in Hz), x in seconds (50 frames per second).</summary>
    public static Chart FrameLine(Tensor values, string title, string yTitle, double secondsPerFrame = MelData.FlowSecondsPerFrame) =>
        new(MelView.Line(values.ToFloatArray(), secondsPerFrame, title, yTitle, LabHtml.NewId()), 280);

    /// <summary>Samples <paramref name="start"/> … <paramref name="start"/>+<paramref name="count"/> of a signal as a line, x in seconds.</summary>
    public static Chart SampleLine(Tensor signal, int sampleRate, int start, int count, string title, string yTitle = "amplitude")
    {
        var v = signal.ToFloatArray();
        start = Math.Clamp(start, 0, v.Length);
        count = Math.Clamp(count, 0, v.Length - start);
        var fig = MelView.Line(v.AsSpan(start, count).ToArray(), 1.0 / sampleRate, title, yTitle, LabHtml.NewId());
        // x from the excerpt's own start, not from zero
        fig.Data[0]!["x"] = Html.Array(Enumerable.Range(start, count).Select(i => (double)i / sampleRate), 7);
        return new Chart(fig, 260);
    }

    /// <summary>Samples at a rate as a waveform with an offline <c>&lt;audio&gt;</c> player.</summary>
    public static Waveform Listen(float[] samples, int sampleRate, string title) => new(samples, sampleRate, title);

    /// <summary>Several views in one output; a <c>(string name, Tensor t)</c> tuple shows a named tensor.</summary>
    public static HtmlView Stack(params object[] values) =>
        new(string.Concat(values.Select(v => v is ValueTuple<string, Tensor> named ? LabHtml.TensorBody(named.Item1, named.Item2) : LabHtml.Body(v))));

    /// <summary>
    /// The flow's mel for a dump's (or voice prompt's) inputs with the CFG rate set to <paramref name="cfgRate"/> instead of
    /// flow.yaml's (0 = no guidance: the conditioned row alone); same noise, so the difference is guidance alone.
    /// </summary>
    public static Tensor FlowMel(string token2wavDir, Token2WavInputs inputs, double cfgRate, Trace? trace = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var config = FlowConfig.Load(Path.Combine(token2wavDir, FlowConfig.FileName));
        config = config with { Decoder = config.Decoder with { InferenceCfgRate = cfgRate } };
        using var checkpoint = TorchCheckpoint.Open(Path.Combine(token2wavDir, Flow.CheckpointFileName));
        var flow = Flow.Load(checkpoint, config);
        var mel = flow.Generate(SpeechCodes.Filter(inputs.Codes ?? throw new ArgumentException("no codes in the inputs")),
            inputs.PromptTokens ?? throw new ArgumentException("no prompt tokens in the inputs"),
            inputs.PromptMel ?? throw new ArgumentException("no prompt mel in the inputs"),
            inputs.Xvector ?? throw new ArgumentException("no x-vector in the inputs"), inputs.Noise, trace: trace);
        return Tensor.FromArray(mel.ToFloatArray(), mel.Shape.ToArray()); // detached from the checkpoint's mapping
    }

    /// <summary>The <c>input.*</c> of a token2wav dump (codes, prompt tokens, x-vector, prompt mel, both noises).</summary>
    public static Token2WavInputs DumpInputs(string dumpPath)
    {
        using var dump = TensorFiles.Open(dumpPath);
        return Token2WavInputs.Read(dump);
    }
}
