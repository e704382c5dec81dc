CELLS = [
("md", r"""
# 03 · The adaptor: from encoder frames to LLM embeddings

The adaptor halves the frame rate once more and lifts the encoder width to the LLM's (spec §4):

| module | operation | shape (real model) |
|---|---|---|
| `adapter.conv` | Conv1d D → D, **k 3, stride 2, pad 1**, then exact GELU | `[B, 1280, T₄]`, T₄ = ⌊(T₃ − 1)/2⌋ + 1 |
| `adapter.linear1` | Linear D → 2048, then **ReLU** (not GELU) | `[B, T₄, 2048]` |
| `adapter.linear2` | Linear 2048 → llm_dim | `[B, T₄, 3584]` |

Each output row is one `<audio_patch>` slot of the prompt, 80 ms of audio (12.5 per second). Only the first
**feat_len = ⌊(enc_len − 1)/2⌋ + 1** rows of a chunk are used; the rest are padding of the batch. In the tiny checkpoint
D = 32, linear1 has 128 outputs and llm_dim = 32; its weights are random, so the feature values mean nothing, but every
shape, count and the ReLU's effect are real.
"""),
("md", r"""
## Parameters

The one cell to edit (see notebook 02 for the real-model notes). `runTwoChunkExample` runs a 27 s request through the
encoder; with the tiny checkpoint that takes a second, with the real one minutes on a CPU, so it defaults to the tiny
checkpoint only.
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                      // or e.g. "/models/Step-Audio-2-mini"
var audioFile = Lab.SharedAudio("real_speech.aiff");
bool? runTwoChunkExample = null;                           // null: only with the tiny checkpoint
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Audio.Mel;
using StepAudio2.Lab.Config;
using StepAudio2.Lab.Engine;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.IO.Safetensors;
using StepAudio2.Lab.Models;
using StepAudio2.Lab.Models.AudioEncoder;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;


bool isTiny = Path.GetFullPath(checkpoint).TrimEnd('/') == Path.GetFullPath(Lab.TinyCheckpoint).TrimEnd('/');
var config = StepAudio2Config.Load(checkpoint);
var model = new StepAudio2Model(ShardedCheckpoint.Open(checkpoint), config);
var adapter = model.Adapter;
Console.WriteLine($"{(isTiny ? "tiny random" : "real")} checkpoint: adapter.conv {adapter.Conv.Weight} stride {adapter.Conv.Stride}, " +
                  $"linear1 {adapter.Linear1.Weight}, linear2 {adapter.Linear2.Weight}");
"""),
("md", r"""
## Run encoder and adaptor

The encoder runs untraced (notebook 02 looks inside it); the adaptor's modules are traced under their official paths.
"""),
("code", r"""
var wav = AudioInput.Load16k(audioFile);
var prepared = AudioInput.Prepare([wav]);
var (encoded, encLengths) = model.Encoder.Forward(prepared.Batch.Mels, prepared.MelLengths);
var trace = new Trace(["adapter", "adapter.*"]);
var features = adapter.Forward(encoded, trace);
int T3 = encoded.Shape[1], T4 = features.Shape[1], featLen = Adaptor.OutputLength(encLengths[0]);
display(Lab.Table(["path", "shape", "min", "max", "mean", "exact zeros"], trace.Entries.Select(e =>
{
    var s = TensorStats.Of(e.Value);
    return new object[] { e.Path, e.Value.ToString(), s.Min, s.Max, s.Mean, e.Value.ToFloatArray().Count(v => v == 0f) };
})));
Console.WriteLine($"encoder {encoded} (enc_len {encLengths[0]}) → adapter {features}: T₄ = ⌊({T3} − 1)/2⌋ + 1 = {(T3 - 1) / 2 + 1}; feat_len = ⌊({encLengths[0]} − 1)/2⌋ + 1 = {featLen}");
if (T4 != (T3 - 1) / 2 + 1) throw new Exception("adaptor length differs from spec §4");
"""),
("md", r"""
## The output: one row per `<audio_patch>`

Rows are audio tokens (80 ms each), columns the embedding channels the LLM receives in place of the placeholders'
token embeddings. With real weights the rows change where the speech changes; with the tiny random weights they are
structured noise.
"""),
("code", r"""
display(Lab.Figure(TensorPlotView.Figure("adapter (batch 0)", features.Select(0, 0), "adapter-out", xTitle: "embedding channel", yTitle: "audio token (80 ms)")));
"""),
("md", r"""
## ReLU, not GELU

`linear1` is followed by a ReLU (confirmed in the official code; the stem and conv use GELU, which makes GELU an easy
slip). With a ReLU every negative pre-activation becomes exactly 0, so a good share of `adapter.relu` is exact zeros
(about half for random weights). A port with GELU has almost none, and its output moves by a visible amount:
"""),
("code", r"""
var pre = trace["adapter.linear1"].ToFloatArray();
var post = trace["adapter.relu"].ToFloatArray();
Console.WriteLine($"adapter.linear1: {pre.Count(v => v < 0) * 100.0 / pre.Length:F1}% negative; adapter.relu: {post.Count(v => v == 0f) * 100.0 / post.Length:F1}% exact zeros");
var withGelu = adapter.Linear2.Forward(Ops.Gelu(trace["adapter.linear1"]));
var slip = TensorComparer.Compare("adapter (GELU instead of ReLU)", withGelu, trace["adapter"], Tolerance.F32);
Console.WriteLine($"GELU instead of ReLU: {(slip.Passed ? "PASS" : "FAIL")}, max |Δ| {slip.MaxAbsDiff:G3}, relative L2 {slip.RelL2:G3}, cosine {slip.Cosine:F4}");
Console.WriteLine($"hint: {slip.Hint.Text}");
"""),
("md", r"""
## How many audio tokens? (spec §2.6)

The prompt must hold exactly as many `<audio_patch>` slots as the adaptor delivers valid rows. The official helper
`compute_token_num` counts them from the mel length L alone; the model's own bookkeeping goes through the encoder and
adaptor lengths. Both are computed below for the durations of the spec's table and must agree with it:
100 mel fps → 50 (conv2) → 25 (pool) → 12.5 tokens per second. The 20 ms row is the edge case: a chunk so short that
its `<audio_start><audio_end>` block holds no patch. The adaptor formula ⌊(enc_len − 1)/2⌋ + 1 must use floor division
there (Python's `//`): a port with truncating integer division (C#, C, Java `/`) gets 1 row instead of 0 and writes it
over `<audio_end>`. This notebook found exactly that bug in this library's own `Adaptor.OutputLength`.
"""),
("code", r"""
var durations = new (string clip, int samples, int specTokens)[]
{
    ("0.5 s", 8_000, 6), ("1 s", 16_000, 13), ("1.23 s", 19_680, 16), ("5 s", 80_000, 63), ("25 s (full chunk)", 400_000, 313),
    ("20 ms", 320, 0), (Path.GetFileName(audioFile), wav.Length, -1),
};
var tokenRows = durations.Select(d =>
{
    int L = LogMelFrontend.FrameCount(d.samples);
    int viaModel = Adaptor.OutputLength(AudioEncoder.OutputLength(L - 2));
    return new { d.clip, N = d.samples, L, conv2_frames = (L - 1) / 2 + 1, enc_len = AudioEncoder.OutputLength(L - 2),
                 compute_token_num = LogMelFrontend.AudioTokenCount(L), model_bookkeeping = viaModel,
                 spec_table = d.specTokens < 0 ? "" : d.specTokens.ToString() };
}).ToList();
display(Lab.Table(["clip", "samples N", "mel frames L", "conv2 frames", "enc_len", "compute_token_num (L)", "encoder → adaptor lengths", "spec table"],
    tokenRows.Select(r => new object[] { r.clip, r.N, r.L, r.conv2_frames, r.enc_len, r.compute_token_num, r.model_bookkeeping, r.spec_table })));
foreach (var r in tokenRows)
    if (r.compute_token_num != r.model_bookkeeping || (r.spec_table != "" && r.spec_table != r.compute_token_num.ToString()))
        throw new Exception($"{r.clip}: token counts disagree");
if (prepared.TokenCounts[0] != featLen) throw new Exception("prompt token count differs from the adaptor's valid rows");
Console.WriteLine($"all agree; this clip takes {featLen} <audio_patch> slots, the adaptor computed {T4} rows");
"""),
("md", r"""
## Two chunks in one request

A request longer than 25 s is cut into chunks that are batched together (§2.7): mels right-padded with zeros to the
longest L, lengths L − 2 each. The second chunk below (2 s of a 27 s request, taken from the bundled two-chunk dump so
that no extra file is needed) computes as many adaptor rows as the first, but only its first feat_len rows reach the
prompt. With the tiny checkpoint the batch is also compared with the reference dump, which was made the same way.
"""),
("code", r"""
var twoChunkDump = TensorFiles.Open(Lab.TinyDump("audio-two_chunks"));
var longWav = twoChunkDump.Get("input.wav").ToFloatArray();
var two = AudioInput.Prepare([longWav]);
display(Lab.Table(["chunk", "seconds", "mel", "encoder length L − 2", "audio tokens"],
    two.Chunks.Select((c, i) => new object[] { i, c.Length / 16000.0, two.Mels[i].ToString(), two.MelLengths[i], two.TokenCounts[i] })));
Console.WriteLine($"batch {two.Batch.Mels}; prompt: <audio_start> <audio_patch>×{two.TokenCounts[0]} <audio_end> <audio_start> <audio_patch>×{two.TokenCounts[1]} <audio_end>");
if (runTwoChunkExample ?? isTiny)
{
    var twoTrace = new Trace(["adapter", "adapter.*", "input.*"]);
    foreach (var (name, value) in two.InputEntries()) twoTrace.Record(name, value);
    var (twoFeatures, twoLengths) = model.EncodeAudio(two.Batch.Mels, two.MelLengths, twoTrace);
    Console.WriteLine($"adapter output {twoFeatures}; valid rows per chunk {string.Join(" + ", twoLengths)} (= the prompt's counts: {twoLengths.SequenceEqual(two.TokenCounts)})");
    if (isTiny)
    {
        var c = DumpComparer.Compare(twoTrace.ToTensorSource(), twoChunkDump, new CompareOptions
        {
            Include = ["input.*", "adapter*"], ExecutionOrder = DumpFile.ExecutionOrder(twoChunkDump),
            Overrides = [Lab.MelOverride],
        });
        display(c);
    }
}
else Console.WriteLine("two-chunk run skipped (runTwoChunkExample)");
"""),
("md", r"""
## What a port typically gets wrong here

* **GELU after linear1** (shown above; notebook 05 catches it in a dump comparison).
* **Using all T₄ rows** of every chunk instead of feat_len: the prompt then has the wrong number of placeholders, or
  padded rows of a short chunk leak into the prompt.
* **Encoding chunks one by one** instead of as one batch: for a short chunk next to a 25 s one, the padded length T
  (and its parity, notebook 02) differs, so the mask and the last valid frames differ.
* **bf16**: the official model runs encoder and adaptor in bf16; the adaptor's 2048-wide ReLU layer is where bf16
  rounding of small pre-activations shows first.

Next: **04-llm** writes these rows over the `<audio_patch>` slots and runs the decoder.
"""),
]
