CELLS = [
("md", r"""
# 06 · Flow: speech codes → mel (conformer encoder + DiT, 10 CFM steps with CFG)

The first half of token2wav (spec §7.6–7.9). The LLM's speech codes (25 per second, 6561 possible values) become an 80-bin
mel at 50 frames per second in the voice of a **voice prompt**:

1. **Inputs**: the reply's codes c (N), and from the voice prompt its S3 tokens p (P, 25 Hz), its 24 kHz mel M_p
   `[2P, 80]` and its CAM++ x-vector e (192-d). Notebook 08 makes these from a clip; here they come from a reference dump.
2. **Speaker**: ê = e/‖e‖ → `flow.spk_embed_affine_layer` (192 → 80).
3. **Encoder**: embeddings of [p ; c] (`flow.input_embedding`, 6561 × 512) → `UpsampleConformerEncoderV2` (linear embed,
   pre-lookahead conv of 3, **6** rel-pos conformer layers, nearest ×2 + causal conv `up_layer`, **4** more layers) →
   `flow.encoder_proj` (512 → 80) = **μ**, 2 frames per token.
4. **CFM** (`flow.decoder`): from noise z, **10 Euler steps** on the cosine schedule τ_k = 1 − cos(kπ/20), each a DiT
   (`flow.decoder.estimator`, 16 blocks) run on a batch of two — conditioned (x, μ, s, cond) and unconditioned (x, 0, 0,
   0) — mixed with **classifier-free guidance** v = 1.7·v₀ − 0.7·v₁. The prompt mel is the condition on its own frames.
5. The prompt's 2P frames are cut off: `flow` = mel `[1, 80, 2N]`, the vocoder's input (notebook 07).

**Honest label.** The bundled `reference-data/tiny/token2wav` flow has the official module tree and key names but small
widths (64 instead of 512, 2 + 2 conformer layers, a 2-block DiT) and **random weights**: nothing below is speech. What
the notebook shows is the machinery — shapes, the trajectory of the ODE, the effect of guidance — and that every traced
tensor equals the PyTorch reference. Point `token2wavDir` at a real `Step-Audio-2-mini/token2wav` to see real mels.
"""),
("md", r"""
## Parameters

The one cell to edit. `referenceDump` holds the inputs (`input.codes`, `input.prompt_tokens`, `input.xvector`,
`input.prompt_mel`, `input.noise`) and the PyTorch reference's `flow.*` (made by `reference-data/make_flow.py`). Set it to
`null` to make the inputs from `voicePrompt` instead (S3 tokenizer + CAM++ over ONNX Runtime, notebook 08) with `codes`
(null: 50 fixed codes, 2 s); then there is no parity table.
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Interactive;

var token2wavDir = Lab.TinyToken2Wav;                     // or e.g. "/models/Step-Audio-2-mini/token2wav"
string referenceDump = Lab.TinyDump("token2wav-short");   // null: inputs from the voice prompt below
var voicePrompt = Lab.SharedAudio("default_female.wav");
int[] codes = null;                                       // with a voice prompt: the codes to speak (null: 50 fixed codes)
"""),
("code", r"""
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Parity;
using StepAudio2.Lab.Tensors;
using StepAudio2.Lab.Tracing;
using StepAudio2.Lab.Views;

var t2w = Token2Wav.Load(token2wavDir, promptModels: referenceDump is null);
Token2WavInputs inputs;
if (referenceDump is not null) inputs = Lab.DumpInputs(referenceDump);
else
{
    var features = t2w.PreparePrompt(voicePrompt);
    var speak = codes ?? Enumerable.Range(0, 50).Select(i => (i * 131 + 7) % 6561).ToArray();
    inputs = new Token2WavInputs(speak, features.PromptTokens, features.Xvector, features.PromptMel, null, null);
}
int P = inputs.PromptTokens.Length, N = inputs.Codes.Length, promptFrames = 2 * P;
var cfgRate = t2w.Flow.Config.Decoder.InferenceCfgRate;
Console.WriteLine($"flow: vocabulary {t2w.Flow.Config.VocabSize}, width {t2w.Flow.Config.InputSize}, {t2w.Flow.Config.OutputSize} mel bins, CFG rate {cfgRate}");
Console.WriteLine($"inputs: P = {P} prompt tokens → {promptFrames} prompt frames; N = {N} codes → {2 * N} frames ({2 * N * 0.02:F2} s); CFM sequence {2 * (P + N)} frames");
"""),
("md", r"""
## The voice prompt's part

What the flow takes from the voice prompt: its S3 tokens (the same 6561-code vocabulary as the reply), its 24 kHz mel
(hop 480, 80 Slaney bins, natural log clamped at 1e-5; exactly 2 frames per token) and the CAM++ x-vector (normalised
inside the flow). The prompt mel is the *condition* on the first 2P frames of the CFM: the flow continues the prompt's
voice from there.
"""),
("code", r"""
Console.WriteLine($"prompt tokens: {string.Join(" ", inputs.PromptTokens.Take(24))}{(P > 24 ? " …" : "")}");
Console.WriteLine($"codes to speak: {string.Join(" ", inputs.Codes.Take(24))}{(N > 24 ? " …" : "")}");
Lab.Stack(Lab.MelChart(inputs.PromptMel, "input.prompt_mel (24 kHz, 50 frames/s)", framesFirst: true),
          ("input.xvector", inputs.Xvector))
"""),
("md", r"""
## One traced run

`Token2Wav.Generate` runs flow and HiFT with a `Trace`: every module output under its official path (`flow.encoder.encoders.N`,
`flow.encoder.up_layer`, `flow.encoder_proj`, `flow.decoder.estimator.step.K` for each Euler step, `flow.decoder`, `flow`,
`hift.*`) plus the inputs actually used (`input.*`). The noise comes from the dump, so this run is the reference's run.
"""),
("code", r"""
var trace = new Trace();
var result = t2w.Generate(inputs.Codes, inputs.PromptTokens, inputs.PromptMel, inputs.Xvector, inputs.Noise, inputs.HiftNoise, trace: trace);
Console.WriteLine($"flow {result.FlowTime.TotalMilliseconds:F0} ms, HiFT {result.HiftTime.TotalMilliseconds:F0} ms; mel {Tensor.ShapeString(result.Mel.Shape)} → {result.AudioSeconds:F2} s of audio; {trace.Count} traced tensors");
"""),
("md", r"""
## μ: what the encoder makes of the tokens

`flow.encoder_proj` `[1, 2(P+N), 80]`: the encoder output projected to mel space, two frames per token (the ×2 upsampling
happens inside the encoder, at `up_layer`). μ is the *mean* the CFM is steered towards; on a trained model it already
looks like a blurred mel of the utterance. The dashed line marks where the prompt's frames end and the reply's begin.
"""),
("code", r"""
Lab.MelChart(trace["flow.encoder_proj"], "μ = flow.encoder_proj", promptFrames, framesFirst: true)
"""),
("md", r"""
## The 10 Euler steps

The trace keeps the estimator's output of each step (`flow.decoder.estimator.step.K`, both CFG rows `[2, 80, T]`). With the
starting noise (`input.noise`) they give every state x_K of the ODE: x ← x + dt·(1.7·v₀ − 0.7·v₁) on the float32 time grid
τ = 0, 0.0123, 0.0489, 0.109, 0.191, 0.293, 0.412, 0.546, 0.691, 0.844, 1 (`CfmSteps` repeats the port's float32
operations, so x₁₀ is bit-identical to the traced `flow.decoder`). Look for: the early steps are still mostly the noise,
the cosine schedule takes small steps first and large ones last. On a trained model the prompt region (left of the
dashed line) ends close to the prompt mel, which the estimator sees as its condition; the tiny random estimator does not
learn that, so here both regions stay noise-like.
"""),
("code", r"""
var steps = Lab.CfmSteps(trace, cfgRate);
var last = steps.States[^1].ToFloatArray();
var traced = trace["flow.decoder"].ToFloatArray();
Console.WriteLine($"{steps.Steps} Euler steps; rebuilt x_{steps.Steps} vs traced flow.decoder: max |Δ| = {last.Zip(traced, (a, b) => Math.Abs(a - b)).Max():G3}");
Lab.CfmStrip(steps, promptFrames)
"""),
("md", r"""
## Classifier-free guidance

Each step runs the DiT twice (as one batch): **v₀** conditioned on μ, the speaker and the prompt mel, **v₁** with all three
zeroed. Guidance extrapolates away from the unconditioned velocity: v = (1 + r)·v₀ − r·v₁ with r = 0.7 from flow.yaml. The
first row shows the two estimates at step 1 and the guided mix; the second compares the final mel with guidance off
(r = 0, the conditioned row alone) and on, from the same noise. On a trained model guidance sharpens the harmonics and
the speaker's timbre; here (random weights) it only shows that the two rows differ and by how much.
"""),
("code", r"""
var flowNoCfg = Lab.FlowMel(token2wavDir, inputs, 0.0);
var withCfg = trace["flow"];
var a = flowNoCfg.ToFloatArray(); var b = withCfg.ToFloatArray();
double diff = Math.Sqrt(a.Zip(b, (x, y) => (double)(x - y) * (x - y)).Sum() / b.Sum(y => (double)y * y));
Console.WriteLine($"‖mel(r=0) − mel(r={cfgRate})‖ / ‖mel(r={cfgRate})‖ = {diff:F3}");
Lab.Stack(
    Lab.MelStrip("estimator at step 1: conditioned, unconditioned, guided",
        MelData.ChannelsFirst(steps.Conditional[0], "v₀ (conditioned)", promptFrames),
        MelData.ChannelsFirst(steps.Unconditional[0], "v₁ (unconditioned)", promptFrames),
        MelData.ChannelsFirst(steps.Guided(0), $"(1+{cfgRate})·v₀ − {cfgRate}·v₁", promptFrames)),
    Lab.MelStrip("the generated mel without and with guidance (same noise)",
        MelData.ChannelsFirst(flowNoCfg, "CFG rate 0"),
        MelData.ChannelsFirst(withCfg, $"CFG rate {cfgRate}")))
"""),
("md", r"""
## The final mel

`flow.decoder` is the last state over the whole sequence, prompt frames included (shaded); the flow's output `flow` is the
part after the dashed line, `[1, 80, 2N]` — what HiFT turns into 480 samples per frame (notebook 07).
"""),
("code", r"""
Lab.Stack(Lab.MelChart(trace["flow.decoder"], "flow.decoder (prompt + reply)", promptFrames),
          Lab.MelChart(trace["flow"], "flow = the reply's mel, the vocoder's input"))
"""),
("md", r"""
## Parity against the PyTorch reference

Every `input.*` and `flow.*` tensor of the trace against the dump, in the reference's execution order: inputs exactly,
flow paths at the acceptance bound of issue 6, rel-L2 ≤ 1e-5 (spec §9 measures ~1e-6 for the flow with the float32 time
grid), elementwise 1e-4 (`ReferenceOverrides.Flow`: a few values after the encoder's upsampling conv sit ~3e-5 apart, beyond the
generic float32 tier's 1e-5). `hift.*` is left to notebook 07, whose tolerance differs. Expect every row green.
"""),
("code", r"""
ParityResult parity = null;
if (referenceDump is not null)
{
    parity = Lab.Compare(trace, referenceDump, new CompareOptions { Include = ["input.*", "flow*"], Overrides = [ReferenceOverrides.Flow] });
    var worst = parity.Comparison.Rows.Where(r => r.Comparison is { ElementCount: > 0, IsInteger: false }).MaxBy(r => r.Comparison.RelL2);
    Console.WriteLine($"{(parity.AllPassed ? "PASS" : "FAIL")}: {parity.Comparison.Compared} tensors; largest rel-L2 {worst.Comparison.RelL2:G3} at {worst.Name}");
    if (parity.Comparison.FirstFailure is { } first)
        Console.WriteLine($"first failure: #{first.Ordinal} {first.Name} ({first.Status}{(first.Comparison is null ? "" : $", max |a−b| {first.Comparison.MaxAbsDiff:G3}, {first.Comparison.Hint.Text}")}{first.Error})");
}
else Console.WriteLine("no reference dump: nothing to compare");
parity
"""),
]
