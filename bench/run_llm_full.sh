#!/usr/bin/env bash
# Full-size speech-to-text run: writes (once) a random-weight checkpoint at the FULL Step-Audio 2 mini shapes
# (real config, real index placement, 4 bf16 shards, 16.6 GB; never committed), then `steplab transcribe` on 5 s of
# real speech, and records load time, encoder time, prefill and decode tokens/s and peak RSS in
# bench/results/llm-full.json. Usage: bash bench/run_llm_full.sh [CHECKPOINT_DIR (default: ../full-random)] [MAX_TOKENS (16)]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-../full-random}
max=${2:-16}
shared=../shared/models/step-audio-2-mini
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
dotnet build src/StepAudio2.Lab.Cli -c Release --nologo -v q -o artifacts/steplab >/dev/null
if [[ ! -f "$dir/model-00004-of-00004.safetensors" ]]; then
  echo "writing random full-size checkpoint to $dir (16.6 GB)" >&2
  dotnet artifacts/bench/StepAudio2.Lab.Bench.dll make-checkpoint --from "$shared" --out "$dir"
fi
mkdir -p bench/results
clip=../shared/audio/multi-turn-round1-zh.wav   # 5.27 s of real speech
dotnet artifacts/steplab/steplab.dll transcribe --model "$dir" "$clip" --max-tokens "$max" --json > bench/results/llm-full.raw.json
/usr/bin/python3 - bench/results/llm-full.raw.json bench/results/llm-full.json "$clip" <<'PY'
import json, sys, os
r = json.load(open(sys.argv[1]))
out = {k: r[k] for k in ("prompt_tokens", "load_s", "audio_s", "encoder_s", "prefill_s", "decode_s",
                         "prefill_tokens_per_s", "decode_tokens_per_s", "peak_rss_bytes", "stop_reason")}
out.update({"generated_tokens": len(r["generated_ids"]), "clip": os.path.basename(sys.argv[3]), "weights": "random bf16, full shapes",
            "loadavg": open("/proc/loadavg").read().split()[:3], "mem_total_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9, 1)})
json.dump(out, open(sys.argv[2], "w"), indent=2)
os.remove(sys.argv[1])
for k, v in out.items(): print(f"{k:22} {v}")
PY
