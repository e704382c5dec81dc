#!/usr/bin/env bash
# Full-size flow benchmark (ours only): random f32 weights with the shapes of the real token2wav/flow.yaml, 4 s of codes
# (N = 100) with a 3 s prompt (P = 75) → 350 frames, 10 CFM steps with CFG as a batch of two. Runs the op-by-op path
# ("before") and the fused path (top-level fields) back to back in one process, then alternates one estimator call of
# each (paired ratios: the machine is shared and noisy, compare only within a run). Writes bench/results/flow.json
# (seconds per step, wall and CPU, total, real-time factor, peak RSS, speed-ups, fused-vs-op-by-op rel-L2).
# PROFILE=1 prints a breakdown instead (estimator and encoder per path, the DiT's GEMMs alone).
# Usage: bash bench/run_flow.sh        env: THREADS (2), CODES (100), PROMPT (75)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
mkdir -p bench/results
if [ -n "${PROFILE:-}" ]; then
  exec dotnet artifacts/bench/StepAudio2.Lab.Bench.dll flow --threads "$THREADS" --codes "${CODES:-100}" --prompt "${PROMPT:-75}" --profile
fi
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll flow --threads "$THREADS" --codes "${CODES:-100}" --prompt "${PROMPT:-75}" \
  --out bench/results/flow.json
