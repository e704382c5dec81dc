#!/usr/bin/env bash
# Portable-kernel benchmark (issue 15): the f32 GEMM and bf16/f32 GEMV shapes of bench/shapes.json on the machine's best
# path (AVX2/AVX-512) and on the portable Vector128 path in one process, alternating case by case (--portable: the
# portable kernels forced with Gemm.ForcePath, JIT-compiled with this CPU's VEX/FMA encodings), then once more with
# DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 (the same kernels as an SSE-only x86 machine compiles them).
# Writes bench/results/gemm-portable.json only when both runs complete (never a partial file).
# Usage: bash bench/run_portable.sh      env: THREADS (2)
set -euo pipefail
cd "$(dirname "$0")/.."
THREADS=${THREADS:-2}
command -v dotnet >/dev/null || { echo "the .NET 10 SDK is required (dotnet not on PATH)" >&2; exit 2; }
dotnet build bench/StepAudio2.Lab.Bench -c Release --nologo -v q -o artifacts/bench >/dev/null
mkdir -p bench/results
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
echo "== best and portable paths" >&2
dotnet artifacts/bench/StepAudio2.Lab.Bench.dll --threads "$THREADS" --portable --out "$tmp/both.json"
echo "== portable path with AVX2/AVX-512 disabled" >&2
DOTNET_EnableAVX2=0 DOTNET_EnableAVX512=0 dotnet artifacts/bench/StepAudio2.Lab.Bench.dll --threads "$THREADS" --out "$tmp/sse.json"
/usr/bin/python3 - "$tmp/both.json" "$tmp/sse.json" "$((SECONDS - start))" > "$tmp/gemm-portable.json" <<'PY'
import json, sys
both, sse = (json.load(open(p)) for p in sys.argv[1:3])
assert both["machine"]["gemm_path"] != "Portable" and sse["machine"]["gemm_path"] == "Portable", "unexpected gemm paths"
sse_by_name = {e["name"]: e for e in sse["entries"]}
entries = []
for e in both["entries"]:
    s = sse_by_name[e["name"]]
    m, n, k = e["shape"]
    flop = 2.0 * m * n * k
    # cpu_ms (process CPU time per call, all threads) does not count time-slices lost to other builds, so the
    # *_cpu_gflops (GFLOP per CPU-second, i.e. per busy core) and cpu ratios compare the kernels on a loaded machine.
    row = {"name": e["name"], "op": e["op"], "shape": e["shape"],
           "best_ms": e["ours_ms"], "best_cpu_ms": e["ours_cpu_ms"], "best_gflops": e["gflops"], "best_gbps": e["gbps"],
           "best_cpu_gflops": round(flop / (e["ours_cpu_ms"] * 1e6), 2),
           "portable_ms": e["portable_ms"], "portable_cpu_ms": e["portable_cpu_ms"], "portable_gflops": e["portable_gflops"],
           "portable_gbps": e["portable_gbps"], "portable_cpu_gflops": round(flop / (e["portable_cpu_ms"] * 1e6), 2),
           "portable_noavx2_ms": s["ours_ms"], "portable_noavx2_cpu_ms": s["ours_cpu_ms"], "portable_noavx2_gflops": s["gflops"],
           "portable_noavx2_gbps": s["gbps"], "portable_noavx2_cpu_gflops": round(flop / (s["ours_cpu_ms"] * 1e6), 2),
           "portable_vs_best": round(e["ours_ms"] / e["portable_ms"], 3),
           "portable_vs_best_cpu": round(e["ours_cpu_ms"] / e["portable_cpu_ms"], 3),
           "portable_noavx2_vs_best": round(e["ours_ms"] / s["ours_ms"], 3),
           "portable_noavx2_vs_best_cpu": round(e["ours_cpu_ms"] / s["ours_cpu_ms"], 3)}
    for k in ("bw_fraction", "portable_bw_fraction"):
        if k in e: row[k] = e[k]
    if "bw_fraction" in s: row["portable_noavx2_bw_fraction"] = s["bw_fraction"]
    entries.append(row)
print(json.dumps({"benchmark": "f32 GEMM / bf16+f32 GEMV, best vs portable path (bench/run_portable.sh)",
                  "note": "shared 2-core machine, other builds running: numbers are noisy. portable = Vector128 kernels "
                          "forced in the same process as best; portable_noavx2 = same kernels with DOTNET_EnableAVX2=0 "
                          "DOTNET_EnableAVX512=0 (SSE encodings, as on x86 without AVX2)",
                  "wall_s": int(sys.argv[3]), "loadavg_at_start": both["machine"]["loadavg_at_start"],
                  "loadavg_at_start_noavx2": sse["machine"]["loadavg_at_start"],
                  "machine": both["machine"], "machine_noavx2": sse["machine"],
                  "stream_read_gbps": both["stream_read_gbps"], "stream_read_gbps_noavx2": sse["stream_read_gbps"],
                  "entries": entries}, indent=2))
PY
mv "$tmp/gemm-portable.json" bench/results/gemm-portable.json
echo "wrote bench/results/gemm-portable.json" >&2
