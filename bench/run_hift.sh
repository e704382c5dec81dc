#!/usr/bin/env bash
# Full-size HiFT, module by module (bench/StepAudio2.Lab.Bench hift): random f32 weights at the default shapes in memory,
# T = 200 mel frames (4 s). In one process, alternately per repetition, the generic engine ops as HiFT used them before
# ("old") and the layers' packed-GEMM / vectorised-Snake path ("new"), so both see the same load on this shared machine;
# then (TORCH=1) the same model in PyTorch with per-module hooks. Writes bench/results/hift.json.
# Usage: bash bench/run_hift.sh    env: THREADS (2), REPS (3), FRAMES (200), TORCH (1)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}; REPS=${REPS:-3}; FRAMES=${FRAMES:-200}; TORCH=${TORCH:-1}
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p bench/results
DOTNET_PROCESSOR_COUNT=$THREADS dotnet artifacts/bench/StepAudio2.Lab.Bench.dll hift --threads "$THREADS" --reps "$REPS" --frames "$FRAMES" --out "$tmp/ours.json"
torch_json=""
if [[ "$TORCH" == 1 ]]; then
  /usr/bin/python3 bench/hift_torch_bench.py "$tmp/torch.json" --frames "$FRAMES" --threads "$THREADS" >/dev/null
  torch_json="$tmp/torch.json"
fi
/usr/bin/python3 - "$tmp/ours.json" "$torch_json" bench/results/hift.json <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
if sys.argv[2]:
    t = json.load(open(sys.argv[2]))
    r["torch"] = t
    r["torch_over_new"] = round(t["torch_total_ms"] / r["new_total_ms"], 2)
    r["torch_over_forward"] = round(t["torch_total_ms"] / r["forward_ms"], 2)
    for m in r["modules"]:
        if m["module"] in t["modules_ms"]:
            m["torch_ms"] = t["modules_ms"][m["module"]]
json.dump(r, open(sys.argv[3], "w"), indent=2)
print(f"old {r['old_total_ms']:.0f} ms, new module by module {r['new_total_ms']:.0f} ms (old/new {r['speedup']}), cpu ratio {r['cpu_ratio']}, "
      f"Hift.Forward {r['forward_ms']:.0f} ms (old/Forward {r['speedup_forward']})"
      + (f", torch {r['torch']['torch_total_ms']:.0f} ms (torch/Forward {r['torch_over_forward']})" if sys.argv[2] else ""))
PY
