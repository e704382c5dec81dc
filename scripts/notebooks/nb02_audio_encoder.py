CELLS = [
("md", r"""
# 02 · The audio encoder and its attention maps

A Whisper-large-style encoder turns each chunk's `[128, L]` log-mel into `[T₃, D]` features at 25 frames per second
(spec §3):

| step | operation | shape (real model: D = 1280, 20 heads of 64, 32 blocks) |
|---|---|---|
| conv1 | Conv1d 128 → D, k 3, stride 1, pad 1, **exact (erf) GELU** | `[B, D, T]` |
| conv2 | Conv1d D → D, k 3, **stride 2**, pad 1, GELU | `[B, D, T₂]`, T₂ = ⌈T/2⌉ (50 fps) |
| + positional table | rows 0…T₂−1 of `encoder.positional_embedding` (learned, loaded, not sinusoids) | `[B, T₂, D]` |
| blocks ×32 | pre-LN attention (key **without bias**, q and k each scaled by 64^−¼, key padding mask) + pre-LN GELU MLP 4·D | `[B, T₂, D]` |
| avg_pooler | average pool k 2, stride 2 | `[B, D, T₃]`, T₃ = ⌊T₂/2⌋ (25 fps) |
| after_norm | LayerNorm, eps 1e−5 | `[B, T₃, D]` |

The tiny checkpoint has the same module tree and key names with D = 32, 2 heads and 2 blocks. Its weights are random:
the shapes, lengths and masks below are real, **the attention patterns are not** (see the note at the maps).
"""),
("md", r"""
## Parameters

The one cell to edit (`Lab.TinyCheckpoint` is `reference-data/tiny` of this checkout). For the real model set `checkpoint` to the published `Step-Audio-2-mini` folder (the encoder reads
the bf16 weights memory-mapped; 32 blocks on a 3 s clip take seconds to a minute on a CPU). `referenceDump` is compared
with our trace at the end; by default it is the bundled dump of this clip through the tiny checkpoint, and it is used only
when the checkpoint is the tiny one (make one for the real model with `reference-data/dump_official.py`).
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                      // or e.g. "/models/Step-Audio-2-mini"
var audioFile = Lab.SharedAudio("real_speech.aiff");
string referenceDump = null;                               // null: the bundled tiny dump, with the tiny checkpoint only
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;


bool isTiny = Path.GetFullPath(checkpoint).TrimEnd('/') == Path.GetFullPath(Lab.TinyCheckpoint).TrimEnd('/');
referenceDump ??= isTiny ? Lab.TinyDump("audio-short") : null;
var config = StepAudio2Config.Load(checkpoint);
var weights = ShardedCheckpoint.Open(checkpoint);   // bf16 stays bf16, memory-mapped
var model = new StepAudio2Model(weights, config);    // every key and shape asserted, none left over
var ac = config.Audio;
Console.WriteLine($"{(isTiny ? "tiny random" : "real")} checkpoint: D = {ac.NAudioState}, {ac.NAudioHead} heads of {ac.NAudioState / ac.NAudioHead}, {ac.NAudioLayer} blocks, positional table {ac.NAudioCtx} rows");
"""),
("md", r"""
## Run the encoder with a trace

The trace keeps activations by their official module path, as PyTorch forward hooks would name them. Only what this
notebook draws is kept (the stem, each block's output and its pre-softmax scores `encoder.blocks.N.attn.qk`, pooling and
the final norm), which keeps the real model's 32 blocks at a few MB per block.
"""),
("code", r"""
var wav = AudioInput.Load16k(audioFile);
var prepared = AudioInput.Prepare([wav]);
var trace = new Trace(["encoder", "encoder.conv1", "encoder.conv2", "encoder.blocks.?", "encoder.blocks.??",
                       "encoder.blocks.*.attn.qk", "encoder.avg_pooler", "encoder.after_norm"]);
var sw = System.Diagnostics.Stopwatch.StartNew();
var (encoded, encLengths) = model.Encoder.Forward(prepared.Batch.Mels, prepared.MelLengths, trace);
Console.WriteLine($"mel batch {prepared.Batch.Mels} (lengths L − 2 = {string.Join(", ", prepared.MelLengths)}) → encoder output {encoded}, valid frames {string.Join(", ", encLengths)}; {sw.ElapsedMilliseconds} ms");
display(trace);
"""),
("md", r"""
## The convolutional stem

conv2 has stride 2, so its output frame j is centred on mel frame 2j; the positional table is added after it. For the
default clip T = 309 mel frames give T₂ = ⌈309/2⌉ = 155 frames and, after the pool, T₃ = 77. The check below recomputes
these lengths from the formulas of spec §3.2 and §3.6 and compares them with the traced shapes.
"""),
("code", r"""
int T = prepared.Batch.Mels.Shape[2], T2 = (T - 1) / 2 + 1, T3 = T2 / 2;
var stemRows = new[]
{
    new { path = "encoder.conv1", traced = trace["encoder.conv1"].ToString(), expected = $"[1, {ac.NAudioState}, {T}]" },
    new { path = "encoder.conv2", traced = trace["encoder.conv2"].ToString(), expected = $"[1, {ac.NAudioState}, {T2}]" },
    new { path = "encoder.blocks.0", traced = trace["encoder.blocks.0"].ToString(), expected = $"[1, {T2}, {ac.NAudioState}]" },
    new { path = "encoder.avg_pooler", traced = trace["encoder.avg_pooler"].ToString(), expected = $"[1, {ac.NAudioState}, {T3}]" },
    new { path = "encoder", traced = trace["encoder"].ToString(), expected = $"[1, {T3}, {ac.NAudioState}]" },
};
display(Lab.Table(["path", "traced", "expected (spec §3.2, §3.6)"], stemRows.Select(r => new object[] { r.path, r.traced, r.expected })));
if (trace["encoder.conv2"].Shape[2] != T2 || trace["encoder"].Shape[1] != T3) throw new Exception("stem lengths differ from spec §3.2/§3.6");
if (encLengths[0] != AudioEncoder.OutputLength(prepared.MelLengths[0])) throw new Exception("encoder length bookkeeping differs");
Console.WriteLine($"T = {T} → T₂ = {T2} → T₃ = {T3}; valid: len = {prepared.MelLengths[0]} → ⌊(len + 1)/2⌋/2 = {encLengths[0]} ✓");
display(Lab.Figure(TensorPlotView.Figure("encoder.conv2 (batch 0)", trace["encoder.conv2"].Select(0, 0), "conv2", maxSide: 256, xTitle: "frame (50 fps)", yTitle: "channel")));
"""),
("md", r"""
## The padding mask

The mask is built over the *padded* mel length T, subsampled from (T + 1) mod 2 with step 2, and masks **keys only**
(−1e10 added to their scores; padded query rows are still computed). For the default clip T = 309 is odd, so the valid
flags are read at even mel frames 0, 2, …, 308 against len = 307: the last conv2 frame is masked, 154 of 155 keys are
valid. A port that masks by T₂ − 1 instead, or by ⌈len/2⌉ without the parity rule, is off by one here exactly when T_pad
changes parity (e.g. when a short chunk is batched with a 25 s one).
"""),
("code", r"""
var bias = AudioEncoder.PaddingMaskBias(prepared.MelLengths, T).ToFloatArray();
int validKeys = bias.Count(b => b == 0f);
Console.WriteLine($"T = {T} ({(T % 2 == 1 ? "odd: even" : "even: odd")} mel frames sampled), len = {prepared.MelLengths[0]}: {validKeys} of {T2} keys valid, {T2 - validKeys} masked");
"""),
("md", r"""
## Attention maps

`encoder.blocks.N.attn.qk` holds the pre-softmax scores `[B, heads, T₂, T₂]` including the −1e10 mask bias. The view
softmaxes each query row in float32 (as the model does) over the valid keys and drops padded keys and query rows, so
every row of a map sums to 1. Rows are query frames (top to bottom), columns key frames; one frame is 20 ms.

In the **real** model, look for: sharp diagonal heads in early blocks (each frame attends to its neighbours), broad
heads that average over the whole utterance, vertical stripes (every frame attending to a few keys, often silence or
onsets), and block structure following words. In the **tiny random checkpoint** these maps show none of that: with
random weights the scores are noise, so the rows are nearly uniform (entropy close to 1, below), and the vertical stripes
you see are keys whose random vectors happen to be long: the same stripe in every row, not a learned pattern. What *is*
checkable there: the size (valid frames), the masked keys being absent, and every row summing to 1.
"""),
("code", r"""
var layers = trace.Order.Where(p => p.EndsWith(".attn.qk")).Select(p => AttentionMaps.FromScores(p, trace[p])).ToList();
double worstRowSum = 0;
foreach (var m in layers)
    for (int h = 0; h < m.Heads; h++)
        for (int q = 0; q < m.Frames; q++)
        {
            double s = 0;
            foreach (var p in m.Head(h).Slice(q * m.Frames, m.Frames)) s += p;
            worstRowSum = Math.Max(worstRowSum, Math.Abs(s - 1));
        }
Console.WriteLine($"{layers.Count} layers × {layers[0].Heads} heads, {layers[0].Frames} valid frames each; max |row sum − 1| = {worstRowSum:G3}");
if (layers[0].Frames != validKeys || worstRowSum > 1e-4) throw new Exception("attention maps do not match the mask");
"""),
("md", r"""
### Head grids

One figure per block, one map per head (average-pooled to at most 48 × 48 frames). For the real model's 32 blocks the
grid shows the first, middle and last block; change `gridLayers` to see others.
"""),
("code", r"""
var gridLayers = new[] { 0, layers.Count / 2, layers.Count - 1 }.Distinct().ToList();
display(Lab.Figures(260, gridLayers.Select(l => AttentionView.LayerGrid(layers[l], $"attention-grid-{l}", gridSize: 48)).ToArray()));
"""),
("md", r"""
### One head, zoomed

Full resolution (up to 256 frames) with a colour bar; hover shows query, key and probability.
"""),
("code", r"""
int zoomLayer = layers.Count - 1, zoomHead = 0;
display(Lab.Figure(AttentionView.Zoom(layers[zoomLayer], zoomHead, "attention-zoom")));
"""),
("md", r"""
### Every head at a glance

Two numbers per head summarise a map: the **mean attention distance** (Σ p·|query − key| in frames; small for local
heads) and the **normalised entropy** of its rows (1 = uniform over all valid keys, 0 = one key). For the tiny random
checkpoint expect distances near T/3 (what a uniform row gives) and entropies near 1; the real model spreads out.
"""),
("code", r"""
int H = layers[0].Heads, F = layers[0].Frames;
var distance = new float[layers.Count * H];
var entropy = new float[layers.Count * H];
for (int l = 0; l < layers.Count; l++)
    for (int h = 0; h < H; h++)
    {
        var p = layers[l].Head(h);
        double d = 0, e = 0;
        for (int q = 0; q < F; q++)
            for (int k = 0; k < F; k++)
            {
                double v = p[q * F + k];
                d += v * Math.Abs(q - k);
                if (v > 0) e -= v * Math.Log(v);
            }
        distance[l * H + h] = (float)(d / F);
        entropy[l * H + h] = (float)(e / F / Math.Log(F));
    }
display(Lab.Figures(300,
    TensorPlotView.Figure("mean attention distance (frames)", Tensor.FromArray(distance, layers.Count, H), "attn-distance", xTitle: "head", yTitle: "block"),
    TensorPlotView.Figure("normalised attention entropy", Tensor.FromArray(entropy, layers.Count, H), "attn-entropy", xTitle: "head", yTitle: "block")));
Console.WriteLine($"uniform rows would give distance {(F * F - 1) / (3.0 * F):F1} frames and entropy 1.000; measured: distance {distance.Average():F1}, entropy {entropy.Average():F3} (mean over heads)");
"""),
("md", r"""
## The encoder output against the reference

When a reference dump of this clip through this checkpoint is at hand, every traced tensor is compared with it in
execution order (f32 tier). Notebook 05 does this for the whole model and shows what a failure looks like.
"""),
("code", r"""
if (referenceDump is null) Console.WriteLine("no reference dump for this checkpoint: skipped (see notebook 05)");
else
{
    var reference = TensorFiles.Open(referenceDump);
    // only what this notebook traced (the dump holds every module of the audio path)
    var c = DumpComparer.Compare(trace.ToTensorSource(), reference, new CompareOptions { Include = trace.Order.ToList(), ExecutionOrder = DumpFile.ExecutionOrder(reference) });
    display(c);
}
"""),
("md", r"""
## What a port typically gets wrong here

* **A bias on the key projection.** Whisper's `key` Linear has none; loading one fails loudly here (no such key), but a
  port that adds a zero bias silently is fine while one that reuses the query bias is not.
* **Scaling.** q and k are each multiplied by 64^−¼ (= 1/8 on the logits overall); scaling only q by 1/8 is the same in
  exact arithmetic but rounds differently in bf16.
* **The mask** over keys only, with the T-parity rule above; masking query rows too changes nothing visible for one
  chunk but breaks batched chunks.
* **GELU**: the stem and MLP use the exact erf form; the tanh approximation differs by up to ~1e−3.
* **bf16**: the real model runs the encoder in bf16 with the softmax in float32; compare against a float32 reference with
  the bf16 tier, or against a bf16 reference.

Next: **03-adaptor** takes `[T₃, D]` to the LLM's width at 12.5 frames per second.
"""),
]
