"""Greedy ids of the tiny checkpoint's LLM cases in float32 and in bfloat16, written to tiny/bf16-greedy.json.

A bf16 run of a model may legitimately pick another token where the float32 logits' top two are closer than bf16
rounding moves them. This runs the project's PyTorch reference (steplab_ref, the official module tree) the way the
official code runs the model — every weight and activation in torch.bfloat16 — and records, per case, the float32 ids,
the float32 top-1 minus top-2 logit margin at each step, the bfloat16 ids and the first step where they differ. The GPU
runner holds a bf16 backend to: identical ids, or a first difference no earlier than PyTorch's own bf16 run's.
Usage: /usr/bin/python3 reference-data/make_bf16_greedy.py   (deterministic: the tiny model is rebuilt from its seed)
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny as mt  # noqa: E402
from steplab_ref import audio  # noqa: E402


def greedy(model, batch, lens, ids, dtype):
    seq, out, margins = list(ids), [], []
    with torch.no_grad():
        for _ in range(mt.GREEDY_STEPS):  # whole sequence every step, as the official runner and make_tiny.run_llm
            logits = model(torch.tensor(seq), batch.to(dtype), lens)[0, -1].float()
            top = logits.topk(2)
            out.append(int(top.indices[0]))
            margins.append(round(float(top.values[0] - top.values[1]), 6))
            seq.append(out[-1])
    return out, margins


def main():
    model = mt.build_model().eval()
    wav = mt.clips()[0][1]
    mels = [audio.log_mel_spectrogram(c) for c in audio.chunk_audio(wav)]
    batch, lens = audio.batch_mels(mels)
    cases = {}
    for name, instruction in (("llm-short", False), ("llm-instruction", True)):
        ids = mt.build_prompt([m.shape[1] for m in mels], instruction)
        f32, margins = greedy(model.float(), batch, lens, ids, torch.float32)
        bf16, _ = greedy(model.to(torch.bfloat16), batch, lens, ids, torch.bfloat16)
        first = next((i for i, (a, b) in enumerate(zip(f32, bf16)) if a != b), None)
        cases[name] = {"float32_ids": f32, "float32_top2_margins": margins, "bfloat16_ids": bf16, "bfloat16_first_difference": first}
        print(name, cases[name], flush=True)
    model.float()
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tiny", "bf16-greedy.json")
    with open(out, "w") as f:
        json.dump({"note": "PyTorch reference (steplab_ref) greedy ids, float32 vs all-bfloat16; see make_bf16_greedy.py",
                   "torch": torch.__version__, "cases": cases}, f, indent=1)


if __name__ == "__main__":
    main()
