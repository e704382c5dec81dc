#!/usr/bin/env bash
# The engine-boundary benchmark (issue 14), before vs after, side by side in one run: per-token decode time of a Qwen2
# decoder (Qwen2.5-0.5B widths, random bf16 weights) at 100 and 2 000 tokens of context, and one full-size encoder block
# (1280-d, 1 500 frames). bench/DecodeContext is built against the library of each commit (it uses only APIs they all
# have): BEFORE_KV = the last commit that copied the whole KV cache per token, BEFORE = the last commit before the
# boundary, and the working tree. Runs alternate (A B C A B C …) so machine load hits each alike.
# Writes bench/results/boundary.json. Usage: bash bench/run_boundary.sh   env: ROUNDS (2), LAYERS (8), STEPS (16)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}; LAYERS=${LAYERS:-8}; STEPS=${STEPS:-16}
BEFORE_KV=${BEFORE_KV:-adbf000^}
BEFORE=${BEFORE:-55abac2}
tmp=$(mktemp -d)
cleanup() { for r in kv before; do git worktree remove --force "$tmp/$r" 2>/dev/null || true; done; rm -rf "$tmp"; }
trap cleanup EXIT
build() { # $1 name, $2 source root
  cp -r bench/DecodeContext "$2/bench/" 2>/dev/null || true
  dotnet build "$2/bench/DecodeContext" -c Release --nologo -v q -o "$tmp/bin-$1" >/dev/null
}
git worktree add -q --detach "$tmp/kv" "$BEFORE_KV"
git worktree add -q --detach "$tmp/before" "$BEFORE"
build kv "$tmp/kv"; build before "$tmp/before"; build after "."
for round in $(seq 1 "$ROUNDS"); do
  for r in kv before after; do
    dotnet "$tmp/bin-$r/DecodeContext.dll" --label "$r" --layers "$LAYERS" --steps "$STEPS" --out "$tmp/$r-$round.json"
  done
done
/usr/bin/python3 - "$tmp" "$ROUNDS" "$(git rev-parse --short "$BEFORE_KV")" "$(git rev-parse --short "$BEFORE")" "$(git rev-parse --short HEAD)" <<'PY'
import json, sys, os, platform, statistics
tmp, rounds, kv_rev, before_rev, head = sys.argv[1], int(sys.argv[2]), *sys.argv[3:]
labels = {"kv": f"{kv_rev} (KV cache copied per token)", "before": f"{before_rev} (before the boundary)", "after": f"{head}+working tree"}
res = {}
for r in labels:
    runs = [json.load(open(f"{tmp}/{r}-{i}.json")) for i in range(1, rounds + 1)]
    cases = {}
    for run in runs:
        for row in run["rows"]: cases.setdefault(row["case"], []).append(row["median_ms"])
    res[r] = {c: min(v) for c, v in cases.items()}
load = open("/proc/loadavg").read().split()[:3]
out = {"suite": "boundary", "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
       "load_average_after": load, "rounds": rounds, "note": "best of the per-round medians, ms; runs interleaved",
       "commits": labels, "results": res,
       "growth_2000_vs_100": {r: res[r]["decode_at_2000"] / res[r]["decode_at_100"] for r in res},
       "after_vs_before": {c: res["after"][c] / res["before"][c] for c in res["after"]}}
json.dump(out, open("bench/results/boundary.json", "w"), indent=2)
print(f"{'case':<22}" + "".join(f"{r:>12}" for r in labels))
for c in res["after"]: print(f"{c:<22}" + "".join(f"{res[r][c]:>12.2f}" for r in labels))
print("per-token growth 2000/100: " + ", ".join(f"{r} {v:.2f}x" for r, v in out["growth_2000_vs_100"].items()))
print(f"load average {' '.join(load)}")
PY
