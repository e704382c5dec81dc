#!/usr/bin/env bash
# Nightly-style fuzz run (issue 12): mutates a valid seed of every format the workbench reads (safetensors, index json,
# config json, .npy, .npz, pickle .pt, WAV, AIFF, AIFF-C, flow.yaml, codes text/.npy) and asserts exit 0/1/2 or a typed
# error, bounded time per case and a peak working set under 2 GiB. The same test runs at 200 cases per format in test.sh.
# Usage: bash scripts/fuzz.sh [CASES_PER_FORMAT]    (default 10000; results: bench/results/fuzz.json, exit 1 on any failure)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
cases="${1:-10000}"
[[ "$cases" =~ ^[0-9]+$ && "$cases" -ge 1 ]] || { echo "usage: bash scripts/fuzz.sh [CASES_PER_FORMAT]" >&2; exit 2; }

mkdir -p bench/results
out="$(pwd)/bench/results/fuzz.json"
tmp="$out.partial"
rm -f "$tmp"
dotnet build tests/StepAudio2.Lab.Tests -c Release --nologo -v q >/dev/null
# A partial or failed run never replaces the tracked results: the test writes $tmp, moved only on success.
if STEPLAB_FUZZ_CASES="$cases" STEPLAB_FUZZ_OUT="$tmp" \
   dotnet test tests/StepAudio2.Lab.Tests -c Release --nologo --no-build \
     --filter "FullyQualifiedName~StepAudio2.Lab.Tests.Hostile.FuzzTests" --logger "console;verbosity=minimal"; then
  mv "$tmp" "$out"
  cat "$out"
else
  echo "fuzz run FAILED; details in the test output above${tmp:+ and $tmp}" >&2
  exit 1
fi
