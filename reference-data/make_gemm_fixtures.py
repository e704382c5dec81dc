#!/usr/bin/python3
"""Writes reference-data/fixtures/gemm/: small GEMM cases computed by PyTorch in float32, for the C# Gemm tests.

Each case stores A, B (float32, or bfloat16 bits as uint16), optional bias, and C = torch's float32 result, as raw
little-endian .bin files, described by manifest.json. bf16 weights are made by rounding float32 randoms with torch's
own .to(torch.bfloat16), and C uses exactly those rounded values widened back to float32.

Deterministic: fixed seed, one thread (so OpenBLAS's summation order is fixed); re-running reproduces the files
bit-identically on the same machine.  Usage: /usr/bin/python3 reference-data/make_gemm_fixtures.py
"""
import json
import os

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "gemm")

# (name, op, m, n, k, bias): op "nt" = F.linear(A, B, bias) with B [n,k]; "nn" = A @ B with B [k,n];
# "bf16_nt" = F.linear with B held as bf16. Sizes cover the GEMV path (m <= 4), the blocked path, tails of the
# 6x16 tile and of the 8-wide vectors, and k larger than one 256-deep block.
CASES = [
    ("nt_gemv_m1", "nt", 1, 37, 70, True),
    ("nt_gemm_tails", "nt", 13, 35, 300, True),
    ("nn_gemm_tails", "nn", 11, 29, 45, False),
    ("nn_gemv_m3", "nn", 3, 40, 33, False),
    ("bf16_gemv_m2", "bf16_nt", 2, 19, 129, True),
    ("bf16_gemm", "bf16_nt", 17, 33, 270, False),
]


def write(name, tensor):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        f.write(tensor.contiguous().numpy().tobytes())
    return name


def main():
    torch.manual_seed(20240611)
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    manifest = {"generator": "reference-data/make_gemm_fixtures.py", "torch": torch.__version__, "cases": []}
    for name, op, m, n, k, has_bias in CASES:
        a = torch.randn(m, k, dtype=torch.float32)
        bias = torch.randn(n, dtype=torch.float32) if has_bias else None
        entry = {"name": name, "op": op, "m": m, "n": n, "k": k}
        if op == "nn":
            b = torch.randn(k, n, dtype=torch.float32)
            c = torch.matmul(a, b)
            entry["b"] = write(f"{name}.b.f32.bin", b)
        elif op == "nt":
            b = torch.randn(n, k, dtype=torch.float32)
            c = F.linear(a, b, bias)
            entry["b"] = write(f"{name}.b.f32.bin", b)
        else:
            b16 = torch.randn(n, k, dtype=torch.float32).to(torch.bfloat16)
            c = F.linear(a, b16.to(torch.float32), bias)
            entry["b"] = write(f"{name}.b.bf16.bin", b16.view(torch.int16))
        entry["a"] = write(f"{name}.a.f32.bin", a)
        entry["bias"] = write(f"{name}.bias.f32.bin", bias) if bias is not None else None
        entry["c"] = write(f"{name}.c.f32.bin", c)
        manifest["cases"].append(entry)
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
