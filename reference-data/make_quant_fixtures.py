#!/usr/bin/python3
"""Quantization fixtures (issue 15), from steplab_ref/quant.py, an independent numpy implementation of MLX's affine
quantizer (run with Debian's /usr/bin/python3; deterministic, re-running rewrites identical bytes).

* fixtures/quant/affine-{f32,bf16}.safetensors: `input` [8, 256] (awkward rows: wide and narrow ranges, a constant
  row, values below the 1e-7 step floor, a |min| = |max| tie, one-signed groups) and for every bits in 2,3,4,5,6,8
  and group size in 32,64,128: `b{bits}.g{gs}.weight` (U32), `.scales`, `.biases` (input dtype) and `.dequant` (f32,
  scale*q + bias as a float32 product then a float32 sum).
* tiny-quant/: the tiny checkpoint (tiny/) quantized in MLX's layout with per-module overrides in config.json —
  default 4 bits / group 32 (embed_tokens included: it has `.scales`), layer 0 q_proj kept bf16 (`false`), k_proj 2
  bits, gate_proj 3 bits, up_proj 5 bits, layer 1 o_proj 6 bits, down_proj 8 bits / group 64, lm_head 8 bits —
  and tiny-quant/dumps/llm-short.safetensors: the reference full forward with every quantized weight dequantised to
  float32 (so a port's quantized forward must equal dequantise-then-f32 at every traced path).
"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import quant, safetensors_io  # noqa: E402
import make_tiny  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FIX = os.path.join(HERE, "fixtures", "quant")
TINY = os.path.join(HERE, "tiny")
OUT = os.path.join(HERE, "tiny-quant")


def fixture_input():
    g = torch.Generator().manual_seed(15)
    cols = 256
    rows = [
        torch.randn(cols, generator=g),
        0.02 * torch.randn(cols, generator=g),
        50.0 * torch.randn(cols, generator=g),
        torch.randn(cols, generator=g) ** 3,                       # heavy tails: the edge decides the grid
        torch.full((cols,), 0.5),                                 # constant: range 0, step floored to 1e-7
        1e-9 * torch.randn(cols, generator=g),                    # below the 1e-7 floor
        torch.linspace(-1.0, 1.0, cols).reshape(-1, 32).flip(1).reshape(-1),  # |min| == |max| in every group
        torch.cat([torch.rand(cols // 2, generator=g) + 1.0, -(torch.rand(cols // 2, generator=g) + 1.0)]),  # one-signed
    ]
    w = torch.stack(rows)
    w[4, 64:128] = 0.0  # an all-zero group
    return w


def scalar_check(w32: np.ndarray, bits: int, gs: int, packed: np.ndarray, scales: np.ndarray, biases: np.ndarray):
    """A second, scalar transcription of the algorithm for a few groups (catches vectorisation slips)."""
    f32 = np.float32
    n_bins = f32(2 ** bits - 1)
    codes = quant.unpack(packed, bits, w32.shape[1])
    for r in range(w32.shape[0]):
        for gi in (0, w32.shape[1] // gs - 1):
            grp = w32[r, gi * gs:(gi + 1) * gs]
            lo, hi = f32(np.inf), f32(-np.inf)
            for v in grp:
                lo, hi = min(lo, f32(v)), max(hi, f32(v))
            use_lo = abs(lo) > abs(hi)
            s = max(f32(f32(hi - lo) / n_bins), f32(1e-7))
            s = s if use_lo else f32(-s)
            e = lo if use_lo else hi
            q0 = f32(np.rint(f32(e / s)))
            b = f32(0)
            if q0 != 0:
                s, b = f32(e / q0), e
            for j, v in enumerate(grp):
                q = min(max(f32(np.rint(f32(f32(v - b) / s))), f32(0)), n_bins)
                assert codes[r, gi * gs + j] == int(q), (bits, gs, r, gi, j)
            assert np.float32(scales[r, gi]) == s and np.float32(biases[r, gi]) == b, (bits, gs, r, gi)


def make_fixtures():
    os.makedirs(FIX, exist_ok=True)
    base = fixture_input()
    for name, dtype in (("f32", torch.float32), ("bf16", torch.bfloat16)):
        w = base.to(dtype)
        out = {"input": w}
        for bits in quant.BITS:
            for gs in quant.GROUP_SIZES:
                packed, scales, biases = quant.quantize(w, bits, gs)
                if dtype == torch.float32:
                    scalar_check(w.numpy(), bits, gs, packed, scales.numpy(), biases.numpy())
                assert np.array_equal(quant.pack(quant.unpack(packed, bits, w.shape[1]), bits), packed)
                deq = quant.dequantize(packed, scales, biases, bits, gs)
                # sanity only: MLX's grid is anchored at the larger-magnitude end, so the far end may clamp by more
                # than half a step; no element is off by more than its group's range
                wg = w.to(torch.float32).reshape(w.shape[0], -1, gs)
                err = (deq.reshape(w.shape[0], -1, gs) - wg).abs().amax(2)
                assert bool((err <= (wg.amax(2) - wg.amin(2)) * 1.0001 + 2e-7).all()), (name, bits, gs)
                key = f"b{bits}.g{gs}"
                out[f"{key}.weight"] = packed
                out[f"{key}.scales"] = scales
                out[f"{key}.biases"] = biases
                out[f"{key}.dequant"] = deq
        safetensors_io.save_file(out, os.path.join(FIX, f"affine-{name}.safetensors"),
                                 metadata={"steplab.note": "MLX affine quantization, steplab_ref/quant.py"})


DEFAULT = {"group_size": 32, "bits": 4}
OVERRIDES = {
    "model.layers.0.self_attn.q_proj": False,
    "model.layers.0.self_attn.k_proj": {"group_size": 32, "bits": 2},
    "model.layers.0.mlp.gate_proj": {"group_size": 32, "bits": 3},
    "model.layers.0.mlp.up_proj": {"group_size": 32, "bits": 5},
    "model.layers.1.self_attn.o_proj": {"group_size": 32, "bits": 6},
    "model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 8},
    "lm_head": {"group_size": 32, "bits": 8},
}


def quantized_modules(state):
    """module path -> (bits, group_size) for every module of the tiny checkpoint we quantize."""
    mods = {}
    for k in state:
        if not k.endswith(".weight"):
            continue
        path = k[: -len(".weight")]
        linear = path.startswith("model.layers.") and (".self_attn." in path or ".mlp." in path)
        if not (linear or path in ("model.embed_tokens", "lm_head")):
            continue
        spec = OVERRIDES.get(path, DEFAULT)
        if spec is False:
            continue
        mods[path] = (spec["bits"], spec["group_size"])
    return mods


def make_tiny_quant():
    os.makedirs(os.path.join(OUT, "dumps"), exist_ok=True)
    index = json.load(open(os.path.join(TINY, "model.safetensors.index.json")))
    state = {}
    for shard in sorted(set(index["weight_map"].values())):
        state.update(safetensors_io.load_file(os.path.join(TINY, shard)))
    model = make_tiny.build_model()
    sd = model.state_dict()
    for k, v in state.items():  # the committed shards are the model the reference builds
        assert torch.equal(v.to(torch.float32), sd[k]), k

    mods = quantized_modules(state)
    out = {}
    for k, v in state.items():
        path = k[: -len(".weight")] if k.endswith(".weight") else None
        if path in mods:
            bits, gs = mods[path]
            packed, scales, biases = quant.quantize(v, bits, gs)
            out[path + ".weight"], out[path + ".scales"], out[path + ".biases"] = packed, scales, biases
            with torch.no_grad():  # the reference forward runs on the dequantised float32 weight
                sd_param = dict(model.named_parameters())[k]
                sd_param.copy_(quant.dequantize(packed, scales, biases, bits, gs))
        else:
            out[k] = v
    names = sorted(out)
    shards = [[n for n in names if n.startswith("model.layers.") or n.startswith("model.norm")],
              [n for n in names if not (n.startswith("model.layers.") or n.startswith("model.norm"))]]
    weight_map, total = {}, 0
    for i, group in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        safetensors_io.save_file({n: out[n] for n in group}, os.path.join(OUT, fname), metadata={"format": "mlx"})
        for n in group:
            weight_map[n] = fname
            total += len(safetensors_io.tensor_bytes(out[n]))
    with open(os.path.join(OUT, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}, f, indent=2)
        f.write("\n")
    q = dict(DEFAULT, mode="affine")
    q.update(OVERRIDES)
    config = dict(make_tiny.TINY_CONFIG, quantization=q, quantization_config=q)
    with open(os.path.join(OUT, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")

    short = make_tiny.clips()[0][1]
    tensors, order = make_tiny.run_llm(model, short, False)
    make_tiny.save_dump(tensors, order, os.path.join(OUT, "dumps", "llm-short.safetensors"),
                        "reference full forward (float32) on the dequantised weights of tiny-quant")


if __name__ == "__main__":
    make_fixtures()
    make_tiny_quant()
    print("wrote", FIX, "and", OUT)
