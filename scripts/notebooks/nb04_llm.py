CELLS = [
("md", r"""
# 04 · The LLM: prompt, prefill, logits, generation

The decoder is Qwen2.5-7B's architecture (spec §5): 28 layers of width 3584, 28 query heads and 4 key/value heads
(grouped-query attention, head dim 128), RMSNorm (eps 1e−6), SwiGLU MLP of 18 944, rotary positions (rotate-half,
θ = 10⁶), q/k/v projections **with** bias and o_proj **without**, and an untied `lm_head` over 158 720 ids. The audio
enters as embeddings: the adaptor rows of notebook 03 are written over the `<audio_patch>` slots of the prompt (§5.3).

The tiny checkpoint has the same tree with width 32, 4 query and 2 key/value heads and 2 layers, and the real
158 720-row vocabulary. **Its weights are random, so its logits and its generated tokens are meaningless**: what this
notebook can check on it is the prompt, the injection, the shapes and the parity with the PyTorch reference. With the
real checkpoint the same cells show the model's actual reply.
"""),
("md", r"""
## Parameters

The one cell to edit. The tiny checkpoint has no tokenizer files, so the real ones from `../shared/models/step-audio-2-mini`
are used with it; a real checkpoint folder carries its own. `greedyTokens` = 8 is what the bundled reference recorded.
"""),
("code", r"""
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                      // or e.g. "/models/Step-Audio-2-mini"
var audioFile = Lab.SharedAudio("real_speech.aiff");
int greedyTokens = 8;
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Audio;
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.IO;
using StepAudio2.Lab.Models.Llm;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Prompting;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Text;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;


bool isTiny = Path.GetFullPath(checkpoint).TrimEnd('/') == Path.GetFullPath(Lab.TinyCheckpoint).TrimEnd('/');
var tokenizerDir = File.Exists(Path.Combine(checkpoint, "vocab.json")) ? checkpoint : Path.Combine(Lab.Shared, "models", "step-audio-2-mini");
var reference = isTiny ? TensorFiles.Open(Lab.TinyDump("llm-short")) : null; // same clip, default prompt
var pipeline = StepAudio2Pipeline.Load(checkpoint, tokenizerDir);
var tok = pipeline.Tokenizer;
var tc = pipeline.Config.Text;
Console.WriteLine($"{(isTiny ? "tiny random" : "real")} checkpoint loaded in {pipeline.LoadTime.TotalSeconds:F1} s: {tc.NumHiddenLayers} layers, width {tc.HiddenSize}, " +
                  $"{tc.NumAttentionHeads} query / {tc.NumKeyValueHeads} key-value heads of {tc.HeadDim}, MLP {tc.IntermediateSize}, vocab {tc.VocabSize}");
"""),
("md", r"""
## The prompt

The official chat format (§6.2): each turn is `<|BOT|>role\n … <|EOT|>`, the human turn holds the audio as
`<audio_start>` + `<audio_patch>`×n + `<audio_end>` per 25 s chunk (n from notebook 03), and the prompt ends with the
generation prompt `<|BOT|>assistant\n`. Segments are tokenised separately and concatenated, exactly as the official
runner does (it matters at BPE boundaries).

Colours: text, special/control tokens, the run of `<audio_patch>` placeholders (collapsed into one chip), speech codes.
"""),
("code", r"""
var wav = AudioInput.Load16k(audioFile);
ChatMessage[] messages = [ChatMessage.System(StepAudio2Pipeline.DefaultSystemPrompt), ChatMessage.User(new AudioItem(wav, audioFile)), ChatMessage.AssistantPrompt()];
var prompt = PromptBuilder.Chat(tok, messages);
display(TokenStream.Build(tok, prompt.Ids, []));
display(Lab.Table(["start", "length", "kind", "source"], prompt.Segments.Select(s => new object[] { s.Start, s.Length, s.Kind, s.Source.Length > 60 ? s.Source[..60] + "…" : s.Source })));
Console.WriteLine($"{prompt.Ids.Length} ids; {prompt.Ids.Count(i => i == StepAudioTokenizer.AudioPatch)} <audio_patch> slots for {prompt.Audio!.Mels.Count} chunk(s)");
if (reference is not null)
{
    var refIds = reference.Get("input.ids").ToInt64Array().Select(i => (int)i).ToArray();
    Console.WriteLine($"reference input.ids ({refIds.Length} ids, tokenised by hand from vocab.json): {(refIds.SequenceEqual(prompt.Ids) ? "identical ✓" : "DIFFERENT")}");
}
"""),
("md", r"""
## Embeddings with the audio written in

All ids are embedded with `model.embed_tokens` (the placeholders get ordinary embeddings), then for the k-th
`<audio_start>` the next feat_len rows are overwritten with chunk k's adaptor output. `<audio_start>` and `<audio_end>`
keep their token embeddings. The check compares the embedding rows with the adaptor rows directly.
"""),
("code", r"""
var model = pipeline.Model;
var trace = new Trace();
StepAudio2Pipeline.RecordInputs(trace, prompt);
var (features, featLens) = model.EncodeAudio(prompt.Audio.Batch.Mels, prompt.Audio.MelLengths, trace);
var hidden = model.EmbedPrompt(prompt.Ids, features, featLens, trace);
int start = Array.IndexOf(prompt.Ids, StepAudioTokenizer.AudioStart), D = hidden.Shape[1];
var h = hidden.ToFloatArray();
var f = features.ToFloatArray();
double worst = 0;
for (int r = 0; r < featLens[0]; r++)
    for (int c = 0; c < D; c++) worst = Math.Max(worst, Math.Abs(h[(start + 1 + r) * D + c] - f[r * D + c]));
Console.WriteLine($"embeddings {hidden}; rows {start + 1}…{start + featLens[0]} (after <audio_start> at {start}) = adapter rows 0…{featLens[0] - 1}: max |Δ| = {worst}");
Console.WriteLine($"row {start + featLens[0] + 1} is {tok.IdToToken(prompt.Ids[start + featLens[0] + 1])} and keeps its token embedding");
if (worst != 0) throw new Exception("audio features were not written over the placeholders");
display(Lab.Figure(TensorPlotView.Figure("prompt embeddings", hidden, "embeddings", xTitle: "channel", yTitle: "prompt position")));
"""),
("md", r"""
## Prefill and the next-token distribution

One forward pass over the whole prompt fills the KV cache and gives the logits of the last position (float32, as the
official runner samples them). The table lists the most probable next tokens. For the real model after this prompt,
expect the start of a reply to the spoken question; for the tiny random checkpoint the distribution is nearly flat over
158 720 ids (each about 1/158 720 ≈ 6e−6), and its top tokens are arbitrary.
"""),
("code", r"""
var cache = new KvCache(tc);
var sw = System.Diagnostics.Stopwatch.StartNew();
var logits = model.LastLogits(hidden, 0, cache, trace);
Console.WriteLine($"prefill of {prompt.Ids.Length} positions: {sw.ElapsedMilliseconds} ms; logits {logits}; KV cache {cache.Length} positions");
var lv = logits.ToFloatArray();
float maxLogit = lv.Max();
double z = lv.Sum(v => Math.Exp(v - maxLogit));
var top = lv.Select((v, id) => (v, id)).OrderByDescending(t => t.v).ThenBy(t => t.id).Take(10)
    .Select((t, rank) => new { rank, id = t.id, token = TokenStream.Display(tok, t.id), kind = TokenStream.Classify(t.id).ToString(), logit = t.v, p = Math.Exp(t.v - maxLogit) / z }).ToList();
display(Lab.Table(["rank", "id", "token", "kind", "logit", "p"], top.Select(t => new object[] { t.rank, t.id, t.token, t.kind, t.logit, t.p })));
Console.WriteLine($"entropy of the distribution: {-lv.Sum(v => { double p = Math.Exp(v - maxLogit) / z; return p > 0 ? p * Math.Log(p) : 0; }):F2} nats (uniform over {lv.Length}: {Math.Log(lv.Length):F2})");
"""),
("md", r"""
The whole logit vector, sorted: a trained model puts a few ids far above the rest; random weights give a smooth curve.
"""),
("code", r"""
var sorted = lv.OrderByDescending(v => v).Take(2000).ToArray();
display(Lab.Figure(TensorPlotView.Figure("the 2000 largest logits, sorted", Tensor.FromArray(sorted, sorted.Length), "logits-sorted", xTitle: "rank", yTitle: "logit"), 300));
"""),
("md", r"""
## Greedy generation as a token stream

The generator continues from the same prompt with the KV cache, one token per step, and streams each token as it comes
(printed below while it runs). Greedy here, as the official ASR examples; stop tokens are switched off so that exactly
`greedyTokens` tokens come out, as in the reference. Each generated token keeps its top-5 alternatives: hover a
generated chip, or read the table under the stream.

**Tiny checkpoint: the tokens are random**: any mix of text pieces, control tokens and speech codes. They are still
checkable: the reference recorded its own greedy continuation (recomputing the whole sequence every step, without a
cache), and ours must be the same ids.
"""),
("code", r"""
var options = SamplingOptions.Greedy with { MaxNewTokens = greedyTokens, StopTokenIds = [], RecordAlternatives = true, AlternativesCount = 5 };
var audio = new PromptAudio(features, featLens);
var generated = new List<int>();
var alternatives = new List<StepAlternatives>();
await foreach (var e in pipeline.Generator.GenerateStreamingAsync(prompt.Ids, options, audio, pipeline.Decoder))
{
    if (e is TokenGenerated t)
    {
        generated.Add(t.Id);
        if (t.Alternatives is not null) alternatives.Add(t.Alternatives);
        Console.WriteLine($"step {t.Index}: {t.Id,6} {t.Kind,-9} {TokenStream.Display(tok, t.Id)}");
    }
    else if (e is GenerationCompleted done)
        Console.WriteLine($"{done.Result.StopReason}: prefill {done.Result.Prefill.TotalMilliseconds:F0} ms, decode {done.Result.DecodeTokensPerSecond:F1} tokens/s");
}
display(TokenStream.Build(tok, prompt.Ids, generated, alternatives));
if (reference is not null)
{
    var refGreedy = reference.Get("output.greedy_ids").ToInt64Array().Select(i => (int)i).ToArray();
    Console.WriteLine($"reference greedy ids {string.Join(" ", refGreedy)}: {(refGreedy.SequenceEqual(generated.Take(refGreedy.Length)) ? "identical ✓" : "DIFFERENT")}");
}
"""),
("md", r"""
## The prefill against the reference

Every activation of the prefill (`model.embed_tokens`, each layer and its sub-modules, `model.norm`, `lm_head.last`) is
compared with the reference dump (f32 tier; the mel at 1e−4 as in notebook 01). Notebook 05 explains the table and shows a
failure.
"""),
("code", r"""
if (reference is null) Console.WriteLine("no bundled reference for this checkpoint: skipped (see notebook 05)");
else
{
    trace.Record("output.greedy_ids", Tensor.FromArray(generated.Select(i => (long)i).ToArray(), generated.Count));
    var c = DumpComparer.Compare(trace.ToTensorSource(), reference, new CompareOptions
    {
        ExecutionOrder = DumpFile.ExecutionOrder(reference), Overrides = [Lab.MelOverride],
    });
    display(c);
    Console.WriteLine(c.AllPassed ? $"PASS: {c.Compared} compared" : $"FAIL: first failing {c.FirstFailure!.Name}");
}
"""),
("md", r"""
## What a port typically gets wrong here

* **RoPE layout**: Qwen2 rotates halves (`[−x₆₄…₁₂₇, x₀…₆₃]`), not interleaved pairs; the wrong one passes layer 0's
  q/k projections and fails `self_attn` with a hint of permuted values.
* **Biases**: q, k, v have them, o_proj does not; the MLP has none.
* **GQA**: query head h uses key/value head ⌊h/7⌋ (7 query heads per KV head), not h mod 4.
* **RMSNorm**: normalise in float32, cast back, *then* multiply by the weight (HF order); matters in bf16.
* **Injection**: audio rows go *after* `<audio_start>`, into exactly feat_len slots per chunk.
* **The official runner drops the last generated token** (meant to be `<|EOT|>`); this library keeps every token and
  leaves out only a final stop token, so a length-limited reply keeps its last word.
* **bf16**: the real model's weights are bf16; a float32 reference run of them agrees to the bf16 tier, not the f32 one.

Next: **05-parity** compares a whole trace with a reference and finds the first module that departs.
"""),
]
