#!/usr/bin/python3
"""Merges the C# (StepAudio2.Lab.Bench) and PyTorch (torch_bench.py) results into one JSON and prints the comparison.

Several rounds of each side may be given (run.sh alternates them so both see the same background load); per entry and
side the round with the lowest median wall time is kept, since load from other processes only ever adds time.
speed ratio = torch_ms / ours_ms (> 1: ours is faster). cpu ratio is the same on process CPU time per call, which
time-slicing by other processes does not inflate.

Usage: merge_results.py OUT.json --ours a.json [b.json ...] --torch c.json [d.json ...]
"""
import json
import sys

F32_GEMM_TARGET = 0.8   # f32 GEMM at encoder shapes: at least 0.8x PyTorch+OpenBLAS speed
GEMV_BW_TARGET = 0.7    # bf16 GEMV: at least 70% of the measured streaming read bandwidth


def best(runs, key):
    by_name = {}
    for r in runs:
        for e in r["entries"]:
            cur = by_name.get(e["name"])
            if cur is None or e[key] < cur[key]:
                by_name[e["name"]] = e
    return by_name


def main(argv):
    out = argv[1]
    ours_files, torch_files, dest = [], [], None
    for a in argv[2:]:
        if a == "--ours":
            dest = ours_files
        elif a == "--torch":
            dest = torch_files
        else:
            dest.append(a)
    ours_runs = [json.load(open(f)) for f in ours_files]
    torch_runs = [json.load(open(f)) for f in torch_files]
    ours = best(ours_runs, "ours_ms")  # bw_fraction comes with the kept round's entry
    torch = best(torch_runs, "torch_ms")
    stream = max(r["stream_read_gbps"] for r in ours_runs)
    stream1 = max(r["stream_read_1thread_gbps"] for r in ours_runs)

    entries = []
    for name, o in ours.items():
        t = torch.get(name)
        e = {
            "name": name, "op": o["op"], "shape": o["shape"],
            "ours_ms": o["ours_ms"], "torch_ms": t["torch_ms"] if t else None,
            "ratio": round(t["torch_ms"] / o["ours_ms"], 3) if t else None,
            "ours_cpu_ms": o["ours_cpu_ms"], "torch_cpu_ms": t["torch_cpu_ms"] if t else None,
            "cpu_ratio": round(t["torch_cpu_ms"] / o["ours_cpu_ms"], 3) if t else None,
            "gflops": o["gflops"], "gbps": o["gbps"],
            "torch_gflops": t["torch_gflops"] if t else None, "torch_gbps": t["torch_gbps"] if t else None,
            "weight_bytes": o["weight_bytes"],
        }
        if "bw_fraction" in o:
            # Measured in alternating (GEMV, streaming pass) pairs within the C# run: robust to load drifting.
            e["bw_fraction"] = o["bw_fraction"]
            e["paired_stream_gbps"] = o["paired_stream_gbps"]
        if o["op"] == "bf16_nt":
            e["torch_reference"] = "float32 weights, same shape"
        entries.append(e)

    machine = dict(ours_runs[0]["machine"])
    if torch_runs:
        machine["torch"] = torch_runs[0]["machine"]
    merged = {
        "machine": machine,
        "rounds": {"ours": len(ours_runs), "torch": len(torch_runs)},
        "stream_read_gbps": stream,
        "stream_read_1thread_gbps": stream1,
        "entries": entries,
    }
    with open(out, "w") as f:
        json.dump(merged, f, indent=2)
        f.write("\n")

    print(f"streaming read bandwidth: {stream:.1f} GB/s ({machine['threads']} threads), {stream1:.1f} GB/s (1 thread)")
    print(f"load average at start: {machine.get('loadavg_at_start', '?')}")
    hdr = f"{'case':<26} {'m x n x k':>20} {'ours ms':>9} {'torch ms':>9} {'speed':>6} {'cpu':>6} {'GFLOP/s':>8} {'GB/s':>6} {'%BW':>5}"
    print(hdr)
    print("-" * len(hdr))
    for e in entries:
        m, n, k = e["shape"]
        ratio = f"{e['ratio']:.2f}" if e["ratio"] is not None else "-"
        cpu = f"{e['cpu_ratio']:.2f}" if e["cpu_ratio"] is not None else "-"
        bw = f"{100 * e['bw_fraction']:.0f}" if "bw_fraction" in e else ""
        torch_ms = f"{e['torch_ms']:.3f}" if e["torch_ms"] is not None else "-"
        print(f"{e['name']:<26} {f'{m}x{n}x{k}':>20} {e['ours_ms']:9.3f} {torch_ms:>9} {ratio:>6} {cpu:>6} "
              f"{e['gflops']:8.1f} {e['gbps']:6.1f} {bw:>5}")
    print("speed = torch_ms / ours_ms (> 1: ours faster); cpu = the same on CPU time per call; "
          "bf16 rows compare with torch on f32 weights of the same shape")

    ok = True
    for e in entries:
        if e["op"] == "f32_nt" and e["shape"][0] > 4 and e["ratio"] is not None:
            good = e["ratio"] >= F32_GEMM_TARGET
            ok &= good
            print(f"[{'PASS' if good else 'MISS'}] f32 GEMM {e['name']}: {e['ratio']:.2f}x torch (target >= {F32_GEMM_TARGET})")
        if e["op"] == "bf16_nt" and "bw_fraction" in e:
            good = e["bw_fraction"] >= GEMV_BW_TARGET
            ok &= good
            print(f"[{'PASS' if good else 'MISS'}] bf16 GEMV {e['name']}: {100 * e['bw_fraction']:.0f}% of streaming bandwidth "
                  f"(target >= {100 * GEMV_BW_TARGET:.0f}%)")
    print(f"wrote {out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
