#!/usr/bin/python3
"""Makes the tiny Step-Audio 2 checkpoint and its reference dumps (run with Debian's /usr/bin/python3).

* tiny/: config.json (same schema as the real one, tiny widths, real vocab size so real token ids work),
  3 bf16 safetensors shards + model.safetensors.index.json, keys exactly as the published checkpoint.
  Values are bf16-exact, so float32 math on them is what a port must reproduce.
* tiny/dumps/*.safetensors: every module output of the audio path under its official module path (docs/model.md §3–§4),
  inputs under input.*; metadata `steplab.order` = execution order.
* tiny/demo/*.safetensors: candidate dumps for the `steplab compare` demo: an independent float64 run (passes) and a
  run with the adaptor's ReLU swapped for GELU, a real porting bug (fails first at adapter.relu).

Deterministic: fixed seeds, sorted keys; re-running rewrites identical bytes.
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import audio, safetensors_io  # noqa: E402
from steplab_ref.dumper import ModuleDumper  # noqa: E402
from steplab_ref.model import StepAudio2  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "tiny")
SHARED_AUDIO = os.path.join(HERE, "..", "..", "shared", "audio")

TINY_CONFIG = {
    "architectures": ["StepAudio2ForCausalLM"],
    "model_type": "step_audio_2",
    "text_config": {
        "hidden_size": 32, "intermediate_size": 64, "num_attention_heads": 4, "num_attention_groups": 2,
        "num_key_value_heads": 2, "num_hidden_layers": 2, "max_seq_len": 16384, "vocab_size": 158720,
        "rms_norm_eps": 1e-06, "eos_token_id": 151643, "pad_token_id": 151643, "rope_theta": 1000000.0,
        "max_position_embeddings": 16384, "rope_scaling": None, "torch_dtype": "bfloat16",
    },
    "audio_encoder_config": {
        "n_mels": 128, "n_audio_ctx": 1500, "n_audio_state": 32, "n_audio_head": 2, "n_audio_layer": 2,
        "n_codebook_size": 4096, "llm_dim": 32, "kernel_size": 3, "adapter_stride": 2,
    },
}
N_SHARDS = 3
ADAPTER_HIDDEN = 128  # official: 2048 (not in config.json; a port reads it from adapter.linear1.weight)


def build_model():
    torch.manual_seed(20260101)
    model = StepAudio2(TINY_CONFIG, ADAPTER_HIDDEN).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or name.endswith("_ln.weight") or name.endswith("layernorm.weight"):
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                fan_in = p.shape[1] * (p.shape[2] if p.dim() == 3 else 1) if p.dim() > 1 else 1
                p.copy_(torch.randn_like(p) / (fan_in ** 0.5))
            p.copy_(p.to(torch.bfloat16).to(torch.float32))  # bf16-exact
    return model


def save_sharded(model):
    os.makedirs(OUT, exist_ok=True)
    state = {k: v.to(torch.bfloat16) for k, v in model.state_dict().items()}
    # Published order (model.*, encoder.*, adapter.*, lm_head) and placement style: a layer split across shards,
    # the encoder split across the last two. Readers must resolve through the index, never assume placement.
    keys = sorted(state, key=lambda k: (("model.", "encoder.", "adapter.", "lm_head").index(
        next(p for p in ("model.", "encoder.", "adapter.", "lm_head") if k.startswith(p))), k))
    total = sum(v.numel() * 2 for v in state.values())

    def shard_of(k):
        if k == "model.embed_tokens.weight" or k.startswith("model.layers.0.self_attn"):
            return 0
        if k.startswith("model.") or k.startswith("encoder.conv") or k.startswith("encoder.positional") \
                or k.startswith("encoder.blocks.0."):
            return 1
        return 2

    shards = [[k for k in keys if shard_of(k) == i] for i in range(N_SHARDS)]
    weight_map = {}
    for i, names in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        safetensors_io.save_file({k: state[k] for k in names}, os.path.join(OUT, fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in names})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(os.path.join(OUT, "model.safetensors.index.json"), "w") as f:
        json.dump(index, f, indent=2)
        f.write("\n")
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(TINY_CONFIG, f, indent=2)
        f.write("\n")


def clips():
    """(name, list of 16 kHz waveforms as one request): a 3 s clip, and a 27 s clip that makes two chunks."""
    short = audio.load_audio_16k(os.path.join(SHARED_AUDIO, "real_speech.aiff"))
    parts = [audio.load_audio_16k(os.path.join(SHARED_AUDIO, f)) for f in
             ("mmau_test.wav", "multi-turn-round1-zh.wav", "music_playing_followed_by_a_woman_speaking.wav")]
    long = torch.cat(parts + [short])[: 27 * 16000]
    return [("short", short, True), ("two_chunks", long, False)]


def run_audio_path(model, wav, with_qk, dtype=torch.float32):
    mels = [audio.log_mel_spectrogram(c) for c in audio.chunk_audio(wav)]
    batch, lens = audio.batch_mels(mels)
    m = model.to(dtype)
    with ModuleDumper(m) as cap, torch.no_grad():  # every module output, plus <path>.qk attention scores
        cap.record("input.wav", wav)  # the 16 kHz waveform the mels are computed from (after torchaudio resampling)
        for i, mel in enumerate(mels):
            cap.record(f"input.mel.{i}", mel)
        cap.record("input.wav_lens", lens)  # the official forward's wav_lens: mel frames − 2 per chunk, int32
        m.encode_audio(batch.to(dtype), lens)
    model.to(torch.float32)
    tensors, order = cap.tensors, list(cap.order)
    if not with_qk:  # [B, heads, 1251, 1251] per layer is too large to commit for the 25 s chunk
        order = [k for k in order if not k.endswith(".qk")]
        tensors = {k: tensors[k] for k in order}
    return tensors, order


# Prompt ids of the official chat format (docs/model.md §6.2), tokenised by hand from vocab.json (the tokenizer issue checks
# these against an independent tokenizer): <|BOT|>system\nYou are a helpful assistant.<|EOT|><|BOT|>human\n …
BOT, EOT, AUDIO_START, AUDIO_END, AUDIO_PATCH = 151666, 151665, 151688, 151689, 151690
SYSTEM = [BOT, 8948, 198, 2610, 525, 264, 10950, 17847, 13, EOT]
INSTRUCTION = [5501, 13153, 1128, 498, 6723, 304, 6364, 25]  # "Please repeat what you hear in English:"
GREEDY_STEPS = 8


def build_prompt(mel_lens, instruction):
    ids = SYSTEM + [BOT, 25312, 198] + (INSTRUCTION if instruction else [])
    for n in mel_lens:
        ids += [AUDIO_START] + [AUDIO_PATCH] * audio.n_audio_tokens(n) + [AUDIO_END]
    return ids + [EOT, BOT, 77091, 198]


def run_llm(model, wav, instruction):
    """Full forward of the official prompt; captures model.* and lm_head.last, then a greedy continuation."""
    mels = [audio.log_mel_spectrogram(c) for c in audio.chunk_audio(wav)]
    batch, lens = audio.batch_mels(mels)
    ids = torch.tensor(build_prompt([m.shape[1] for m in mels], instruction), dtype=torch.int64)
    with ModuleDumper(model, ["input.*", "model.*", "lm_head.last", "output.*"]) as cap, torch.no_grad():
        cap.record("input.ids", ids)
        for i, mel in enumerate(mels):
            cap.record(f"input.mel.{i}", mel)
        cap.record("input.wav_lens", lens)
        logits = model(ids, batch, lens)  # [1, T, vocab]
    with torch.no_grad():
        cap.record("lm_head.last", logits[0, -1])
        seq = ids.tolist()
        greedy = []
        for _ in range(GREEDY_STEPS):  # the official runner recomputes the whole sequence every step (no KV cache)
            nxt = int(model(torch.tensor(seq), batch, lens)[0, -1].argmax())
            greedy.append(nxt)
            seq.append(nxt)
    cap.record("output.greedy_ids", torch.tensor(greedy, dtype=torch.int64))
    return cap.tensors, cap.order


def save_dump(tensors, order, path, note):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    safetensors_io.save_file(tensors, path, metadata={"steplab.order": json.dumps(order), "steplab.note": note})


def main():
    model = build_model()
    save_sharded(model)
    for name, wav, with_qk in clips():
        tensors, order = run_audio_path(model, wav, with_qk)
        save_dump(tensors, order, os.path.join(OUT, "dumps", f"audio-{name}.safetensors"),
                  f"reference audio path (float32), clip '{name}'")
        if name == "short":
            t64, _ = run_audio_path(model, wav, with_qk, dtype=torch.float64)
            save_dump(t64, order, os.path.join(OUT, "demo", "candidate-float64.safetensors"),
                      "independent float64 run of the same reference, cast to float32 (passes the f32 tier)")
            model.adapter.relu = torch.nn.GELU()  # the porting bug from docs/model.md §10: GELU where ReLU belongs
            bad, _ = run_audio_path(model, wav, with_qk)
            model.adapter.relu = torch.nn.ReLU()
            save_dump(bad, order, os.path.join(OUT, "demo", "candidate-gelu-adaptor.safetensors"),
                      "planted bug: adapter.relu replaced by GELU")
    short, long = clips()[0][1], clips()[1][1]
    for name, wav, instruction in (("short", short, False), ("instruction", short, True), ("two_chunks", long, False)):
        tensors, order = run_llm(model, wav, instruction)
        save_dump(tensors, order, os.path.join(OUT, "dumps", f"llm-{name}.safetensors"),
                  f"reference full forward (float32), case '{name}'")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
