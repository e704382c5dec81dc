#!/usr/bin/env bash
# Full-size quantization benchmark (issue 15 acceptance), bf16 / int8 / int4 side by side in ONE run:
#  1. once: a random-weight checkpoint at the full Step-Audio 2 mini shapes (the real config.json, 16.6 GB bf16; the
#     same writer as run_llm_full.sh) and its int8 / int4 versions through the real `steplab quantize` (recipe
#     decoder-head8: decoder linears at 4/8 bits, embed_tokens and lm_head at 8 bits, group 64); never committed;
#  2. per format: the streaming read bandwidth, then `steplab transcribe` on a real clip under /usr/bin/time -v three
#     times — cold (the checkpoint's pages dropped from the page cache first), warm (right after), and a batch of 4
#     real clips — recording decode tok/s, peak RSS (VmHWM from the CLI and time's max RSS), major faults, bytes read
#     from disk and how much of the checkpoint is left in the page cache (mincore);
#  3. the full-size audio encoder on 25 s of speech and the f32 GEMMs at encoder shapes, ours vs PyTorch+OpenBLAS.
# bench/full_size.py derives bytes streamed per decode step from the safetensors headers; decode tok/s is compared
# with (stream bandwidth ÷ those bytes). Writes bench/results/quant-full.json only when every step completed.
# Usage: bash bench/run_quant_full.sh [DIR (default /tmp/steplab-full)]
#   env: MAX_TOKENS (24), THREADS (2), FORMATS ("int4 int8 bf16"), CLEAN (0; 1 = delete DIR at the end), ENCODER (1)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-/tmp/steplab-full}
MAX_TOKENS=${MAX_TOKENS:-24}
THREADS=${THREADS:-2}
FORMATS=${FORMATS:-int4 int8 bf16}
ENCODER=${ENCODER:-1}
shared=../shared/models/step-audio-2-mini
audio=../shared/audio
clip=$audio/multi-turn-round1-zh.wav   # 5.27 s of real speech (the single-request runs)
batch=("$clip" "$audio/give_me_a_brief_introduction_to_the_great_wall.wav" "$audio/tool-search-query-zh.wav" "$audio/real_speech.aiff")
py=/usr/bin/python3
[[ -x /usr/bin/time ]] || { echo "/usr/bin/time (GNU time) is required" >&2; exit 2; }
$py -c "import torch" 2>/dev/null || { echo "/usr/bin/python3 with torch is required" >&2; exit 2; }
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
dotnet build src/StepAudio2.Lab.Cli -c Release --nologo -v q -o artifacts/steplab >/dev/null
bench="dotnet artifacts/bench/StepAudio2.Lab.Bench.dll"
steplab="dotnet artifacts/steplab/steplab.dll"
export DOTNET_PROCESSOR_COUNT=$THREADS
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS

# ---- 1. checkpoints
if [[ ! -f "$dir/bf16/model-00004-of-00004.safetensors" ]]; then
  echo "== writing the random full-size bf16 checkpoint to $dir/bf16 (16.6 GB)" >&2
  $bench make-checkpoint --from "$shared" --out "$dir/bf16"
fi
for bits in 8 4; do
  if [[ ! -f "$dir/int$bits/config.json" ]]; then
    echo "== steplab quantize --bits $bits --recipe decoder-head8 → $dir/int$bits" >&2
    rm -rf "$dir/int$bits"
    /usr/bin/time -v -o "$tmp/quantize-int$bits.time" $steplab quantize --model "$dir/bf16" --bits "$bits" --recipe decoder-head8 --out "$dir/int$bits" >&2
    $py bench/full_size.py time "$tmp/quantize-int$bits.time" > "$dir/quantize-int$bits.json"
  fi
done

# ---- 2. decode, memory, page cache
meminfo() { awk '/^(MemTotal|MemAvailable|Cached):/ {sub(":", "", $1); printf "%s\"%s_bytes\": %.0f", (n++ ? ", " : "{"), $1, $2 * 1024} END {print "}"}' /proc/meminfo; }
run() { # run NAME FORMAT args… : one steplab transcribe under /usr/bin/time, plus load, memory and page-cache state
  local name=$1 fmt=$2; shift 2
  echo "== $name: steplab transcribe ($fmt) $*" >&2
  local load_before; load_before=$(cat /proc/loadavg)
  meminfo > "$tmp/$name.mem"
  /usr/bin/time -v -o "$tmp/$name.time" $steplab transcribe --model "$dir/$fmt" "$@" --max-tokens "$MAX_TOKENS" --json > "$tmp/$name.json"
  $py bench/full_size.py time "$tmp/$name.time" > "$tmp/$name.timejson"
  $py bench/full_size.py resident "$dir/$fmt" > "$tmp/$name.resident"
  $py - "$tmp/$name" "$load_before" "$(cat /proc/loadavg)" <<'PY'
import json, sys
p = sys.argv[1]
r = {"cli": json.load(open(p + ".json")), "time": json.load(open(p + ".timejson")), "resident_after": json.load(open(p + ".resident")),
     "meminfo_before": json.load(open(p + ".mem")), "loadavg_before": sys.argv[2], "loadavg_after": sys.argv[3]}
json.dump(r, open(p + ".run.json", "w"))
c, t = r["cli"], r["time"]
rate = c.get("decode_tokens_per_s", c.get("aggregate_decode_tokens_per_s"))
print(f"   decode {rate:.3f} tok/s · peak RSS {c['peak_rss_bytes']/1e9:.2f} GB · major faults {t['major_faults']} · "
      f"read from disk {t['fs_input_bytes']/1e9:.2f} GB · resident after {r['resident_after']['resident_fraction']:.0%} · load {sys.argv[2].split()[0]}", file=sys.stderr)
PY
}
for fmt in $FORMATS; do
  $py bench/full_size.py bytes "$dir/$fmt" > "$tmp/$fmt.bytes"
  $bench stream --threads "$THREADS" > "$tmp/$fmt.stream-before"
  $py bench/full_size.py evict "$dir/$fmt"
  run "$fmt-cold" "$fmt" "$clip"
  run "$fmt-warm" "$fmt" "$clip"
  run "$fmt-batch4" "$fmt" "${batch[@]}"
  $bench stream --threads "$THREADS" > "$tmp/$fmt.stream-after"
done

# ---- 3. encoder and encoder-shaped GEMMs against OpenBLAS (same run, same load)
if [[ "$ENCODER" == 1 ]]; then
  echo "== full-size encoder, 25 s of speech" >&2
  $bench model --threads "$THREADS" --only encoder_full --out "$tmp/encoder.json"
  echo "== f32 GEMM at encoder shapes: PyTorch+OpenBLAS, ours, PyTorch+OpenBLAS" >&2
  $py bench/torch_bench.py --threads "$THREADS" --only enc. > "$tmp/gemm-torch-1.json"
  $bench --threads "$THREADS" --only enc. --out "$tmp/gemm-ours.json"
  $py bench/torch_bench.py --threads "$THREADS" --only enc. > "$tmp/gemm-torch-2.json"
fi

$py bench/full_size.py report "$tmp/quant-full.json" "$tmp" "$dir" "$FORMATS" "$MAX_TOKENS" "$THREADS" "$((SECONDS - start))" "$ENCODER"
mkdir -p bench/results
mv "$tmp/quant-full.json" bench/results/quant-full.json
echo "wrote bench/results/quant-full.json" >&2
if [[ "${CLEAN:-0}" == 1 ]]; then rm -rf "$dir"; echo "deleted $dir" >&2; fi
