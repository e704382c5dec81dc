#!/usr/bin/env bash
# The main job on the embedded default: inspect the tiny Step-Audio 2 checkpoint in reference-data/, compare
# dumps against the PyTorch reference (one must pass, one with a planted porting bug must be caught), and write the
# offline HTML report of the real clip through every stage (artifacts/report.html); then the speech-out half: a token2wav
# trace compared with its reference dump, and a 24 kHz WAV from speech codes (artifacts/tiny-token2wav.wav).
# Usage: bash run.sh            (Debian 12 + the .NET 10 SDK; installs nothing else for this job)
# Afterwards ./steplab at the repository root runs the CLI built here (every README example uses it).
set -euo pipefail
cd "$(dirname "$0")"
source scripts/setup.sh
build_cli

tiny=reference-data/tiny
echo "== steplab inspect $tiny"
./steplab inspect "$tiny"

echo
echo "== steplab compare: independent float64 run vs the float32 reference dump (expected: pass)"
./steplab compare $tiny/demo/candidate-float64.safetensors $tiny/dumps/audio-short.safetensors

echo
echo "== steplab compare: a port with GELU where the adaptor has ReLU (expected: caught, exit code 1)"
set +e
./steplab compare $tiny/demo/candidate-gelu-adaptor.safetensors $tiny/dumps/audio-short.safetensors
code=$?
set -e
if [[ $code -ne 1 ]]; then echo "expected exit code 1 from the planted bug, got $code" >&2; exit 1; fi
echo "planted bug caught (exit code 1), as expected."

echo
echo "== steplab report: the real clip through the tiny checkpoint, every stage as one offline HTML page"
./steplab report --model $tiny --tokenizer ../shared/models/step-audio-2-mini --audio ../shared/audio/real_speech.aiff \
  --reference $tiny/dumps/llm-short.safetensors --out artifacts/report.html
echo "open artifacts/report.html in a browser (works offline)"

echo
echo "== steplab trace --token2wav: speech codes + voice prompt → flow (conformer, 10 CFM steps with CFG) → HiFT, from the"
echo "   reference dump's inputs, compared module by module under the default rules (their documented floors: flow at"
echo "   rel-L2 1e-5, the whole HiFT chain at 1e-3; docs/parity.md)"
./steplab trace --token2wav $tiny/token2wav --inputs $tiny/dumps/token2wav-short.safetensors --out artifacts/token2wav-trace.safetensors
./steplab compare artifacts/token2wav-trace.safetensors $tiny/dumps/token2wav-short.safetensors

echo
echo "== steplab token2wav: 2 s of codes in the voice of a real prompt clip (tiny random flow + vocoder: noise-like audio)"
./steplab token2wav --token2wav $tiny/token2wav --prompt ../shared/audio/default_female.wav \
  --codes "$(seq -s ' ' 100 60 3040)" --seed 7 --out artifacts/tiny-token2wav.wav
echo "wrote artifacts/tiny-token2wav.wav (24 kHz)"
