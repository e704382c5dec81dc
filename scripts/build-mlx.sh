#!/usr/bin/env bash
# Builds the native MLX libraries the "mlx" backend (src/StepAudio2.Lab/Engine/Mlx) loads through P/Invoke:
# MLX (ml-explore/mlx) and its C API mlx-c (ml-explore/mlx-c), at versions that build together.
#
#   bash scripts/build-mlx.sh            # build once; quiet and instant when the cache already holds this version
#   bash scripts/build-mlx.sh --print    # print the cache folder (no build)
#
# Result: ~/.cache/steplab/mlx-<MLX version>-c<mlx-c commit>/ with lib/libmlx.{so,dylib}, lib/libmlxc.{so,dylib},
# include/mlx/c/*.h and a STAMP file written last (a folder without STAMP is an interrupted build and is redone).
# STEPLAB_MLX_DIR points the backend at another folder of the same layout.
#
# Sources: ../shared/vendor (or $STEPLAB_VENDOR_DIR) when it holds the pinned archives (offline machines), else a
# shallow clone of the pinned tag/commit from GitHub. Platforms: Metal on macOS (Accelerate, no extra packages), CPU on
# Linux (OpenBLAS + LAPACKE from Debian). CUDA: STEPLAB_MLX_CUDA=1 adds -DMLX_BUILD_CUDA=ON; it needs the CUDA toolkit
# and network access (MLX fetches CCCL, NVTX, cudnn-frontend and CUTLASS), see docs/mlx.md.
# Build cost: ~6 min on 2 cores; it runs under `nice` with at most 2 parallel jobs (machines here are shared).
set -euo pipefail

MLX_VERSION=0.31.2
MLX_C_COMMIT=fba4470          # mlx-c v0.6.0 + 4; its CMake pins MLX v0.31.2 (0.32 does not compile with it)
JOBS=${STEPLAB_MLX_JOBS:-2}

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/steplab"
suffix=""; [[ "${STEPLAB_MLX_CUDA:-0}" == 1 ]] && suffix="-cuda"
dest="$cache_root/mlx-$MLX_VERSION-c$MLX_C_COMMIT$suffix"
stamp_text="mlx $MLX_VERSION mlx-c $MLX_C_COMMIT$suffix"

if [[ "${1:-}" == "--print" ]]; then echo "$dest"; exit 0; fi
if [[ -f "$dest/STAMP" && "$(cat "$dest/STAMP")" == "$stamp_text" ]]; then exit 0; fi

os="$(uname -s)"
case "$os" in
  Linux)
    source "$repo_root/scripts/setup.sh"
    apt_install libopenblas-dev liblapacke-dev cmake ninja-build g++
    metal=OFF; ext=so ;;
  Darwin)
    for tool in cmake ninja; do
      command -v "$tool" >/dev/null || { echo "build-mlx.sh: $tool is required (brew install cmake ninja)" >&2; exit 2; }
    done
    metal=ON; ext=dylib ;;
  *) echo "build-mlx.sh: unsupported OS $os (Linux and macOS only)" >&2; exit 2 ;;
esac
cuda=OFF; [[ -n "$suffix" ]] && cuda=ON

work="$cache_root/mlx-build-$MLX_VERSION-c$MLX_C_COMMIT$suffix"
rm -rf "$work"; mkdir -p "$work"
log="$work/build.log"
fail() { echo "build-mlx.sh: $1 failed; last lines of $log:" >&2; tail -n 30 "$log" >&2; exit 1; }
echo "building MLX $MLX_VERSION + mlx-c $MLX_C_COMMIT ($([[ $metal == ON ]] && echo Metal || echo CPU)$([[ $cuda == ON ]] && echo +CUDA)) into $dest (log: $log)"
start=$SECONDS

vendor="${STEPLAB_VENDOR_DIR:-$repo_root/../shared/vendor}"
fetch_args=()
if [[ -f "$vendor/mlx-$MLX_VERSION.tar.xz" && -f "$vendor/mlx-c-$MLX_C_COMMIT.tar.xz" \
      && -f "$vendor/fmt.tar.xz" && -f "$vendor/json-3.11.3.tar.xz" ]]; then
  for a in "mlx-$MLX_VERSION" "mlx-c-$MLX_C_COMMIT" fmt json-3.11.3; do tar xJf "$vendor/$a.tar.xz" -C "$work"; done
  mlx_src="$work/mlx-$MLX_VERSION"; mlxc_src="$work/ml-explore+mlx-c"
  # MLX fetches fmt and nlohmann/json with FetchContent: point it at the vendored copies and stay offline.
  fetch_args=(-DFETCHCONTENT_FULLY_DISCONNECTED=ON
              "-DFETCHCONTENT_SOURCE_DIR_JSON=$work/nlohmann+json" "-DFETCHCONTENT_SOURCE_DIR_FMT=$work/fmtlib+fmt")
else
  command -v git >/dev/null || { echo "build-mlx.sh: no vendored sources in $vendor and no git" >&2; exit 2; }
  git clone -q --depth 1 --branch "v$MLX_VERSION" https://github.com/ml-explore/mlx.git "$work/mlx" >>"$log" 2>&1 \
    || fail "git clone mlx v$MLX_VERSION"
  git clone -q https://github.com/ml-explore/mlx-c.git "$work/mlx-c" >>"$log" 2>&1 || fail "git clone mlx-c"
  git -C "$work/mlx-c" checkout -q "$MLX_C_COMMIT" >>"$log" 2>&1 || fail "git checkout mlx-c $MLX_C_COMMIT"
  mlx_src="$work/mlx"; mlxc_src="$work/mlx-c"
fi

# $ORIGIN rpath: libmlxc finds libmlx next to it wherever the cache folder lives.
rpath='$ORIGIN'; [[ $os == Darwin ]] && rpath='@loader_path'
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON
        "-DCMAKE_INSTALL_RPATH=$rpath" -DCMAKE_INSTALL_MESSAGE=NEVER)
nice -n 10 cmake -S "$mlx_src" -B "$work/b" "${common[@]}" "${fetch_args[@]}" \
  -DMLX_BUILD_TESTS=OFF -DMLX_BUILD_EXAMPLES=OFF -DMLX_BUILD_BENCHMARKS=OFF -DMLX_BUILD_PYTHON_BINDINGS=OFF \
  -DMLX_BUILD_METAL=$metal -DMLX_BUILD_CUDA=$cuda -DMLX_BUILD_GGUF=OFF -DMLX_BUILD_SAFETENSORS=OFF \
  "-DCMAKE_INSTALL_PREFIX=$work/inst" >>"$log" 2>&1 || fail "cmake (MLX)"
nice -n 10 ninja -C "$work/b" -j "$JOBS" >>"$log" 2>&1 || fail "ninja (MLX)"
nice -n 10 ninja -C "$work/b" install >>"$log" 2>&1 || fail "ninja install (MLX)"
nice -n 10 cmake -S "$mlxc_src" -B "$work/c" "${common[@]}" -DMLX_C_USE_SYSTEM_MLX=ON -DMLX_C_BUILD_EXAMPLES=OFF \
  "-DCMAKE_PREFIX_PATH=$work/inst" >>"$log" 2>&1 || fail "cmake (mlx-c)"
nice -n 10 ninja -C "$work/c" -j "$JOBS" >>"$log" 2>&1 || fail "ninja (mlx-c)"

# Assemble in a side folder and rename it into place, so an interrupted copy never looks complete.
stage="$dest.partial"; rm -rf "$stage"; mkdir -p "$stage/lib" "$stage/include/mlx/c"
cp -P "$work/inst/lib/"libmlx*."$ext"* "$stage/lib/"
cp -P "$work/c/"libmlxc*."$ext"* "$stage/lib/"
[[ $metal == ON ]] && cp "$work/inst/lib/mlx.metallib" "$stage/lib/" 2>/dev/null || true
cp "$mlxc_src/mlx/c/"*.h "$stage/include/mlx/c/"
echo "$stamp_text" > "$stage/STAMP"
rm -rf "$dest"; mv "$stage" "$dest"
rm -rf "$work"
echo "built MLX $MLX_VERSION + mlx-c $MLX_C_COMMIT in $(( SECONDS - start )) s: $dest"
