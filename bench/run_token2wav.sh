#!/usr/bin/env bash
# Full-size token2wav: writes (once) a random-weight token2wav folder at the real shapes (flow.yaml of the checkpoint:
# 512-d conformer 6 + 4 blocks, DiT 16 × 512; HiFT defaults, base 512; ~700 MB, never committed) and a bench input of
# N = 100 codes (4 s of audio) with a P = 75-token prompt (3 s; its mel is the real default_female.wav), then runs
# `steplab token2wav` on it (one cold process, as a user would: load, JIT, 10 CFM steps with CFG, HiFT, WAV) and the
# same flow + HiFT in PyTorch (reference modules, float32). Records flow / HiFT / total seconds, real-time factor
# (RTF = wall seconds / audio seconds; < 1 is faster than real time) and peak RSS in bench/results/token2wav.json.
# (bench/run_flow.sh times the flow alone, weights built in memory, per CFM step; this one is the whole token2wav.)
# Usage: bash bench/run_token2wav.sh [DIR (default: ../token2wav-full-random)]    env: THREADS (2), TORCH (1 = also time PyTorch)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-../token2wav-full-random}
THREADS=${THREADS:-2}
TORCH=${TORCH:-1}
dotnet build src/StepAudio2.Lab.Cli -c Release --nologo -v q -o artifacts/steplab >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
torch_json=""
if [[ ! -f "$dir/token2wav/flow.pt" || ! -f "$dir/inputs.safetensors" || "$TORCH" == 1 ]]; then
  echo "writing the full-size random token2wav folder to $dir" >&2
  args=("$dir" --threads "$THREADS")
  if [[ "$TORCH" == 1 ]]; then args+=(--torch-json "$tmp/torch.json"); torch_json="$tmp/torch.json"; fi
  /usr/bin/python3 bench/make_token2wav_bench.py "${args[@]}"
fi
mkdir -p bench/results
DOTNET_PROCESSOR_COUNT=$THREADS dotnet artifacts/steplab/steplab.dll token2wav --token2wav "$dir/token2wav" \
  --prompt-features "$dir/inputs.safetensors" --codes-file "$dir/inputs.safetensors" --out "$tmp/out.wav" --json > "$tmp/ours.json"
/usr/bin/python3 - "$tmp/ours.json" "$torch_json" bench/results/token2wav.json "$tmp/out.wav" <<'PY'
import json, os, platform, sys
import numpy as np
r = json.load(open(sys.argv[1]))
wav = np.fromfile(sys.argv[4], dtype="<f4", offset=58)  # IEEE-float WAV: 58-byte header (fmt 18 + fact)
total = r["flow_s"] + r["hift_s"]
out = {"suite": "token2wav", "weights": "random float32, full shapes (flow.yaml of step-audio-2-mini; HiFT defaults)",
       "codes": r["codes"], "prompt_tokens": r["prompt_tokens"], "audio_s": r["audio_s"], "samples": r["samples"],
       "load_s": r["load_s"], "flow_s": r["flow_s"], "hift_s": r["hift_s"], "total_s": total,
       "rtf": total / r["audio_s"], "peak_rss_bytes": r["peak_rss_bytes"], "threads": int(os.environ.get("THREADS", "2")),
       "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
       "loadavg": open("/proc/loadavg").read().split()[:3],
       "wav_samples_read": int(wav.size), "wav_finite": bool(np.isfinite(wav).all()), "wav_rms": float(np.sqrt(np.mean(wav.astype(np.float64) ** 2))),
       "note": "one cold `steplab token2wav` process (JIT included); rtf = (flow_s + hift_s) / audio_s"}
if sys.argv[2]:
    t = json.load(open(sys.argv[2]))
    out.update({k: v for k, v in t.items() if k != "samples"})
    out["torch_rtf"] = t["torch_total_s"] / r["audio_s"]
    out["speed_ratio"] = t["torch_total_s"] / total
json.dump(out, open(sys.argv[3], "w"), indent=2)
for k, v in out.items(): print(f"{k:16} {v}")
PY
