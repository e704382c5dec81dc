#!/usr/bin/env python3
"""Dumps what the OFFICIAL Step-Audio 2 mini computes, for `steplab compare` / `steplab report --reference`.

Needs the real checkpoint folder (Hugging Face `stepfun-ai/Step-Audio-2-mini`, with its remote code
`modeling_step_audio_2.py`), PyTorch, torchaudio, librosa and transformers 4.49.0 (the version the official repository
pins; another version is used with a warning). Run it with the Python that has them (a venv, not necessarily the
system `python3`):

    python dump_official.py --model Step-Audio-2-mini --audio clip.wav --out official.safetensors \\
        [--system TEXT] [--greedy N] [--capture GLOB ...] [--dtype float32|bfloat16] [--device cpu|cuda]

What it records, exactly as the official model sees and returns it (docs/parity.md lists every path):
* `input.wav` (the 16 kHz waveform after the official `load_audio`), `input.mel.N` [128, L] per 25 s chunk (the
  modeling file's `log_mel_spectrogram`, padding 479), `input.wav_lens` = the forward's `wav_lens` argument: per chunk
  L − 2, int32 (the official `padding_mels`), `input.ids` [T] (the prompt of the official chat format:
  system turn, human turn with the audio placeholders, `<|BOT|>assistant\\n`);
* every module's output under its module path from forward hooks; a module returning a tuple is recorded by its
  first element (LLM activations are batch-first [1, T, C]; `model.rotary_emb` is cos [1, T, head_dim]);
* `encoder.blocks.N.attn.qk`: the encoder attention's second return value, the masked pre-softmax scores in float32
  [B, heads, T, T]. The LLM attention exposes no scores (the default sdpa path returns None): none are recorded;
* `lm_head.last` = logits of the last prompt position [vocab] (the full `lm_head` [1, T, vocab] only with
  `--capture lm_head`); with `--greedy N`, `output.greedy_ids`: N greedy ids, each from a full forward of the
  sequence so far (as the official runner, which keeps no KV cache).
`--dtype float32` (default) runs the encoder, adaptor and LLM in float32 (the official class would otherwise cast the
audio path to bf16 when the checkpoint says bfloat16); compare such a dump with the default rules. `bfloat16` is the
official inference precision; compare with `--tier bf16`.

`--standin` runs the same dumper on `steplab_ref.official_standin` (the official module tree and return conventions on
our reference modules) with a tiny checkpoint: how the test suite checks this script without the real weights.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref.dumper import ModuleDumper  # noqa: E402

PINNED_TRANSFORMERS = "4.49.0"
CHUNK = 16000 * 25


def padding_mels(mels):
    """The official `padding_mels`: zero-padded batch [B, 128, T_max] and lengths L − 2 as int32."""
    lengths = torch.tensor([m.shape[1] - 2 for m in mels], dtype=torch.int32)
    batch = torch.zeros(len(mels), mels[0].shape[0], max(m.shape[1] for m in mels), dtype=mels[0].dtype)
    for i, m in enumerate(mels):
        batch[i, :, :m.shape[1]] = m
    return batch, lengths


def compute_token_num(mel_len):
    """<audio_patch> placeholders for a chunk of L mel frames (the official compute_token_num)."""
    e = ((mel_len - 2) + 1) // 2 // 2
    return (e + 2 * 1 - 3) // 2 + 1


def load_official(model_dir, dtype, device):
    """The official model, tokenizer and audio functions (load_audio, log_mel_spectrogram) of the remote code."""
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer
    if transformers.__version__ != PINNED_TRANSFORMERS:
        print(f"warning: transformers {transformers.__version__}; the official code pins {PINNED_TRANSFORMERS}", file=sys.stderr)
    tok = AutoTokenizer.from_pretrained(model_dir, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(model_dir, trust_remote_code=True, torch_dtype=dtype).eval()
    if dtype == torch.float32:
        # the official __init__ casts encoder/adapter to bf16 when config.torch_dtype says bfloat16; undo for an f32 dump
        model.bf16 = False
        model.float()
    modeling = sys.modules[type(model).__module__]  # the remote code module: its own audio functions
    return model.to(device), tok.encode, modeling.load_audio, modeling.log_mel_spectrogram


def load_standin(model_dir, tokenizer_dir, dtype, device):
    from steplab_ref import audio, official_standin
    model = official_standin.from_pretrained(model_dir, dtype).to(device)
    tok = official_standin.StandinTokenizer(tokenizer_dir or model_dir)

    def log_mel(x, n_mels=128, padding=479):
        assert n_mels == 128 and padding == 479
        return audio.log_mel_spectrogram(x)

    return model, tok.encode, audio.load_audio_16k, log_mel


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--audio", action="append", required=True)
    ap.add_argument("--system", default="You are a helpful assistant.")
    ap.add_argument("--greedy", type=int, default=0)
    ap.add_argument("--capture", action="append", help="module-path globs to keep (default: all but the full lm_head)")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--standin", action="store_true", help="use steplab_ref.official_standin (tests; tiny checkpoints)")
    ap.add_argument("--tokenizer", help="with --standin: folder with tokenizer_config.json (default: --model)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    dtype = getattr(torch, args.dtype)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    if args.standin:
        model, encode, load_audio, log_mel = load_standin(args.model, args.tokenizer, dtype, device)
    else:
        model, encode, load_audio, log_mel = load_official(args.model, dtype, device)

    wavs = [load_audio(p) for p in args.audio]
    mels = [log_mel(w[i:i + CHUNK], n_mels=128, padding=479) for w in wavs for i in range(0, w.shape[0], CHUNK)]
    batch, wav_lens = padding_mels(mels)
    ids = encode(f"<|BOT|>system\n{args.system}<|EOT|>") + encode("<|BOT|>human\n")
    for m in mels:
        ids += encode("<audio_start>" + "<audio_patch>" * compute_token_num(m.shape[1]) + "<audio_end>")
    ids += encode("<|EOT|>") + encode("<|BOT|>assistant\n")
    input_ids = torch.tensor([ids], device=device)
    wavs_in, lens_in = batch.to(device, dtype), wav_lens.to(device)

    capture = args.capture
    with ModuleDumper(model, capture, exclude=None if capture else ["lm_head"]) as d, torch.no_grad():
        if len(wavs) == 1:
            d.record("input.wav", wavs[0])
        d.record("input.ids", torch.tensor(ids))
        for i, m in enumerate(mels):
            d.record(f"input.mel.{i}", m)
        d.record("input.wav_lens", wav_lens)
        logits = model(input_ids=input_ids, wavs=wavs_in, wav_lens=lens_in).logits
        d.record("lm_head.last", logits[0, -1].float())
    if args.greedy > 0:
        seq, greedy = list(ids), []
        with torch.no_grad():
            for _ in range(args.greedy):
                nxt = int(model(input_ids=torch.tensor([seq], device=device), wavs=wavs_in, wav_lens=lens_in).logits[0, -1].argmax())
                greedy.append(nxt)
                seq.append(nxt)
        d.record("output.greedy_ids", torch.tensor(greedy, dtype=torch.int64))
    kind = "stand-in (steplab_ref.official_standin)" if args.standin else "official Step-Audio 2 mini"
    d.save(args.out, note=f"dump_official.py: {kind}, {args.dtype}, audio {', '.join(os.path.basename(a) for a in args.audio)}")
    print(f"wrote {len(d.order)} tensors to {args.out}")


if __name__ == "__main__":
    main()
