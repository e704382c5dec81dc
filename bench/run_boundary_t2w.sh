#!/usr/bin/env bash
# Token2wav before vs after the engine boundary (issue 14), side by side in one run: the bench binary of BEFORE_REF
# (default 91e627e, the boundary core before token2wav went through Ops) and of the working tree, each running the
# full-size HiFT bench (bench/run_hift.sh's, T = FRAMES mel frames) and the full-size flow bench (bench/run_flow.sh's,
# CODES + PROMPT tokens, STEPS CFM steps), alternating before/after so both see the same load on this shared machine.
# Writes bench/results/boundary-t2w.json: per binary the Hift.Forward time and the flow's fused and op-by-op step
# medians, the ratios after/before, and the load average at each start.
# Usage: bash bench/run_boundary_t2w.sh   env: BEFORE_REF (91e627e), THREADS (2), FRAMES (200), REPS (3), CODES (100), PROMPT (75), STEPS (5)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE_REF=${BEFORE_REF:-91e627e}; THREADS=${THREADS:-2}; FRAMES=${FRAMES:-200}; REPS=${REPS:-3}
CODES=${CODES:-100}; PROMPT=${PROMPT:-75}; STEPS=${STEPS:-5}
tmp=$(mktemp -d)
cleanup() { git worktree remove --force "$tmp/src" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add --detach "$tmp/src" "$BEFORE_REF" -q
dotnet build "$tmp/src/bench/StepAudio2.Lab.Bench" -c Release --nologo -v q -o "$tmp/before" >/dev/null
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o "$tmp/after" >/dev/null
yaml=$(realpath ../shared/models/step-audio-2-mini/token2wav/flow.yaml 2>/dev/null || realpath /work/shared/models/step-audio-2-mini/token2wav/flow.yaml)
for side in before after; do
  echo "hift $side" >&2
  DOTNET_PROCESSOR_COUNT=$THREADS dotnet "$tmp/$side/StepAudio2.Lab.Bench.dll" hift --threads "$THREADS" --reps "$REPS" --frames "$FRAMES" --out "$tmp/hift-$side.json" >/dev/null
done
for side in before after; do
  echo "flow $side" >&2
  dotnet "$tmp/$side/StepAudio2.Lab.Bench.dll" flow --threads "$THREADS" --codes "$CODES" --prompt "$PROMPT" --steps "$STEPS" --yaml "$yaml" --out "$tmp/flow-$side.json" >/dev/null
done
mkdir -p bench/results
/usr/bin/python3 - "$tmp" "$BEFORE_REF" "$(git rev-parse --short HEAD)" bench/results/boundary-t2w.json <<'PY'
import json, sys
tmp, before_ref, head, out = sys.argv[1:]
r = {"suite": "boundary-t2w", "before_ref": before_ref, "after_ref": head + " (+ working tree)",
     "detail": "before = bench binary built from before_ref (token2wav with model-side kernels), after = this tree "
               "(token2wav through Ops: fused DiT block / rel-position attention as IBackend capabilities, packed convs "
               "cached by the CPU backend, HiFT decode/source/STFT as ops). Run one after the other in this script; "
               "compare ratios within this run only (shared machine).",
     "sides": {}}
for side in ("before", "after"):
    h = json.load(open(f"{tmp}/hift-{side}.json"))
    f = json.load(open(f"{tmp}/flow-{side}.json"))
    r["sides"][side] = {
        "hift_forward_ms": h["forward_ms"], "hift_new_module_total_ms": h["new_total_ms"], "hift_old_module_total_ms": h["old_total_ms"],
        "hift_loadavg": h.get("loadavg_at_start") or h.get("load_start"),
        "flow_fused_step_median_s": f["step_median_s"], "flow_fused_step_cpu_median_s": f["step_cpu_median_s"],
        "flow_fused_total_s": f["total_s"], "flow_fused_encoder_and_rest_s": f["encoder_and_rest_s"],
        "flow_op_by_op_step_median_s": f["before"]["step_median_s"], "flow_op_by_op_total_s": f["before"]["total_s"],
        "flow_paired_estimator_fused_s": f["paired_estimator"]["fused_s"], "flow_paired_estimator_op_by_op_s": f["paired_estimator"]["op_by_op_s"],
        "flow_mel_rel_l2_fused_vs_op_by_op": f["mel_rel_l2_fused_vs_op_by_op"],
        "flow_loadavg": f["loadavg_at_start"], "flow_frames": f["frames"], "flow_steps": f["cfm_steps"], "threads": f["threads"],
        "hift_frames": h.get("frames"),
    }
b, a = r["sides"]["before"], r["sides"]["after"]
r["after_over_before"] = {
    "hift_forward": round(a["hift_forward_ms"] / b["hift_forward_ms"], 3),
    "flow_fused_step_median": round(a["flow_fused_step_median_s"] / b["flow_fused_step_median_s"], 3),
    "flow_fused_total": round(a["flow_fused_total_s"] / b["flow_fused_total_s"], 3),
    "flow_op_by_op_step_median": round(a["flow_op_by_op_step_median_s"] / b["flow_op_by_op_step_median_s"], 3),
}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps(r["after_over_before"]))
PY
