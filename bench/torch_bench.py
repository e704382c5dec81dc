#!/usr/bin/python3
"""PyTorch (+ OpenBLAS) side of the GEMM benchmark: the shapes of bench/shapes.json with torch.nn.functional.linear in
float32 on 2 threads. bf16-weight cases are timed with float32 weights of the same shape (torch 1.13's CPU bf16 linear
is not a fair BLAS reference), so for them the comparison point is an f32 GEMV reading twice the bytes; the C# side
reports its own fraction of the measured streaming bandwidth. Timing matches the C# harness: warm-up, then enough runs
for ~0.6 s (5..200), median; m <= 4 weights cycle through copies totalling >= 384 MiB so they come from DRAM.

Usage: /usr/bin/python3 bench/torch_bench.py [--shapes bench/shapes.json] [--threads 2] [--only substring] > torch.json
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

COLD_BYTES = 384 << 20


def timed(fn):
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1e3
    for _ in range(1 if first > 100 else 3):
        fn()
    t0 = time.perf_counter()
    fn()
    est = (time.perf_counter() - t0) * 1e3
    runs = min(200, max(5, int(600 / max(est, 1e-3))))
    times = []
    cpu0 = time.process_time()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    cpu_ms = (time.process_time() - cpu0) * 1e3 / runs
    times.sort()
    return times[runs // 2], times[0], cpu_ms, runs


def blas_core():
    # OpenBLAS reports the kernel family it picked for this CPU (e.g. Haswell) through openblas_get_corename.
    try:
        import ctypes
        import ctypes.util
        for name in ("libopenblas.so.0", ctypes.util.find_library("openblas") or ""):
            if not name:
                continue
            try:
                lib = ctypes.CDLL(name)
                lib.openblas_get_corename.restype = ctypes.c_char_p
                lib.openblas_get_config.restype = ctypes.c_char_p
                return lib.openblas_get_corename().decode(), lib.openblas_get_config().decode()
            except OSError:
                continue
    except Exception:  # noqa: BLE001 - informational only
        pass
    return None, None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--shapes", default=os.path.join(here, "shapes.json"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.shapes) as f:
        cases = json.load(f)["cases"]
    if args.only:
        cases = [c for c in cases if args.only.lower() in c["name"].lower()]

    core, config = blas_core()
    started = time.perf_counter()
    entries = []
    with torch.no_grad():
        for c in cases:
            m, n, k = c["m"], c["n"], c["k"]
            wbytes = n * k * 4
            copies = max(1, -(-COLD_BYTES // wbytes)) if m <= 4 else 1
            a = torch.rand(m, k) * 2 - 1
            bias = torch.rand(n) * 2 - 1
            ws = [torch.empty(n, k).uniform_(-1, 1) for _ in range(copies)]
            out = torch.empty(m, n)
            state = {"i": 0}

            def once():
                w = ws[state["i"] % copies]
                state["i"] += 1
                torch.addmm(bias, a, w.t(), out=out)  # what F.linear does for 2-D input, minus the output allocation

            # Sanity: the addmm form is exactly F.linear.
            assert torch.equal(F.linear(a, ws[0], bias), torch.addmm(bias, a, ws[0].t()))
            med, mn, cpu, runs = timed(once)
            traffic = wbytes + 4 * m * k + 4 * m * n
            entries.append({
                "name": c["name"], "op": c["op"], "shape": [m, n, k],
                "torch_ms": round(med, 4), "torch_min_ms": round(mn, 4), "torch_cpu_ms": round(cpu, 4), "torch_runs": runs,
                "torch_weight_dtype": "float32",
                "torch_gflops": round(2.0 * m * n * k / (med * 1e6), 2),
                "torch_gbps": round(traffic / (med * 1e6), 2),
            })
            print(f"{c['name']:<28} {m:6}x{n:6}x{k:6}  {med:9.3f} ms (cpu {cpu:9.3f} ms)", file=sys.stderr)
            del ws, a, bias, out

    json.dump({
        "machine": {
            "torch": torch.__version__, "threads": torch.get_num_threads(), "blas_core": core, "blas_config": config,
            "python": platform.python_version(),
            "loadavg_at_start": open("/proc/loadavg").read().strip() if os.path.exists("/proc/loadavg") else "",
        },
        "entries": entries,
        "bench_seconds": round(time.perf_counter() - started, 1),
    }, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
