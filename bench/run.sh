#!/usr/bin/env bash
# GEMM/GEMV benchmark: PyTorch+OpenBLAS (bench/torch_bench.py) and ours (bench/StepAudio2.Lab.Bench) on the shapes of
# bench/shapes.json, alternating for ROUNDS rounds so both sides see the same background load, then merged into
# bench/results/gemm.json with a printed table of ratios (speed = torch_ms / ours_ms).
# Usage: bash bench/run.sh            env: ROUNDS (2), THREADS (2), ONLY (substring of case names), STRICT=1 (exit 1 on a missed target)
# A partial run (ONLY=…) writes artifacts/bench/gemm-partial.json instead: the tracked full results are never overwritten
# by a subset (OUT=path overrides either).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
THREADS=${THREADS:-2}
ONLY=${ONLY:-}
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
/usr/bin/python3 -c "import torch" 2>/dev/null || { echo "/usr/bin/python3 with torch is required (Debian python3-torch)" >&2; exit 2; }

dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
if [[ -n "$ONLY" ]]; then out=${OUT:-artifacts/bench/gemm-partial.json}; else out=${OUT:-bench/results/gemm.json}; fi
mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
only_args=()
[[ -n "$ONLY" ]] && only_args=(--only "$ONLY")
start=$SECONDS
for r in $(seq 1 "$ROUNDS"); do
  echo "== round $r/$ROUNDS: torch" >&2
  /usr/bin/python3 bench/torch_bench.py --threads "$THREADS" "${only_args[@]}" > "$tmp/torch-$r.json"
  echo "== round $r/$ROUNDS: ours" >&2
  dotnet artifacts/bench/StepAudio2.Lab.Bench.dll --threads "$THREADS" "${only_args[@]}" --out "$tmp/ours-$r.json"
done
echo "== benchmark took $((SECONDS - start)) s" >&2
set +e
/usr/bin/python3 bench/merge_results.py "$out" --ours "$tmp"/ours-*.json --torch "$tmp"/torch-*.json
status=$?
set -e
echo "wrote $out${ONLY:+ (partial run: ONLY=$ONLY)}" >&2
if [[ "${STRICT:-0}" == 1 ]]; then exit $status; fi
exit 0
