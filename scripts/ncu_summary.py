#!/usr/bin/env python3
"""Sums an Nsight Compute CSV (--metrics gpu__time_duration.sum --csv) by kernel: time, calls, share, per step.

Usage: ncu_summary.py NCU.csv STEPS [TITLE]   (STEPS: how many decoding steps the profiled range held)
"""
import csv, sys
from collections import defaultdict

path, steps = sys.argv[1], int(sys.argv[2])
title = sys.argv[3] if len(sys.argv) > 3 else path
scale = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}
total, calls = defaultdict(float), defaultdict(int)
with open(path, newline="") as f:
    lines = [l for l in f if l.startswith('"')]  # ncu's own messages (==PROF== …) are not CSV rows
for row in csv.DictReader(lines):
    if row.get("Metric Name") != "gpu__time_duration.sum":
        continue
    name = row["Kernel Name"].split("(")[0][:90]
    total[name] += float(row["Metric Value"].replace(",", "")) * scale.get(row["Metric Unit"], 1.0)
    calls[name] += 1
all_us = sum(total.values())
print(f"{title}: {sum(calls.values())} kernels in {steps} decoding steps, {all_us / steps / 1000:.3f} ms of GPU time per step "
      "(kernels one at a time under ncu, caches flushed before each: no launch gaps, small kernels pay cold caches)")
print(f"{'us/step':>10} {'calls/step':>10} {'share':>6}  kernel")
for name, us in sorted(total.items(), key=lambda kv: -kv[1]):
    print(f"{us / steps:10.1f} {calls[name] / steps:10.1f} {100 * us / all_us:5.1f}%  {name}")
