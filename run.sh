#!/usr/bin/env bash
# The main job on the embedded default: inspect the tiny Step-Audio 2 checkpoint in reference-data/ and compare
# dumps against the PyTorch reference dump — one that must pass, one with a planted porting bug that must be caught.
# Usage: bash run.sh            (Debian 12 + the .NET 10 SDK; installs nothing else for this job)
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
build_cli

tiny=reference-data/tiny
echo "== steplab inspect $tiny"
steplab inspect "$tiny"

echo
echo "== steplab compare: independent float64 run vs the float32 reference dump (expected: pass)"
steplab compare $tiny/demo/candidate-float64.safetensors $tiny/dumps/audio-short.safetensors

echo
echo "== steplab compare: a port with GELU where the adaptor has ReLU (expected: caught, exit code 1)"
set +e
steplab compare $tiny/demo/candidate-gelu-adaptor.safetensors $tiny/dumps/audio-short.safetensors
code=$?
set -e
if [[ $code -ne 1 ]]; then echo "expected exit code 1 from the planted bug, got $code" >&2; exit 1; fi
echo "planted bug caught (exit code 1), as expected."
