CELLS = [
("md", r"""
# 08 · End to end: speech in → text + speech out

Everything at once, the way `steplab s2st` runs it: a spoken question goes through the audio path (log-mel → encoder →
adaptor, notebooks 01–03) into the LLM as `<audio_patch>` embeddings; the prompt ends with `<tts_start>`, so the LLM
answers with **text tokens interleaved with speech codes** (spec §6.5: groups of 1 text + 4 speech tokens; audio tokens are
ids ≥ 151696, code = id − 151696, codes < 6561 are speech); the codes go through token2wav — the voice prompt's features
(S3 tokenizer + CAM++ over ONNX Runtime, 24 kHz mel), the flow (notebook 06) and HiFT (notebook 07) — and come out as
24 kHz audio in the prompt's voice.

**Honest label.** By default this runs the bundled tiny checkpoint (`reference-data/tiny`: official key names, random
weights, the real tokenizer from `../shared/models/step-audio-2-mini`) and the tiny token2wav folder (random flow and
vocoder, tiny ONNX prompt models with the official signatures). The "reply" is random tokens: it may hold no speech codes
at all, in which case the last section synthesises **fixed codes** instead, clearly labelled as such. Whatever plays is
noise-like. Set `checkpoint` to a real `Step-Audio-2-mini/` folder (with its `token2wav/`) for a real spoken answer.
"""),
("md", r"""
## Parameters

`checkpoint` holds `config.json`, the safetensors shards and `token2wav/`; `tokenizerDir` the tokenizer files (null: the
checkpoint folder when it has them, else `../shared/models/step-audio-2-mini`). `question` is the spoken input,
`voicePrompt` the voice to answer in (Step-Audio 2's default female prompt). `maxNewTokens` is small for the random
model; a real answer needs a few hundred (4 speech codes per text token, 25 codes per second of audio).
"""),
("code", r"""
using System.IO;
using StepAudio2.Lab.Interactive;

var checkpoint = Lab.TinyCheckpoint;                                            // e.g. "/models/Step-Audio-2-mini"
string tokenizerDir = null;
var question = Lab.SharedAudio("give_me_a_brief_introduction_to_the_great_wall.wav");
var voicePrompt = Lab.SharedAudio("default_female.wav");
int maxNewTokens = 32;                                                          // real model: e.g. 1024
int seed = 0;
"""),
("code", r"""
using StepAudio2.Lab.Generation;
using StepAudio2.Lab.Models.Token2Wav;
using StepAudio2.Lab.Pipeline;
using StepAudio2.Lab.Views;

tokenizerDir ??= File.Exists(Path.Combine(checkpoint, "vocab.json")) ? checkpoint : Path.Combine(Lab.Shared, "models", "step-audio-2-mini");
var pipeline = StepAudio2Pipeline.Load(checkpoint, tokenizerDir);
var t2w = pipeline.LoadToken2Wav();
Console.WriteLine($"LLM from {checkpoint}; token2wav from {t2w.Directory} ({t2w.SamplesPerCode} samples per speech code)");
"""),
("md", r"""
## The question

What the model hears: channel 0 resampled to 16 kHz.
"""),
("code", r"""
Lab.Audio16k(question)
"""),
("md", r"""
## The voice prompt

The voice the answer is spoken in. Its features are computed once and cached per file: S3 tokens (25 Hz), the CAM++
x-vector (192-d) and the 24 kHz prompt mel, cut or padded to exactly two mel frames per token. With the tiny ONNX models
the tokens and x-vector are random functions of the audio, with the real shapes.
"""),
("code", r"""
var prompt = t2w.PreparePrompt(voicePrompt);
Console.WriteLine($"{prompt.PromptLength} prompt tokens ({prompt.PromptLength / 25.0:F2} s): {string.Join(" ", prompt.PromptTokens.Take(20))} …");
Lab.Stack(Lab.Listen(Lab.ReadAudio(voicePrompt).MonoChannel0(), Lab.ReadAudio(voicePrompt).SampleRate, "voice prompt: " + Path.GetFileName(voicePrompt)),
          Lab.MelChart(prompt.PromptMel, "the prompt's 24 kHz mel (flow condition)", framesFirst: true))
"""),
("md", r"""
## The reply as a token stream

`SpeechToSpeech` builds the spoken-conversation prompt (system turn, the audio as the human turn, `<|BOT|>assistant\n<tts_start>`),
samples the reply (temperature 0.7, top-k 50, top-p 0.9, repetition penalty 1.05, seeded), splits text ids from audio
codes and, when there are speech codes, synthesises them. The stream shows the prompt (the run of `<audio_patch>`
collapsed) and the generated ids coloured by kind: text, special tokens, speech codes.
"""),
("code", r"""
var reply = pipeline.SpeechToSpeech(question, voicePrompt, SamplingOptions.Chat with { MaxNewTokens = maxNewTokens, Seed = seed }, seed: seed);
Console.WriteLine($"text: \"{reply.Text}\"");
Console.WriteLine($"{reply.Chat.Generation.GeneratedIds.Length} generated ids: {reply.TextIds.Length} text, {reply.AudioCodes.Length} audio codes, {reply.SpeechCodes.Length} speech codes (< 6561)");
Console.WriteLine($"LLM {reply.Timings.Llm.Total.TotalSeconds:F2} s, voice prompt {reply.Timings.Prompt.TotalSeconds:F2} s, flow {reply.Timings.Flow.TotalSeconds:F2} s, HiFT {reply.Timings.Hift.TotalSeconds:F2} s");
TokenStream.Build(pipeline.Tokenizer, reply.Chat.Prompt.Ids, reply.Chat.Generation.GeneratedIds)
"""),
("md", r"""
## The spoken answer

The reply's speech codes through token2wav, 24 kHz. If the reply held no speech codes (likely with the random tiny LLM),
the cell says so and synthesises a fixed run of 50 codes (2 s) in the same voice instead — token2wav's half of the
pipeline, not the model's answer.
"""),
("code", r"""
Waveform answer;
if (reply.HasAudio)
    answer = Lab.Listen(reply.Waveform, reply.SampleRate, $"spoken reply: {reply.SpeechCodes.Length} speech codes → {reply.AudioSeconds:F2} s");
else
{
    var fixedCodes = Enumerable.Range(0, 50).Select(i => (i * 131 + 7) % 6561).ToArray();
    var fallback = t2w.TokensToWav(fixedCodes, prompt, seed: seed);
    Console.WriteLine("FALLBACK: the reply held no speech codes; below are 50 FIXED codes through token2wav, not the model's answer");
    answer = Lab.Listen(fallback.Waveform, fallback.SampleRate, $"FALLBACK, fixed codes (not the model's reply): {fallback.Codes.Length} codes → {fallback.AudioSeconds:F2} s");
}
answer
"""),
]
