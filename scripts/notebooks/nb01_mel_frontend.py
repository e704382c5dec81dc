CELLS = [
("md", r"""
# 01 · The log-mel frontend

The LLM hears audio through a 128-bin log-mel spectrogram at 100 frames per second (spec §2). This notebook takes one
clip through every step and checks the result against the Python reference:

1. decode, keep **channel 0**, resample to 16 kHz with torchaudio's windowed-sinc resampler (§2.1);
2. cut into **25 s chunks** (400 000 samples), each with its own mel and its own normalisation (§2.2);
3. append **479 zeros**, centred STFT: **periodic** Hann of 400, hop 160, reflect padding of 200, power spectrum, and
   **drop the last frame** (§2.3), so a chunk of N samples gives **L = ⌊(N + 479)/160⌋** frames;
4. **Slaney** mel filter bank, 128 bands over 0–8 kHz, Slaney area normalisation (§2.4);
5. log10(max(S, 1e−10)), floor at max(S) − 8 **per chunk**, then (S + 4)/4 (§2.5).

Output: float32 `[128, L]` per chunk. Nothing here depends on the model weights, so the same cells serve the tiny
checkpoint and the real one.
"""),
("md", r"""
## Parameters

The one cell to edit. `Lab.SharedAudio(name)` is a clip of `../shared/audio` beside the checkout (where CI places it) and
`Lab.TinyDump(name)` a dump of `reference-data/tiny/dumps`, found wherever the kernel starts; any other path may be
absolute or relative to `notebooks/`. The default clip is 3.06 s of English speech (AIFF-C, 22 050 Hz). The reference dump holds what the
Python reference computed for that clip (`input.wav`, `input.mel.0`, …; made by `reference-data/make_tiny.py`). Any dump of
the same clip serves, including one of the real model made with `reference-data/dump_official.py`: the mel inputs do not
depend on the weights.
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var audioFile = Lab.SharedAudio("real_speech.aiff");    // any WAV / AIFF / AIFF-C file
string referenceDump = Lab.TinyDump("audio-short");       // null: no parity check
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;


var clip = AudioFile.Read(audioFile);
var wav = AudioInput.To16k(clip);   // channel 0, resampled to 16 kHz when needed
Console.WriteLine($"{Path.GetFileName(audioFile)}: {clip.Format.Description}, {clip.ChannelCount} channel(s), {clip.SampleRate} Hz, {clip.Frames} frames ({clip.Duration.TotalSeconds:F2} s)");
Console.WriteLine($"16 kHz waveform: {wav.Length} samples ({wav.Length / 16000.0:F3} s)");
"""),
("md", r"""
## The waveform

What the frontend actually sees: channel 0 at 16 kHz. For a 22 050 Hz file the resampler (g = gcd = 50, a = 441, b = 320)
makes ⌈320·N/441⌉ samples. The player embeds the 16 kHz samples in the page, so it plays offline.
"""),
("code", r"""
display(new HtmlView(WaveformView.AudioPlayer(wav, LogMelFrontend.SampleRate)));
display(Lab.Figure(WaveformView.Figure(wav, LogMelFrontend.SampleRate)));
display(new HtmlView(TensorSummaryView.Render("input.wav", TensorStats.Of(Tensor.FromArray(wav, wav.Length)))));
"""),
("md", r"""
## Chunks, frame count and the 479-sample pad

Each 25 s chunk is padded with 479 zeros before the STFT. With `center=True` the STFT makes 1 + ⌊(N + 479)/160⌋ frames
and the last one is dropped, so **L = ⌊(N + 479)/160⌋**; for N a multiple of 160 that is N/160 + 2. The two extra frames
are why the encoder is told a length of **L − 2**. The S3 speech tokenizer uses the same recipe *without* the pad
(⌊N/160⌋ frames): a port that forgets the pad on the LLM path is two or three frames short, and the number of
`<audio_patch>` tokens (§2.6) can change with it.
"""),
("code", r"""
var prepared = AudioInput.Prepare([wav]);
display(Lab.Table(["chunk", "samples N", "seconds", "L = ⌊(N + 479)/160⌋", "L without the pad", "mel", "encoder length L − 2", "audio tokens"],
    prepared.Chunks.Select((c, i) => new object[] { i, c.Length, c.Length / 16000.0, LogMelFrontend.FrameCount(c.Length),
        LogMelFrontend.FrameCount(c.Length, pad479: false), prepared.Mels[i].ToString(), prepared.MelLengths[i], prepared.TokenCounts[i] })));
for (int i = 0; i < prepared.Mels.Count; i++)
    if (prepared.Mels[i].Shape[1] != (prepared.Chunks[i].Length + 479) / 160) throw new Exception($"chunk {i}: L does not follow ⌊(N + 479)/160⌋");
Console.WriteLine("every chunk: L = ⌊(N + 479)/160⌋ ✓");
"""),
("md", r"""
## The spectrogram

Seconds on x (10 ms per frame), mel band on y (band 0 ≈ 0–23 Hz at the bottom, band 127 near 8 kHz at the top). Dashed
white lines mark where a new 25 s chunk starts (none for a short clip).

What to look for:
* **harmonics** of voiced speech as stacked bright ridges in the low bands, fricatives as energy high up;
* the **floor**: values never go below max − 2 (the max − 8 floor in log10 units, divided by 4), so silence is a flat
  dark plateau, not −∞; the colour range spans at most 2.0;
* the **last three frames** come from the 479 zeros and the reflect padding: a darker strip at the right edge.

A port that normalises over the whole clip instead of per chunk, uses ln instead of log10, or forgets the (S + 4)/4
scaling shows a different range here before any comparison is made.
"""),
("code", r"""
var spec = SpectrogramData.FromChunks(prepared.Mels);
display(Lab.Figure(SpectrogramView.Figure(spec)));
float melMin = spec.Values.Min(), melMax = spec.Values.Max();
Console.WriteLine($"log-mel range: min {melMin:F4}, max {melMax:F4}, max − min = {melMax - melMin:F4} (≤ 2 by construction)");
if (melMax - melMin > 2.0001f) throw new Exception("the max − 8 floor is not applied");
"""),
("md", r"""
The same picture as a static PNG (one pixel per frame and band, chunk starts in red), for places that render no script,
such as GitHub's notebook preview:
"""),
("code", r"""
display(Lab.Png(spec));
"""),
("md", r"""
## The filter bank: Slaney, not HTK

librosa's defaults (what Whisper and Step-Audio 2 use) are the **Slaney** mel scale, linear below 1 kHz and logarithmic
above, with **area normalisation** (each triangle scaled by 2/(F_{i+2} − F_i)). torchaudio's `MelScale` defaults to
**HTK** and no normalisation: a port that takes those defaults gets bands that are too wide at the bottom and weights
that are orders of magnitude off. The spec's self-check values (§2.4): band 0 has one non-zero weight, at FFT bin 1,
0.01237399; band 64 has bins 42 and 43 = 0.00674968, 0.01809152.
"""),
("code", r"""
var bank = SlaneyMelFilterBank.Llm128;
display(Lab.Figure(TensorPlotView.Figure("Slaney mel filter bank [band, FFT bin]", bank.ToTensor(), "filterbank", maxSide: 256, xTitle: "FFT bin (40 Hz each)", yTitle: "mel band")));
var checks = new[]
{
    new { weight = "band 0, bin 1", ours = bank.Band(0)[1], spec = 0.01237399f },
    new { weight = "band 64, bin 42", ours = bank.Band(64)[42], spec = 0.00674968f },
    new { weight = "band 64, bin 43", ours = bank.Band(64)[43], spec = 0.01809152f },
};
display(Lab.Table(["weight", "ours", "spec §2.4"], checks.Select(c => new object[] { c.weight, c.ours.ToString("G8"), c.spec.ToString("G8") })));
if (checks.Any(c => Math.Abs(c.ours - c.spec) > 1e-7f) || bank.NonZeroBins(0).Count != 1) throw new Exception("filter bank differs from the spec's self-check values");
Console.WriteLine($"band 0 non-zero bins: {bank.NonZeroBins(0)}; band 127: {bank.NonZeroBins(127)}");
"""),
("md", r"""
## Parity with the reference dump

Our inputs as a small dump (`input.wav`, `input.mel.N`, `input.wav_lens`, named as the reference dumper names them),
compared tensor by tensor against the reference. Tolerance: the f32 tier, except `input.mel.*` at an absolute 1e−4:
two float32 FFT implementations differ by about 2e−5 near the 1e−10 clamp, which log10 magnifies. The comparison only
makes sense for the clip the dump was made from, so it is skipped when `input.wav` has another length.
"""),
("code", r"""
var ours = new Trace();
foreach (var (name, value) in prepared.InputEntries()) ours.Record(name, value);
var melTolerance = Lab.MelOverride;
DumpComparison melParity = null;
var reference = referenceDump is null ? null : TensorFiles.Open(referenceDump);
if (reference is null) Console.WriteLine("no reference dump given: parity skipped");
else if (!reference.Contains("input.wav") || reference.Get("input.wav").Shape[0] != wav.Length)
    Console.WriteLine($"{referenceDump} was made from another clip: parity skipped");
else
{
    melParity = DumpComparer.Compare(ours.ToTensorSource(), reference, new CompareOptions
    {
        Include = ["input.*"], Overrides = [melTolerance], ExecutionOrder = DumpFile.ExecutionOrder(reference),
    });
    display(melParity);
}
"""),
("md", r"""
Where the mel differs, and by how much: |ours − reference| of chunk 0 (rows are mel bands, columns frames). A healthy
port shows a faint speckle of float32 rounding, largest in the quiet regions near the floor. A symmetric Hann window
instead of the periodic one (numpy's `hanning`, `scipy.signal.windows.hann(sym=True)`) shows up as a broad error
everywhere; an HTK filter bank as whole bands off; a missing reflect pad as the first and last columns.
"""),
("code", r"""
if (melParity is not null)
{
    display(Lab.Figure(ParityView.DiffFigure(DiffMap.Of("input.mel.0", prepared.Mels[0], reference!.Get("input.mel.0")), "mel-diff")));
    var row = melParity.Rows.First(r => r.Name == "input.mel.0").Comparison!;
    Console.WriteLine($"input.mel.0: max |Δ| {row.MaxAbsDiff:G3} at {TensorComparer.IndexString(row.MaxAbsIndex)}, mean |Δ| {row.MeanAbsDiff:G3}, cosine {row.Cosine:F9}");
}
"""),
("md", r"""
## A porting bug, caught

The commonest frontend bug is the pad: the S3 tokenizer's mel (§7.3.1) is the same recipe without the 479 zeros. Here
is what the comparer says about a mel computed that way. The shapes already disagree, so no value is compared and the
hint names the shape mismatch.
"""),
("code", r"""
if (melParity is not null)
{
    var noPad = new Trace();
    noPad.Record("input.mel.0", LogMelFrontend.Compute(prepared.Chunks[0], pad479: false));
    var bug = DumpComparer.Compare(noPad.ToTensorSource(), reference!, new CompareOptions { Include = ["input.mel.0"], Overrides = [melTolerance] });
    display(bug);
}
"""),
("md", r"""
## What to take away

* L = ⌊(N + 479)/160⌋ per chunk; the encoder gets L − 2; the number of audio tokens follows from L alone (notebook 03).
* The floor is per chunk: two chunks of one request are normalised separately.
* Next: **02-audio-encoder** turns `[128, L]` into `[T₃, D]` at 25 frames per second.
"""),
]
