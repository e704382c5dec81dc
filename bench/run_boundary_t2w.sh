#!/usr/bin/env bash
# Token2wav before vs after the engine boundary (issue 14), side by side in one run: the bench binary of BEFORE_REF
# (default 91e627e, the boundary core before token2wav went through Ops) and of the working tree, each running the
# full-size HiFT bench (bench/run_hift.sh's, T = FRAMES mel frames) and the full-size flow bench (bench/run_flow.sh's,
# CODES + PROMPT tokens, STEPS CFM steps), alternating before/after so both see the same load on this shared machine.
# Writes bench/results/boundary-t2w.json: per binary the Hift.Forward time and the flow's fused and op-by-op step
# medians, the ratios after/before, and the load average at each start.
# The HiFT bench alternates before/after ROUNDS times (medians reported): on a loaded machine one run is noisy.
# CPU seconds are reported next to wall time: under load the wall time mostly measures the other processes.
# Usage: bash bench/run_boundary_t2w.sh   env: BEFORE_REF (91e627e), THREADS (2), FRAMES (200), REPS (3), ROUNDS (2), CODES (100), PROMPT (75), STEPS (5)
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE_REF=${BEFORE_REF:-91e627e}; THREADS=${THREADS:-2}; FRAMES=${FRAMES:-200}; REPS=${REPS:-3}
CODES=${CODES:-100}; PROMPT=${PROMPT:-75}; STEPS=${STEPS:-5}; ROUNDS=${ROUNDS:-2}
tmp=$(mktemp -d)
cleanup() { git worktree remove --force "$tmp/src" 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
git worktree add --detach "$tmp/src" "$BEFORE_REF" -q
dotnet build "$tmp/src/bench/StepAudio2.Lab.Bench" -c Release --nologo -v q -o "$tmp/before" >/dev/null
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o "$tmp/after" >/dev/null
yaml=$(realpath ../shared/models/step-audio-2-mini/token2wav/flow.yaml 2>/dev/null || realpath /work/shared/models/step-audio-2-mini/token2wav/flow.yaml)
for round in $(seq 1 "$ROUNDS"); do
  for side in before after; do
    echo "hift $side, round $round" >&2
    DOTNET_PROCESSOR_COUNT=$THREADS dotnet "$tmp/$side/StepAudio2.Lab.Bench.dll" hift --threads "$THREADS" --reps "$REPS" --frames "$FRAMES" --out "$tmp/hift-$side-$round.json" >/dev/null
  done
done
for side in before after; do
  echo "flow $side" >&2
  dotnet "$tmp/$side/StepAudio2.Lab.Bench.dll" flow --threads "$THREADS" --codes "$CODES" --prompt "$PROMPT" --steps "$STEPS" --yaml "$yaml" --out "$tmp/flow-$side.json" >/dev/null
done
mkdir -p bench/results
/usr/bin/python3 - "$tmp" "$BEFORE_REF" "$(git rev-parse --short HEAD)" bench/results/boundary-t2w.json "$ROUNDS" <<'PY'
import json, statistics, sys
tmp, before_ref, head, out, rounds = sys.argv[1:]
rounds = int(rounds)
r = {"suite": "boundary-t2w", "before_ref": before_ref, "after_ref": head + " (+ working tree)",
     "detail": "before = bench binary built from before_ref (token2wav with model-side kernels), after = this tree "
               "(token2wav through Ops: fused DiT block / rel-position attention as IBackend capabilities, packed convs "
               "cached by the CPU backend, HiFT decode/source/STFT as ops). Run one after the other in this script; "
               "compare ratios within this run only (shared machine).",
     "sides": {}}
for side in ("before", "after"):
    hs = [json.load(open(f"{tmp}/hift-{side}-{i}.json")) for i in range(1, rounds + 1)]
    h = hs[0]
    f = json.load(open(f"{tmp}/flow-{side}.json"))
    med = lambda key: statistics.median(x[key] for x in hs)
    r["sides"][side] = {
        "hift_forward_ms": med("forward_ms"), "hift_forward_ms_per_round": [x["forward_ms"] for x in hs],
        "hift_module_by_module_total_ms": med("new_total_ms"), "hift_module_by_module_cpu_s_all_reps": med("new_cpu_s_all_reps"),
        "hift_module_by_module_cpu_s_per_round": [x["new_cpu_s_all_reps"] for x in hs],
        "hift_generic_ops_total_ms": med("old_total_ms"), "hift_reps_per_round": h["reps"],
        "hift_loadavg": [x["loadavg_at_start"] for x in hs],
        "hift_modules_new_ms": {m["module"]: m.get("new_ms") for m in h["modules"]},
        "flow_fused_step_median_s": f["step_median_s"], "flow_fused_step_cpu_median_s": f["step_cpu_median_s"],
        "flow_fused_total_s": f["total_s"], "flow_fused_encoder_and_rest_s": f["encoder_and_rest_s"],
        "flow_op_by_op_step_median_s": f["before"]["step_median_s"], "flow_op_by_op_total_s": f["before"]["total_s"],
        "flow_paired_estimator_fused_s": f["paired_estimator"]["fused_s"], "flow_paired_estimator_op_by_op_s": f["paired_estimator"]["op_by_op_s"],
        "flow_mel_rel_l2_fused_vs_op_by_op": f["mel_rel_l2_fused_vs_op_by_op"],
        "flow_loadavg": f["loadavg_at_start"], "flow_frames": f["frames"], "flow_steps": f["cfm_steps"], "threads": f["threads"],
        "hift_frames": h.get("frames"), "flow_peak_rss_bytes": f["peak_rss_bytes"],
    }
b, a = r["sides"]["before"], r["sides"]["after"]
r["after_over_before"] = {
    "hift_forward": round(a["hift_forward_ms"] / b["hift_forward_ms"], 3),
    "hift_module_by_module_cpu": round(a["hift_module_by_module_cpu_s_all_reps"] / b["hift_module_by_module_cpu_s_all_reps"], 3),
    "flow_fused_step_cpu_median": round(a["flow_fused_step_cpu_median_s"] / b["flow_fused_step_cpu_median_s"], 3),
    "flow_fused_step_median": round(a["flow_fused_step_median_s"] / b["flow_fused_step_median_s"], 3),
    "flow_fused_total": round(a["flow_fused_total_s"] / b["flow_fused_total_s"], 3),
    "flow_op_by_op_step_median": round(a["flow_op_by_op_step_median_s"] / b["flow_op_by_op_step_median_s"], 3),
}
json.dump(r, open(out, "w"), indent=2)
print(json.dumps(r["after_over_before"]))
PY
