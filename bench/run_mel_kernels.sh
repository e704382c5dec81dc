#!/usr/bin/env bash
# The three STFT kernels of the mel frontend (production mixed-radix, MathNet Bluestein, DFT matrix): accuracy against
# the reference mel of the tiny dumps (exit 1 over 1e-4) and time on 30 s of audio. Writes bench/results/mel-kernels.json.
# Usage: bash bench/run_mel_kernels.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
mkdir -p bench/results
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll mel-kernels --out bench/results/mel-kernels.json
