#!/usr/bin/env bash
# Runs every test of StepAudio2.Lab. Installs what the tests need first (Debian 12 + the .NET 10 SDK assumed).
# Usage: bash test.sh [extra dotnet test args]
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
setup_python_reference   # /usr/bin/python3 with torch, torchaudio, numpy: the independent oracle some tests call
setup_jupyter            # Debian's Jupyter + the .NET Interactive kernel: the notebook tests execute notebooks/*.ipynb in it
setup_chromium           # headless Chromium renders the executed notebooks offline (DOM checks, screenshots)

mkdir -p artifacts/test-results
set +e
dotnet test StepAudio2.Lab.sln -c Release --nologo \
  --logger "trx;LogFileName=results.trx" --results-directory artifacts/test-results "$@" 2>&1 | tee artifacts/test-results/dotnet-test.log
status=${PIPESTATUS[0]}
set -e
# One plain closing line for CI: "N passed, N failed".
summary=$(grep -E "^(Passed|Failed)!" artifacts/test-results/dotnet-test.log | tail -n 1 || true)
passed=$(sed -nE 's/.*Passed: +([0-9]+).*/\1/p' <<<"$summary")
failed=$(sed -nE 's/.*Failed: +([0-9]+).*/\1/p' <<<"$summary")
if [[ -z "$passed" ]]; then
  echo "dotnet test produced no result line (exit $status)"
  exit $(( status == 0 ? 1 : status ))
fi
echo "${passed} passed, ${failed} failed"
exit "$status"
