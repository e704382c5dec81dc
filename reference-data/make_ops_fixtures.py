#!/usr/bin/python3
"""Op-level fixtures for the engine: inputs and PyTorch outputs for every op the model uses (odd sizes, strided inputs).

Writes fixtures/ops/ops.safetensors: for case NAME, tensors `NAME.in.*` (inputs), `NAME.out` (PyTorch's float32 result)
and metadata `NAME` = JSON of the op's parameters. Deterministic (fixed seed).
"""
import json
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from steplab_ref import safetensors_io  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "ops")


def bf16_exact(t):
    return t.to(torch.bfloat16).to(torch.float32)


def main():
    g = torch.Generator().manual_seed(1234)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    tensors, meta = {}, {}

    def case(name, params, inputs, out):
        meta[name] = json.dumps(params)
        for k, v in inputs.items():
            tensors[f"{name}.in.{k}"] = v.contiguous()
        tensors[f"{name}.out"] = out.contiguous()

    # linear: f32 weight, bf16 weight (stored bf16, math on its f32 value), odd sizes
    x, w, b = r(3, 7, 13), r(11, 13), r(11)
    case("linear_f32", {}, {"x": x, "weight": w, "bias": b}, F.linear(x, w, b))
    wb, bb16 = bf16_exact(r(9, 13)), r(9)
    case("linear_bf16", {}, {"x": x, "weight": wb.to(torch.bfloat16), "bias": bb16}, F.linear(x, wb, bb16))
    # matmul batched
    a, bb = r(2, 5, 7), r(2, 7, 3)
    case("matmul", {}, {"a": a, "b": bb}, a @ bb)
    # conv1d variants
    x = r(2, 6, 17)
    for name, (cout, k, s, p, d, gr) in {
        "conv1d_basic": (5, 3, 1, 1, 1, 1), "conv1d_stride2": (4, 3, 2, 1, 1, 1), "conv1d_dilated": (6, 3, 1, 3, 3, 1),
        "conv1d_groups": (6, 5, 1, 2, 1, 3), "conv1d_depthwise": (6, 7, 1, 3, 1, 6), "conv1d_k30s15": (4, 30, 15, 7, 1, 1),
    }.items():
        xin = r(2, 6, 64) if name == "conv1d_k30s15" else x
        wc, bc = r(cout, 6 // gr, k), r(cout)
        case(name, {"stride": s, "padding": p, "dilation": d, "groups": gr}, {"x": xin, "weight": wc, "bias": bc},
             F.conv1d(xin, wc, bc, s, p, d, gr))
    # conv_transpose1d as HiFT's upsamplers (k 16 s 8 p 4, k 11 s 5 p 3)
    for name, (cin, cout, k, s, p) in {"conv_transpose1d_a": (6, 4, 16, 8, 4), "conv_transpose1d_b": (4, 3, 11, 5, 3)}.items():
        xin, wt, bt = r(1, cin, 9), r(cin, cout, k), r(cout)
        case(name, {"stride": s, "padding": p}, {"x": xin, "weight": wt, "bias": bt}, F.conv_transpose1d(xin, wt, bt, s, p))
    # avg_pool1d odd length
    x = r(2, 3, 11)
    case("avg_pool1d", {"kernel": 2, "stride": 2}, {"x": x}, F.avg_pool1d(x, 2, 2))
    # norms
    x = r(4, 5, 37) * 3 + 1
    w, b = r(37), r(37)
    case("layer_norm", {"eps": 1e-5}, {"x": x, "weight": w, "bias": b}, F.layer_norm(x, (37,), w, b, 1e-5))
    case("layer_norm_noaffine", {"eps": 1e-6}, {"x": x}, F.layer_norm(x, (37,), None, None, 1e-6))
    ms = x.pow(2).mean(-1, keepdim=True)
    case("rms_norm", {"eps": 1e-6}, {"x": x, "weight": w}, w * (x * torch.rsqrt(ms + 1e-6)))
    # activations over a wide range
    x = torch.linspace(-12, 12, 1001) + 0.001 * r(1001)
    case("gelu", {}, {"x": x}, F.gelu(x))
    case("gelu_tanh", {}, {"x": x}, F.gelu(x, approximate="tanh"))
    case("silu", {}, {"x": x}, F.silu(x))
    case("relu", {}, {"x": x}, F.relu(x))
    case("mish", {}, {"x": x}, F.mish(x))
    case("elu", {"alpha": 1.0}, {"x": x}, F.elu(x))
    case("leaky_relu", {"slope": 0.1}, {"x": x}, F.leaky_relu(x, 0.1))
    case("tanh", {}, {"x": x}, torch.tanh(x))
    # softmax with masked entries
    x = r(3, 4, 19)
    x[..., 5] = -1e10
    case("softmax", {}, {"x": x}, F.softmax(x, dim=-1))
    # attention: grouped KV heads, additive key mask, causal
    q, k, v = r(2, 6, 5, 8), r(2, 2, 7, 8), r(2, 2, 7, 8)
    mask = torch.zeros(2, 1, 1, 7)
    mask[1, ..., 5:] = -1e10
    kr, vr = k.repeat_interleave(3, dim=1), v.repeat_interleave(3, dim=1)
    scores = (q @ kr.transpose(-1, -2)) * 0.35 + mask
    case("sdpa_gqa_mask", {"scale": 0.35}, {"q": q, "k": k, "v": v, "mask": mask},
         F.softmax(scores, -1) @ vr)
    tensors["sdpa_gqa_mask.scores"] = scores.contiguous()
    causal = torch.full((5, 7), float("-inf")).triu(1 + 2)
    case("sdpa_causal", {"scale": 0.35}, {"q": q, "k": k, "v": v}, F.softmax((q @ kr.transpose(-1, -2)) * 0.35 + causal, -1) @ vr)
    # embedding from a bf16 table
    table = bf16_exact(r(50, 6))
    ids = torch.tensor([3, 0, 49, 3, 17], dtype=torch.int64)
    case("take", {}, {"table": table.to(torch.bfloat16), "ids": ids}, table[ids])
    # pad: constant and reflect (STFT-style), replicate
    x = r(2, 3, 10)
    case("pad_reflect", {"pads": [[0, 0], [0, 0], [4, 3]], "mode": "reflect"}, {"x": x}, F.pad(x, (4, 3), mode="reflect"))
    case("pad_constant", {"pads": [[0, 0], [1, 2], [2, 0]], "mode": "constant", "value": 0.5}, {"x": x}, F.pad(x, (2, 0, 1, 2), value=0.5))
    case("pad_replicate", {"pads": [[0, 0], [0, 0], [0, 5]], "mode": "replicate"}, {"x": x}, F.pad(x, (0, 5), mode="replicate"))
    # concatenate, broadcasting element-wise, reductions on a strided (transposed) input
    a, bb = r(2, 3, 4), r(2, 5, 4)
    case("concatenate", {"axis": 1}, {"a": a, "b": bb}, torch.cat([a, bb], 1))
    a, bb = r(2, 3, 4), r(3, 1)
    case("add_broadcast", {}, {"a": a, "b": bb}, a + bb)
    case("mul_broadcast", {}, {"a": a, "b": bb}, a * bb)
    base = r(6, 4)
    case("sum_axis0_of_transposed", {"axis": 0}, {"x": base}, base.t().sum(0))
    case("mean_axis1", {"axis": 1}, {"x": a}, a.mean(1))
    case("max_axis2", {"axis": 2}, {"x": a}, a.amax(2))
    logits = r(3, 40)
    logits[1, 7] = logits[1, 30] = 100.0  # tie: first index wins
    case("argmax", {}, {"x": logits}, logits.argmax(-1))
    vals, idx = logits[0].topk(5)
    case("topk", {"k": 5}, {"x": logits[0]}, vals)
    tensors["topk.indices"] = idx

    os.makedirs(OUT, exist_ok=True)
    safetensors_io.save_file(tensors, os.path.join(OUT, "ops.safetensors"), metadata=dict(sorted(meta.items())))
    print(f"wrote {len(meta)} cases to {OUT}")


if __name__ == "__main__":
    main()
