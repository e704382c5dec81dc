CELLS = [
("md", r"""
# 05 · Parity: a whole trace against a reference dump, and the first divergence

Every activation in this library is named by the **PyTorch module path of the official model** (`encoder.blocks.7.attn`,
`adapter.relu`, `model.layers.3.self_attn`, `lm_head.last`, …), the names a forward hook on the official model sees. A
*reference dump* is a safetensors file of such tensors made by the Python side (the bundled ones by
`reference-data/make_tiny.py` from our PyTorch reference; for the real model `reference-data/dump_official.py` hooks the
official code). Comparing a trace with a dump, tensor by tensor **in the reference's execution order**, turns "the output
is wrong" into "the first module that departs is X, and the difference looks like Y".

Each row reports: shape and dtype, max |a−b| and where, mean |a−b|, relative L2 ‖a−b‖/‖b‖, cosine similarity, NaN/Inf
counts, pass/fail against a tolerance tier, and for a failure a **hint** read off the shape of the error (all zeros →
weight not loaded; constant or per-channel offset → a bias; per-channel scale → a norm weight; transposed/permuted → a
layout or head split; shifted by one → padding).
"""),
("md", r"""
## Parameters

The one cell to edit. With the tiny checkpoint the bundled dumps of this clip are the references and the demo candidates
in `reference-data/tiny/demo` are available. For the real model, point `checkpoint` at it and give the dump(s) that
`reference-data/dump_official.py --model <dir> --audio <clip> --out <dump>` wrote (float32 for the f32 tier; a bf16 run
compares with `tolerance = Tolerance.BF16`).
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                      // or e.g. "/models/Step-Audio-2-mini"
var audioFile = Lab.SharedAudio("real_speech.aiff");
string[] referenceDumps = null;                            // null: the bundled tiny dumps (tiny checkpoint only)
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;


bool isTiny = Path.GetFullPath(checkpoint).TrimEnd('/') == Path.GetFullPath(Lab.TinyCheckpoint).TrimEnd('/');
referenceDumps ??= isTiny ? [Lab.TinyDump("audio-short"), Lab.TinyDump("llm-short")] : [];
var tokenizerDir = File.Exists(Path.Combine(checkpoint, "vocab.json")) ? checkpoint : Path.Combine(Lab.Shared, "models", "step-audio-2-mini");
var pipeline = StepAudio2Pipeline.Load(checkpoint, tokenizerDir);
// the mel of two float32 FFT paths differs by ~2e-5 near the log clamp (notebook 01): its own bound
var options = new CompareOptions { Tolerance = Tolerance.F32, Overrides = [Lab.MelOverride] };
Console.WriteLine($"{(isTiny ? "tiny random" : "real")} checkpoint; references: {(referenceDumps.Length == 0 ? "none given" : string.Join(", ", referenceDumps.Select(Path.GetFileName)))}");
"""),
("md", r"""
## One traced run

The default chat prompt (system turn, the clip as the human turn, `<|BOT|>assistant\n`), greedy for 8 tokens without stop
tokens, as `steplab trace --greedy 8` and the reference runner do. A `Trace` with no filter keeps every module output, the
inputs (`input.ids`, `input.wav`, `input.mel.N`, `input.wav_lens`) and, recorded here, `output.greedy_ids`. The explorer
groups the paths by module in execution order; expand a group for shapes and statistics.
"""),
("code", r"""
var trace = new Trace();
var wav = AudioInput.Load16k(audioFile);
var reply = pipeline.Chat([ChatMessage.System(StepAudio2Pipeline.DefaultSystemPrompt), ChatMessage.User(new AudioItem(wav, audioFile)), ChatMessage.AssistantPrompt()],
    SamplingOptions.Greedy with { MaxNewTokens = 8, StopTokenIds = [] }, trace);
var greedy = reply.Generation.GeneratedIds;
trace.Record("output.greedy_ids", Tensor.FromArray(greedy.Select(i => (long)i).ToArray(), greedy.Length));
Console.WriteLine($"{trace.Count} activations; prompt {reply.Prompt.Ids.Length} ids; greedy {string.Join(" ", greedy)}; {reply.Timings.Total.TotalMilliseconds:F0} ms");
display(trace);
"""),
("md", r"""
## The trace against the reference: pass

Each reference covers part of the model (the audio dump holds the encoder with its attention scores and the adaptor; the
LLM dump the prompt ids, every decoder layer, `lm_head.last` and the reference's own greedy ids). Names present on one
side only are listed but not counted as failures (use `RequireAll` to make them count). Expect every row green: the C#
engine and the PyTorch reference agree to the f32 tier (relative error ~1e−6).
"""),
("code", r"""
var candidate = trace.ToTensorSource();
var passes = new List<DumpComparison>();
foreach (var path in referenceDumps)
{
    var reference = TensorFiles.Open(path);
    var c = DumpComparer.Compare(candidate, reference, options with { ExecutionOrder = DumpFile.ExecutionOrder(reference) });
    passes.Add(c);
    display(c);
    var worst = c.Rows.Where(r => r.Comparison is { ElementCount: > 0, IsInteger: false }).MaxBy(r => r.Comparison!.RelL2)!;
    Console.WriteLine($"{Path.GetFileName(path)}: {(c.AllPassed ? "PASS" : "FAIL")}, {c.Compared} compared; largest relative L2 {worst.Comparison!.RelL2:G3} at {worst.Name}");
}
if (passes.Count == 0) Console.WriteLine("no reference dump: give referenceDumps in the parameter cell");
"""),
("md", r"""
## A port with a bug: the first divergence

`reference-data/tiny/demo/candidate-gelu-adaptor.safetensors` was made by the same PyTorch reference with one change:
`adapter.relu` is a GELU (the slip of spec §10; notebook 03 shows why it is easy to make). Everything before the
adaptor still matches, so the comparison walks the execution order and names **`adapter.relu` as the first failing
path**; the rows after it fail too, as a consequence. Always read a parity report from its first failure.

This demo candidate exists for the tiny checkpoint only.
"""),
("code", r"""
DumpComparison gelu = null;
ITensorSource geluCandidate = null, audioReference = null;
if (isTiny)
{
    geluCandidate = TensorFiles.Open(Path.Combine(Lab.TinyCheckpoint, "demo", "candidate-gelu-adaptor.safetensors"));
    audioReference = TensorFiles.Open(Lab.TinyDump("audio-short"));
    gelu = DumpComparer.Compare(geluCandidate, audioReference, options with { ExecutionOrder = DumpFile.ExecutionOrder(audioReference) });
    display(gelu);
    var first = gelu.FirstFailure!;
    Console.WriteLine($"first failing path: #{first.Ordinal} {first.Name}; {gelu.Failed} rows fail in all");
    Console.WriteLine($"hint: {first.Comparison!.Hint.Text}");
}
else Console.WriteLine("the demo candidates are made for the tiny checkpoint: skipped");
"""),
("md", r"""
What the difference looks like: |candidate − reference| of the first failing tensor, `[tokens, channels]`. A GELU
instead of a ReLU changes every negative pre-activation (ReLU gives exactly 0, GELU a small negative value) and leaves
large positive ones almost alone, so the map is a dense speckle with no row or column structure: no "missing bias" or
"transposed" pattern, which is itself informative.
"""),
("code", r"""
if (gelu is not null)
    display(Lab.Figure(ParityView.FirstFailureHeatmap(gelu, geluCandidate!, audioReference!, "gelu-diff")!, 420));
"""),
("md", r"""
## A planted difference with a recognisable shape

The hints earn their keep on structured errors. Below, a copy of our own trace gets one planted bug: the output of
`model.layers.0.self_attn.k_proj` without its bias, as a port would produce that took Whisper's bias-free key
projection as the model for Qwen2's (which has one). Only this tensor is changed; the downstream tensors in the copy
keep their correct values, so it is the only failing row, whereas in a real port every row after it would fail as well.
The hint recognises a **per-channel offset** along the last axis and names a bias as the likely cause; the heatmap shows
the same: stripes, one per channel, constant down the rows.
"""),
("code", r"""
const string planted = "model.layers.0.self_attn.k_proj";
var kBias = pipeline.Model.Model.Layers[0].SelfAttn.KProj.Bias!.ToFloatArray();
var k = trace[planted].ToFloatArray();
for (int i = 0; i < k.Length; i++) k[i] -= kBias[i % kBias.Length];
var buggy = new Trace();
foreach (var (path, value) in trace.Entries) buggy.Record(path, path == planted ? Tensor.FromArray(k, value.Shape.ToArray()) : value);
var plantedParity = DumpComparer.Compare(buggy.ToTensorSource(), candidate, options with { ExecutionOrder = trace.Order });
var plantedRow = plantedParity.FirstFailure!;
Console.WriteLine($"{(plantedParity.AllPassed ? "PASS" : "FAIL")}: first failing path #{plantedRow.Ordinal} {plantedRow.Name} of {plantedParity.Compared}; {plantedParity.Failed} failing");
Console.WriteLine($"hint ({plantedRow.Comparison!.Hint.Kind}): {plantedRow.Comparison.Hint.Text}");
display(Lab.Figure(ParityView.FirstFailureHeatmap(plantedParity, buggy.ToTensorSource(), candidate, "planted-diff")!, 360));
"""),
("md", r"""
## The same without a notebook

* `steplab trace --model <dir> --audio <clip> --greedy 8 --out ours.safetensors` writes this trace as a dump;
* `steplab compare ours.safetensors reference.safetensors [--tier bf16] [--override 'input.mel.*=rtol=0,atol=1e-4']`
  prints this table (exit code 1 on a failure, for CI);
* `steplab report --model <dir> --audio <clip> --reference <dump> --out report.html` writes every view of notebooks
  01–05 into one offline HTML page.

What to remember: compare in execution order and read the **first** failure; match tolerance to dtype (f32 tier for a
float32 run of both sides, bf16 tier when either side ran in bf16); and trust the hint only as a hint: it says what the
difference looks like, the spec says why.
"""),
]
