#!/usr/bin/env bash
# Builds what the GPU machine needs to test and benchmark the CUDA backend, and says how to run it there.
#
# The build machines have no GPU and the GPU machine has no .NET: this publishes the GPU test runner
# (tests/StepAudio2.Lab.GpuTests) self-contained and trimmed for linux-x64, packs it with the PyTorch side of the
# benchmark (bench/cuda_torch_bench.py) and the device-side script into DEST (default: ../main/.gpu, the folder the
# device tool carries), and prints the command to run there. On the device, .gpu/device.sh writes everything to $OUT:
# cuda-ops.json, cuda-parity.json, cuda-bench.json, cuda-model.json, cuda-token2wav.json, cuda-torch.json,
# cuda-token2wav-torch.json, the logs and nvidia-smi's line. One device command may run 10 minutes: run the sections in
# two calls (ops,parity,bench,torch, then model,t2w).
#
# Usage: bash scripts/gpu.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-../main/.gpu}
PUB=artifacts/gpu/steplab-gpu-tests
rm -rf "$PUB"
dotnet publish tests/StepAudio2.Lab.GpuTests -c Release -r linux-x64 --self-contained -p:PublishTrimmed=true \
  -p:SuppressTrimAnalysisWarnings=true --nologo -v q -o "$PUB"
# not needed on the device: ONNX Runtime (voice-prompt front end only) and the debugger's helpers
rm -f "$PUB"/libonnxruntime*.so "$PUB"/libmscordaccore.so "$PUB"/libmscordbi.so "$PUB"/*.pdb "$PUB"/*.xml
mkdir -p "$DEST"
tar -C artifacts/gpu -cJf "$DEST/steplab-gpu.tar.xz" steplab-gpu-tests
cp bench/cuda_torch_bench.py scripts/ncu_summary.py "$DEST/"
# the full-size model benchmark builds random weights from the real config and index (no weights travel); a real clip
# is the speech of its 25 s input; token2wav's random folder is written on the device from the real flow.yaml
shared=../shared/models/step-audio-2-mini
mkdir -p "$DEST/model"
cp "$shared/config.json" "$shared/model.safetensors.index.json" "$DEST/model/"
# the tokenizer files, for the CLI section (`steplab trace --model reference-data/tiny --tokenizer .gpu/model …`)
cp "$shared"/{vocab.json,merges.txt,tokenizer_config.json,added_tokens.json,special_tokens_map.json} "$DEST/model/"
cp ../shared/audio/real_speech.aiff "$DEST/real_speech.aiff"
cp "$shared/token2wav/flow.yaml" "$DEST/flow.yaml"
cp ../shared/audio/default_female.wav "$DEST/speech.wav"
cp reference-data/fixtures/prompt_features/mel24k.safetensors "$DEST/mel24k.safetensors"
cat > "$DEST/device.sh" <<'DEVICE'
#!/usr/bin/env bash
# Runs on the GPU machine from the repository root: unpacks the runner, finds the CUDA libraries of the PyTorch
# install (nvidia/cu13/lib, nvidia/*/lib), runs the op checks + tiny parity, the benchmarks, and PyTorch's side.
# Usage: bash .gpu/device.sh [SECTIONS] (default: all)   OUT must be set (the device tool sets it).
set -uo pipefail
OUT=${OUT:-/tmp/steplab-out}; mkdir -p "$OUT"
WANT=${1:-ops,parity,bench,torch}
mkdir -p /tmp/steplab && tar -xJf .gpu/steplab-gpu.tar.xz -C /tmp/steplab
NV=$(python3 -c "import nvidia, os; print(os.path.dirname(nvidia.__file__))" 2>/dev/null || true)
if [ -n "$NV" ]; then export STEPLAB_CUDA_LIBDIR=$(ls -d "$NV"/cu13/lib "$NV"/*/lib 2>/dev/null | tr '\n' ':'); fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/nvidia-smi.txt"
RUN=/tmp/steplab/steplab-gpu-tests/steplab-gpu-tests
status=0
case ",$WANT," in *,ops,*|*,parity,*)
  S=$(echo "$WANT" | tr ',' '\n' | grep -E '^(ops|parity)$' | paste -sd, -)
  timeout 150 "$RUN" --out "$OUT" --tiny reference-data/tiny --sections "$S" || status=1 ;;
esac
case ",$WANT," in *,bench,*|*,smallbench,*)
  S=$(echo "$WANT" | tr ',' '\n' | grep -E 'bench$' | paste -sd, -)
  timeout 120 "$RUN" --out "$OUT" --sections "$S" || status=1 ;;
esac
case ",$WANT," in *,cli,*)
  # the README's trace example through the published CLI on the GPU, fp32 then bf16, each compared with the reference dump
  for prec in fp32 bf16; do
    timeout 120 "$RUN" steplab trace --model reference-data/tiny --tokenizer .gpu/model --audio .gpu/real_speech.aiff \
      --instruction "Please repeat what you hear in English:" --greedy 8 --backend cuda --precision $prec --out "$OUT/cli-trace-$prec.safetensors" \
      > "$OUT/cli-trace-$prec.log" 2>&1; echo "steplab trace --backend cuda --precision $prec: exit $?" | tee -a "$OUT/cli.txt"
    tier=auto; [ "$prec" = bf16 ] && tier=bf16   # bf16 compute is held to the bf16 tier, fp32 to the default rules
    timeout 60 "$RUN" steplab compare "$OUT/cli-trace-$prec.safetensors" reference-data/tiny/dumps/llm-instruction.safetensors --tier $tier \
      > "$OUT/cli-compare-$prec.txt" 2>&1; c=$?; echo "steplab compare --tier $tier (cuda $prec vs reference dump): exit $c" | tee -a "$OUT/cli.txt"
    # bf16: reported only — the bf16 tier's elementwise rule fails PyTorch's own bf16 run too (make_bf16_reference.py);
    # the parity section holds bf16 to rel-L2 per path and the ids rule
    [ "$prec" = fp32 ] && [ $c -ne 0 ] && status=1
    rm -f "$OUT/cli-trace-$prec.safetensors"   # the device tool returns a limited number of files; the compare keeps the verdict
  done
  tail -5 "$OUT/cli-compare-fp32.txt" ;;
esac
case ",$WANT," in *,model,*)
  timeout 300 "$RUN" --out "$OUT" --sections model --model .gpu/model --wav .gpu/speech.wav || status=1 ;;
esac
case ",$WANT," in *,qvariants,*)
  # the 4/8-bit GEMVs' K split (STEPLAB_QGEMV_SLICES) timed side by side on the int4 model, same call, same card
  for sl in 1 2 4; do
    STEPLAB_QGEMV_SLICES=$sl timeout 120 "$RUN" --out /tmp/steplab-qv --sections model --model .gpu/model --wav .gpu/speech.wav \
      --weights int4 --steps 24 > "$OUT/qvariant-slices$sl.log" 2>&1
    echo "QGEMV_SLICES=$sl: $(grep -o 'decode [0-9.]* tok/s[^;]*;[^;]*;[^;]*; host busy [0-9.]* ms and waiting for the device [0-9.]* ms' "$OUT/qvariant-slices$sl.log" | head -1)" | tee -a "$OUT/qvariants.txt"
  done ;;
esac
case ",$WANT," in *,ncudetail,*)
  # why the 4-bit GEMVs stream below the bf16 ones: launch, occupancy, throughput and warp-stall sections of a few launches
  NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  STEPLAB_PROFILE_STEPS=1 timeout 200 "$NCU" --profile-from-start off --kernel-name regex:'qgemv4|gemv_bf16_swiglu' --launch-count 6 \
    --section LaunchStats --section Occupancy --section SpeedOfLight --section MemoryWorkloadAnalysis --section WarpStateStats \
    "$RUN" --out /tmp/steplab-ncud --sections model --model .gpu/model --wav .gpu/speech.wav --weights both --steps 6 > "$OUT/ncu-detail-gemv.txt" 2>&1
  grep -E '^  [a-z_0-9]+.*\(|Registers Per Thread|Achieved Occupancy|Theoretical Occupancy|Memory Throughput|DRAM Throughput|Duration|Stall|Block Limit' "$OUT/ncu-detail-gemv.txt" | head -80 ;;
esac
case ",$WANT," in *,ncu,*)
  # Nsight Compute over two decoding steps of each model (the runner opens the profiler range for its last two steps)
  NCU=$(command -v ncu || echo /usr/local/cuda/bin/ncu)
  for w in bf16 int4; do
    STEPLAB_PROFILE_STEPS=2 timeout 280 "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file "$OUT/ncu-decode-$w.csv" \
      "$RUN" --out /tmp/steplab-ncu-$w --sections model --model .gpu/model --wav .gpu/speech.wav --weights $w --steps 8 > "$OUT/ncu-run-$w.log" 2>&1
    python3 .gpu/ncu_summary.py "$OUT/ncu-decode-$w.csv" 2 "full-size $w decoding (ncu)" > "$OUT/ncu-decode-$w.txt" 2>&1
    head -25 "$OUT/ncu-decode-$w.txt"
  done
  STEPLAB_PROFILE_ENCODER=1 timeout 200 "$NCU" --profile-from-start off --metrics gpu__time_duration.sum --csv --log-file "$OUT/ncu-encoder-bf16.csv" \
    "$RUN" --out /tmp/steplab-ncu-enc --sections model --model .gpu/model --wav .gpu/speech.wav --weights bf16 --steps 2 > "$OUT/ncu-run-encoder.log" 2>&1
  python3 .gpu/ncu_summary.py "$OUT/ncu-encoder-bf16.csv" 1 "full-size bf16 encoder + adaptor, 25 s (ncu; one pass)" > "$OUT/ncu-encoder-bf16.txt" 2>&1
  head -25 "$OUT/ncu-encoder-bf16.txt" ;;
esac
case ",$WANT," in *,t2w,*)
  timeout 150 python3 bench/make_token2wav_bench.py /tmp/steplab-t2w --yaml .gpu/flow.yaml --mel .gpu/mel24k.safetensors \
    --torch-json "$OUT/cuda-token2wav-torch.json" --device cuda 2>&1 | tail -5 || status=1
  timeout 150 "$RUN" --out "$OUT" --sections t2w --t2w /tmp/steplab-t2w || status=1 ;;
esac
case ",$WANT," in *,torch,*)
  timeout 120 python3 .gpu/cuda_torch_bench.py "$OUT/cuda-torch.json" .gpu/model/config.json 2>&1 | tail -5 || status=1 ;;
esac
# the device tool returns a limited number of files: everything goes back as one archive (plus the summary files)
tar czf /tmp/steplab-gpu-results.tgz -C "$OUT" . && find "$OUT" -type f ! -name 'cuda-model.json' ! -name 'cuda-ops-parity.log' -delete && mv /tmp/steplab-gpu-results.tgz "$OUT/"
exit $status
DEVICE
echo "packed $(du -h "$DEST/steplab-gpu.tar.xz" | cut -f1) into $DEST"
echo "run on the device (from the main checkout, after: touch /work/notes/gpu.lock && bash /work/notes/gpu_hide.sh):"
echo "  run(command='bash .gpu/device.sh ops,parity,bench,torch', carry=['.gpu'], timeout_s=600)"
