#!/usr/bin/env bash
# Quantized decode benchmark (issue 15): GEMV of bf16, int8 and int4 (MLX affine, group 64) weights side by side at the
# LLM shapes, GB/s against the measured streaming bandwidth, the decode tok/s those GEMVs allow, one prefill GEMM per
# format — once with the machine's best SIMD (AVX-512/AVX2) and once on the portable path (DOTNET_EnableAVX2=0
# DOTNET_EnableAVX512=0: the Vector128 kernels of all three formats), with process CPU time per call beside wall time.
# Writes bench/results/quant.json only when both runs complete (never a partial file).
# Usage: bash bench/run_quant.sh        env: THREADS (2), SECONDS_PER_CASE (1.0)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
SECS=${SECONDS_PER_CASE:-1.0}
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll quant --threads "$THREADS" --seconds "$SECS" --label simd --out "$tmp/simd.json"
DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 dotnet artifacts/bench/StepAudio2.Lab.Bench.dll quant --threads "$THREADS" --seconds "$SECS" --label portable --out "$tmp/portable.json"
/usr/bin/python3 - "$tmp/simd.json" "$tmp/portable.json" "$((SECONDS - start))" > "$tmp/quant.json" <<'PY'
import json, platform, sys
simd, portable = (json.load(open(p)) for p in sys.argv[1:3])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
print(json.dumps({"benchmark": "quantized GEMV/GEMM (bench/run_quant.sh)", "cpu": cpu, "wall_s": int(sys.argv[3]),
                  "note": "shared 2-core machine, other builds running: numbers are noisy",
                  "runs": [simd, portable]}, indent=2))
PY
mv "$tmp/quant.json" bench/results/quant.json
echo "wrote bench/results/quant.json" >&2
