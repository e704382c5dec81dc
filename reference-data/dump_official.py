#!/usr/bin/env python3
"""Dump module outputs of the OFFICIAL Step-Audio 2 mini for `steplab compare` (needs the real weights and the
official code: https://huggingface.co/stepfun-ai/Step-Audio-2-mini with trust_remote_code, transformers 4.49).

    python3 dump_official.py --model /path/Step-Audio-2-mini --audio clip.wav --out official.safetensors \
        [--capture 'encoder.*' --capture 'adapter*'] [--dtype float32]

It builds the same prompt as `steplab trace` (system turn, human turn with the audio, `<|BOT|>assistant\\n`), runs one
forward pass with forward hooks on every module (names = official module paths), and writes the dump with the inputs
under input.* (input.ids, input.mel.N, input.wav_lens). Run it in float32 for a tight comparison (spec §9).
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import audio  # noqa: E402
from steplab_ref.dumper import ModuleDumper  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--audio", action="append", required=True)
    ap.add_argument("--system", default="You are a helpful assistant.")
    ap.add_argument("--capture", action="append")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from transformers import AutoModelForCausalLM, AutoTokenizer  # the official remote code
    dtype = getattr(torch, args.dtype)
    tok = AutoTokenizer.from_pretrained(args.model, trust_remote_code=True)
    model = AutoModelForCausalLM.from_pretrained(args.model, trust_remote_code=True, torch_dtype=dtype).eval()

    mels, wav_lens = [], []
    for path in args.audio:
        for chunk in audio.chunk_audio(audio.load_audio_16k(path)):
            mels.append(audio.log_mel_spectrogram(chunk))
            wav_lens.append(len(chunk))
    ids = tok.encode(f"<|BOT|>system\n{args.system}<|EOT|>") + tok.encode("<|BOT|>human\n")
    for m in mels:
        ids += tok.encode("<audio_start>" + "<audio_patch>" * audio.n_audio_tokens(m.shape[1]) + "<audio_end>")
    ids += tok.encode("<|EOT|>") + tok.encode("<|BOT|>assistant\n")
    batch, lens = audio.batch_mels(mels)
    input_ids = torch.tensor([ids])

    with ModuleDumper(model, args.capture) as d, torch.no_grad():
        d.record("input.ids", torch.tensor(ids))
        for i, m in enumerate(mels):
            d.record(f"input.mel.{i}", m)
        d.record("input.wav_lens", torch.tensor(wav_lens))
        out = model(input_ids=input_ids, wavs=batch.to(dtype), wav_lens=lens)
        d.record("lm_head.last", out.logits[0, -1].float())
    d.save(args.out, note=f"official Step-Audio 2 mini ({args.dtype}), audio {args.audio}")
    print(f"wrote {len(d.order)} tensors to {args.out}")


if __name__ == "__main__":
    main()
