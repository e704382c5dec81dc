#!/usr/bin/env bash
# Runs every test of StepAudio2.Lab. Installs what the tests need first (Debian 12 + the .NET 10 SDK assumed).
# Usage: bash test.sh [extra dotnet test args]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
setup_python_reference   # /usr/bin/python3 with torch, torchaudio, numpy: the independent oracle some tests call
setup_jupyter            # Debian's Jupyter + the .NET Interactive kernel: the notebook tests execute notebooks/*.ipynb in it
setup_chromium           # headless Chromium renders the executed notebooks offline (DOM checks, screenshots)
command -v g++ >/dev/null || apt_install g++   # type-checks the CUDA kernels' source on this GPU-less machine
# The mlx backend's native libraries (MLX + mlx-c, with Debian's OpenBLAS/LAPACKE, cmake, ninja, g++): built once per
# version into ~/.cache/steplab (~6 min on 2 cores the first time, instant when cached). From here on the mlx tests must
# run: a failed build makes them fail with its reason instead of skipping.
bash scripts/build-mlx.sh || echo "scripts/build-mlx.sh failed: the mlx backend tests will fail" >&2
export STEPLAB_REQUIRE_MLX=1

# Each assembly writes its own trx: the logger's default names are made unique per file (a fixed LogFileName lets the
# last assembly overwrite the others, and LogFilePrefix's timestamp has whole seconds); scripts/test_summary.py renames
# them to <assembly>.trx.
mkdir -p artifacts/test-results
rm -f artifacts/test-results/*.trx
set +e
dotnet test StepAudio2.Lab.sln -c Release --nologo \
  --logger trx --results-directory artifacts/test-results "$@" 2>&1 | tee artifacts/test-results/dotnet-test.log
status=${PIPESTATUS[0]}
set -e

# Second, short run: the kernel and parity tests again with AVX2 and AVX-512 switched off, so the portable Vector128
# kernels (what ARM64 and x86 without AVX2 run) are tested, not just compiled (~35 s on 2 busy cores). x86-64 only (on
# ARM64 the main run already takes them); skipped when extra arguments select a partial run.
portable_dir=artifacts/test-results/no-avx2
rm -rf "$portable_dir"
portable_args=()
if [[ $# -eq 0 && "$(uname -m)" == x86_64 ]]; then
  echo "== kernel and parity tests with DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 (portable paths) =="
  set +e
  DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 dotnet test tests/StepAudio2.Lab.Tests -c Release --nologo --no-build \
    --filter "FullyQualifiedName~StepAudio2.Lab.Tests.Engine.|FullyQualifiedName~StepAudio2.Lab.Tests.Quantization.|FullyQualifiedName~QuantizedModelTests|FullyQualifiedName~LlmParityTests|FullyQualifiedName~AudioPathParityTests|FullyQualifiedName~HiftFastPathTests" \
    --logger trx --results-directory "$portable_dir" 2>&1 | tee -a artifacts/test-results/dotnet-test.log
  portable_status=${PIPESTATUS[0]}
  set -e
  if [[ $status -eq 0 ]]; then status=$portable_status; fi
  portable_args=("$portable_dir" 1)
fi
# One plain closing line for CI, counted over every test of every assembly: "N passed, N failed[, N skipped]".
# Every test project must report; with extra arguments (a --filter) an assembly may legitimately run nothing.
assemblies=$(grep -lE '<IsTestProject>true' tests/*/*.csproj | wc -l)
[[ $# -gt 0 ]] && assemblies=0
set +e
summary=$(/usr/bin/python3 scripts/test_summary.py artifacts/test-results "$assemblies" "${portable_args[@]}")
summary_status=$?
set -e
if [[ -z "$summary" ]]; then
  echo "dotnet test produced no results (exit $status)"
  exit $(( status == 0 ? 1 : status ))
fi
echo "$summary"
if [[ $status -eq 0 && $summary_status -ne 0 ]]; then status=1; fi
exit "$status"
