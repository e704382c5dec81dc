#!/usr/bin/env bash
# The mlx backend (MLX through mlx-c) against the cpu backend on the benchmark shapes, side by side in one run
# (BackendBench alternates the two per case): GEMM/GEMV of bench/shapes.json (f32, bf16), int4 quantized GEMV, layer
# norm, encoder attention, decode attention over a 1000-token cache, conv1d, gelu, rope. Builds MLX first if needed
# (scripts/build-mlx.sh). Writes bench/results/mlx.json only for a complete run (ONLY=… writes artifacts/bench/).
# Usage: bash bench/run_mlx.sh        env: THREADS (2), SECONDS_PER_CASE (1.0), ONLY (substring of case names)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_CASE:-1.0}
ONLY=${ONLY:-}
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
bash scripts/build-mlx.sh
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
if [[ -n "$ONLY" ]]; then out=artifacts/bench/mlx-partial.json; only_args=(--only "$ONLY"); else out=bench/results/mlx.json; only_args=(); fi
mkdir -p "$(dirname "$out")" artifacts/bench
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll backends --backends cpu,mlx --threads "$THREADS" --seconds "$SECS" "${only_args[@]}" --out "$tmp"
mv "$tmp" "$out"
echo "wrote $out" >&2
