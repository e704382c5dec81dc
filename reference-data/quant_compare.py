#!/usr/bin/python3
"""Independent check of `steplab compare --quantization` (issue 15): reads a candidate trace (quantized checkpoint)
and a reference trace (float checkpoint) of the same inputs and prints, as JSON on stdout,

* `kl`: KL(p_ref || p_cand) in nats at every prompt position of the full logits `lm_head` ([T, V] or [1, T, V]),
  through torch's `kl_div` on float64 log-softmaxes (log_target), i.e. a formulation other than the C# loop;
* `reference_top1`, `candidate_top1`: torch.argmax of each row;
* `first_divergence`: the first step where `output.greedy_ids` differ (null when identical);
* `rel_l2`: {name: ||cand - ref|| / ||ref||} for every float tensor of both dumps with equal element counts
  (inputs and outputs excluded), in float64.

usage: quant_compare.py CANDIDATE REFERENCE   (run with Debian's /usr/bin/python3: torch 1.13, numpy)
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref.safetensors_io import load_file  # noqa: E402


def main(cand_path, ref_path):
    cand, ref = load_file(cand_path), load_file(ref_path)
    out = {}
    a = cand["lm_head"].to(torch.float64)
    b = ref["lm_head"].to(torch.float64)
    a = a.reshape(a.shape[-2], a.shape[-1])
    b = b.reshape(b.shape[-2], b.shape[-1])
    la, lb = F.log_softmax(a, dim=-1), F.log_softmax(b, dim=-1)
    kl = F.kl_div(la, lb, reduction="none", log_target=True).sum(dim=-1)
    out["kl"] = kl.tolist()
    out["reference_top1"] = b.argmax(dim=-1).tolist()
    out["candidate_top1"] = a.argmax(dim=-1).tolist()
    ga, gb = cand["output.greedy_ids"].tolist(), ref["output.greedy_ids"].tolist()
    first = next((i for i, (x, y) in enumerate(zip(ga, gb)) if x != y), None)
    if first is None and len(ga) != len(gb):
        first = min(len(ga), len(gb))
    out["first_divergence"] = first
    rel = {}
    for name, t in ref.items():
        if name.startswith(("input.", "output.")) or name not in cand or not torch.is_tensor(t) or not t.is_floating_point():
            continue
        c = cand[name]
        if c.numel() != t.numel():
            continue
        d = (c.to(torch.float64).flatten() - t.to(torch.float64).flatten()).norm()
        n = t.to(torch.float64).norm()
        rel[name] = (d / n).item() if n > 0 else (0.0 if d == 0 else float("inf"))
    out["rel_l2"] = rel
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
