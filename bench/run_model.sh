#!/usr/bin/env bash
# Model-level benchmarks, ours and PyTorch side by side in one run: mel of 30 s, one full-size encoder block
# (1280-d, 1500 frames), and the full-size encoder (32 blocks, random bf16 weights) on 25 s of real speech (ours only:
# time and peak RSS). Writes bench/results/model.json and prints the ratios (speed = torch_ms / ours_ms).
# Usage: bash bench/run_model.sh        env: THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
/usr/bin/python3 bench/torch_model_bench.py --threads "$THREADS" > "$tmp/torch.json"
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll model --threads "$THREADS" --out "$tmp/ours.json"
/usr/bin/python3 - "$tmp/ours.json" "$tmp/torch.json" bench/results/model.json <<'PY'
import json, sys, platform, os
ours, torch_ = (json.load(open(p)) for p in sys.argv[1:3])
t = {e["name"]: e for e in torch_["entries"]}
rows = []
for e in ours["entries"]:
    r = dict(e)
    if e["name"] in t:
        r.update(t[e["name"]])
        r["ratio"] = r["torch_ms"] / r["ours_ms"]
    rows.append(r)
out = {"suite": "model", "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
       "threads": ours["threads"], "backend": ours["backend"], "torch": torch_["torch"], "entries": rows}
json.dump(out, open(sys.argv[3], "w"), indent=2)
print(f"{'case':<16} {'ours ms':>10} {'torch ms':>10} {'speed ratio':>12}  notes")
for r in rows:
    ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
    torch_ms = f"{r['torch_ms']:.1f}" if "torch_ms" in r else "-"
    note = f"peak RSS {r['peak_rss_bytes']/1e9:.2f} GB" if "peak_rss_bytes" in r else ""
    print(f"{r['name']:<16} {r['ours_ms']:>10.1f} {torch_ms:>10} {ratio:>12}  {note}")
PY
