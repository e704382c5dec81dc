CELLS = [
("md", r"""
# 07 · Vocoder: mel → 24 kHz waveform (HiFT with a neural source filter)

The second half of token2wav (spec §7.10): `HiFTGenerator`, CosyVoice 2's vocoder, turns the flow's 80-bin mel (50 frames
per second) into audio at 24 kHz — **480 samples per frame** = 8 · 5 · 3 (three transposed-conv upsample stages) · 4 (the
hop of a 16-point inverse STFT). Stage by stage:

1. **F0 predictor** (`hift.f0_predictor`): 5 convs + ELU, a linear layer and |·| → one pitch value in Hz per mel frame.
2. **NSF source** (`hift.m_source`): F0 upsampled ×480, 9 sine harmonics with their phase integrated over time, plus
   noise (0.003 where voiced, 0.033 where F0 ≤ 10 Hz), mixed by one linear layer and tanh → an excitation signal at 24 kHz.
3. **Source STFT**: 16-point STFT of the source, hop 4 → 18 channels (9 real + 9 imaginary bins), injected at each stage.
4. **Decoder**: `conv_pre` (80 → 512), then per stage i: LeakyReLU(0.1), `ups.i` (×8, ×5, ×3; 256 → 128 → 64 channels),
   plus `source_resblocks.i(source_downs.i(source STFT))`, then the mean of three Snake ResBlocks (`resblocks.3i+j`).
5. `conv_post` → 9 log-magnitudes + 9 phases per frame → inverse STFT (n_fft 16, hop 4) → clamp ±0.99 = `hift`.

**Honest label.** The bundled `reference-data/tiny/token2wav/hift.pt` keeps the official structure (strides, kernels,
harmonics, weight-norm keys) with narrow channels (32 → 16, 8, 4) and **random weights**, and its input mel comes from
the random tiny flow: the audio below is noise-like, not speech. Point `token2wavDir` at a real folder to hear speech.
"""),
("md", r"""
## Parameters

`referenceDump` provides the input mel (the PyTorch reference flow's output `flow`), the NSF noise (`input.hift_noise`:
the source's N(0,1) draws, injected so the run is comparable) and the reference's `hift.*`. With `null`, the mel is made by
the flow from `voicePrompt` and fixed codes (as in notebook 06) and the noise is drawn from a seed.
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Interactive;

var token2wavDir = Lab.TinyToken2Wav;                     // or e.g. "/models/Step-Audio-2-mini/token2wav"
string referenceDump = Lab.TinyDump("token2wav-short");   // null: make a mel from the voice prompt + fixed codes
var voicePrompt = Lab.SharedAudio("default_female.wav");
"""),
("code", r"""
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;

var hift = Hift.Load(Path.Combine(token2wavDir, Token2Wav.HiftFileName));
Tensor mel, hiftNoise = null;
if (referenceDump is not null)
{
    using var dump = TensorFiles.Open(referenceDump);
    mel = Tensor.FromArray(dump.Get("flow").ToFloatArray(), dump.Get("flow").Shape.ToArray());
    hiftNoise = Lab.DumpInputs(referenceDump).HiftNoise;
}
else
{
    using var t2w = Token2Wav.Load(token2wavDir);
    var codes = Enumerable.Range(0, 50).Select(i => (i * 131 + 7) % 6561).ToArray();
    mel = t2w.TokensToWav(codes, t2w.PreparePrompt(voicePrompt)).Mel;
}
int frames = mel.Shape[2];
Console.WriteLine($"HiFT: {hift.MelChannels} mel bins, base {hift.BaseChannels} channels, stages {string.Join(" → ", hift.StageChannels)}, " +
    $"upsample {string.Join("·", hift.Config.UpsampleRates)}·{hift.Config.Hop} = {hift.Config.SamplesPerFrame} samples per frame, {hift.Config.Harmonics} harmonics");
Console.WriteLine($"input mel {Tensor.ShapeString(mel.Shape)}: {frames} frames → {frames * hift.Config.SamplesPerFrame} samples ({frames * hift.Config.SamplesPerFrame / 24000.0:F2} s)");
Lab.MelChart(mel, "input mel (the flow's output)")
"""),
("code", r"""
var trace = new Trace();
var clock = System.Diagnostics.Stopwatch.StartNew();
var wav = hift.Forward(mel, hiftNoise, trace: trace);
Console.WriteLine($"waveform {Tensor.ShapeString(wav.Shape)} in {clock.ElapsedMilliseconds} ms; traced: {string.Join(", ", trace.Order.Where(p => !p.Contains(".resblocks.") && !p.Contains("source_")))}");
"""),
("md", r"""
## F0 and the source

The F0 predictor gives one pitch per mel frame; the NSF treats frames at or below 10 Hz as unvoiced (noise only). On a
trained model the curve follows the speaker's intonation (~100–250 Hz) and drops to ~0 in pauses; random weights give an
arbitrary curve. The source excerpt below (20 ms from the middle of the clip, 480 samples) is the excitation the decoder
is steered by: sines at F0 and its harmonics where voiced, noise where not.
"""),
("code", r"""
var f0 = trace["hift.f0_predictor"];
var f0v = f0.ToFloatArray();
Console.WriteLine($"F0: min {f0v.Min():F1} Hz, mean {f0v.Average():F1} Hz, max {f0v.Max():F1} Hz; voiced (> 10 Hz) in {f0v.Count(v => v > 10)} of {f0v.Length} frames");
int mid = trace["hift.m_source"].Shape[1] / 2;
Lab.Stack(Lab.FrameLine(f0, "hift.f0_predictor: F0 per mel frame", "Hz"),
          Lab.SampleLine(trace["hift.m_source"], 24000, mid, 480, "hift.m_source: the NSF excitation, 20 ms from the middle"))
"""),
("md", r"""
## The upsample stages

Each transposed convolution multiplies the time resolution (×8, ×5, ×3) and halves the channels; the last stage is
reflection-padded by one sample so that it lines up with the 120T+1 frames of the source STFT. Rows are channels, columns
time (mean-pooled to at most 128 per side). On a trained model the later stages show increasingly fine periodic structure.
"""),
("code", r"""
Lab.Stack(trace.Order.Where(p => p.StartsWith("hift.ups.")).Select(p => (object)Lab.Plot.Heatmap(trace[p], p)).Append(Lab.Plot.Heatmap(trace["hift.conv_post"], "hift.conv_post (9 log-magnitudes + 9 phases)")).ToArray())
"""),
("md", r"""
## The waveform

`hift`: 480 samples per mel frame at 24 kHz, clamped to ±0.99. The player holds the clip itself (a WAV data URI) and plays
offline. With the tiny random vocoder expect a buzz or hiss, not words.
"""),
("code", r"""
Lab.Listen(wav.ToFloatArray(), 24000, "hift: the vocoder's output (tiny random weights: noise-like)")
"""),
("md", r"""
## Parity: per module and as a chain

Spec §9 measures a float32 floor for HiFT: every module matches to ~1e-6 when fed the reference's own inputs, but the NSF
integrates its phase Φ in float32 over every sample (thousands of radians by the end of a clip), so one ulp of F0 moves
the sines and **the whole chain only reaches ~1e-4 rel-L2** — float64 does not help, it is the reference that rounds.
So two tables: the chain as run above at the documented chain bound (rel-L2 and elementwise 1e-3, `ReferenceOverrides.Hift`), and the
decoder fed the reference's own `hift.m_source` at the strict float32 tier.
"""),
("code", r"""
ParityResult chain = null, decoder = null;
if (referenceDump is not null)
{
    chain = Lab.Compare(trace, referenceDump, new CompareOptions { Include = ["hift*"], Overrides = [ReferenceOverrides.Hift] });
    using var dump = TensorFiles.Open(referenceDump);
    var fed = new Trace();
    hift.Decode(mel, Tensor.FromArray(dump.Get("hift.m_source").ToFloatArray(), dump.Get("hift.m_source").Shape.ToArray()), fed);
    decoder = Lab.Compare(fed, referenceDump, new CompareOptions { Include = ["hift*"], Exclude = ["hift.f0_predictor", "hift.m_source"] });
    foreach (var (name, p) in new[] { ("chain (≤ 1e-3 rel-L2)", chain), ("decoder fed the reference source (f32 tier)", decoder) })
    {
        var worst = p.Comparison.Rows.Where(r => r.Comparison is { ElementCount: > 0 }).MaxBy(r => r.Comparison.RelL2);
        Console.WriteLine($"{name}: {(p.AllPassed ? "PASS" : "FAIL")}, {p.Comparison.Compared} tensors, largest rel-L2 {worst.Comparison.RelL2:G3} at {worst.Name}");
    }
}
else Console.WriteLine("no reference dump: nothing to compare");
chain is null ? null : Lab.Stack(chain, decoder)
"""),
]
