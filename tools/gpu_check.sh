#!/usr/bin/env bash
# The GPU cycle in one go, on a machine with an NVIDIA GPU (docs/gpu.md): configure + build the CUDA
# kernels, the CUDA backend and their tests and benchmarks, run the GPU tests, run the benchmarks, print
# short tables last. Logs go to $OUT (or $BUILD/logs); from the repository root of a clean checkout:
#   bash tools/gpu_check.sh
# Needs nvcc (CUDA 12 or later; built with 13.0), CMake >= 3.25, Ninja, a C++20 compiler, fmt, nlohmann-json
# and GoogleTest. The build is LINFER_MODELS_ONLY (core, kernels, models with the CUDA backend: whole-model
# tests and the CPU-vs-GPU model benchmark), which also needs xxhash: from the system, or from Debian
# packages in $DEBS (default .device/debs: `apt-get download libxxhash-dev libxxhash0` on a Debian machine),
# unpacked here with dpkg -x. Without xxhash it falls back to LINFER_KERNELS_ONLY (kernels only).
# The tokenizer, runtime, server and CLI are not built (PCRE2, ICU, Boost, hiredis are not needed).
# Environment: BUILD (default build-gpu), CUDA_ARCH (default 90a), NCU=0 skips the ncu profiles,
# SANITIZE=0 skips compute-sanitizer (SANITIZE_TESTS / SANITIZE_TOOLS narrow it: default every GPU test,
# memcheck and racecheck; SANITIZE_TIMEOUT seconds each, default 300), DECODE_BENCH=0 skips gpu_decode,
# MODEL_SPEED="PROMPT GEN REPS" (default "512 128 3"), WHOLE_MODELS="kimi_linear qwen3next" (random ~1B
# models of those presets made here, timed on CUDA alone and, where python3 has torch + transformers,
# with transformers on the same GPU: tools/hf_model_speed.py; WHOLE_MODELS= skips them), HF_SPEED=0 skips
# transformers, MAMBA2_SPEED=0 skips the Mamba2 CPU-vs-GPU run.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build-gpu}
LOG=${OUT:-$BUILD/logs}
mkdir -p "$LOG"
NVCC=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)

{
  date -u '+%Y-%m-%d %H:%M UTC'
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem --format=csv
  "$NVCC" --version | tail -2
  cmake --version | head -1
  c++ --version | head -1
  nproc
} 2>&1 | tee "$LOG/env.txt"

step() {  # step NAME LOGFILE COMMAND...: run, keep the log, show its tail and stop on failure
  local name=$1 log=$2
  shift 2
  local t0=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    tail -60 "$log"
    echo "gpu_check: $name failed (log: $log)"
    exit 1
  fi
  echo "gpu_check: $name ok ($((SECONDS - t0)) s)"
}

# xxhash for the models build: the system's, or carried Debian packages (with pkgconf, where the machine
# has no pkg-config: `apt-get download pkgconf-bin libpkgconf3`).
mode=models
if ! pkg-config --exists libxxhash 2>/dev/null; then
  debs=${DEBS:-.device/debs}
  if ls "$debs"/libxxhash*.deb >/dev/null 2>&1; then
    prefix=$PWD/$BUILD/prefix
    mkdir -p "$prefix"
    for f in "$debs"/*.deb; do dpkg -x "$f" "$prefix"; done
    find "$prefix" -name '*.pc' -exec sed -i "s|^prefix=/usr|prefix=$prefix/usr|" {} +
    export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
    export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    command -v pkg-config >/dev/null || export PKG_CONFIG=$prefix/usr/bin/pkgconf  # CMake's FindPkgConfig reads it
    echo "gpu_check: xxhash from $debs ($("${PKG_CONFIG:-pkg-config}" --modversion libxxhash))"
  else
    echo "gpu_check: no xxhash (system or $debs/*.deb): kernels only, no whole-model tests"
    mode=kernels
  fi
fi
only=$([ $mode = models ] && echo -DLINFER_MODELS_ONLY=ON || echo -DLINFER_KERNELS_ONLY=ON)

step configure "$LOG/configure.log" cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLINFER_CUDA=ON "$only" -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}"
tests=$(for f in tests/cuda/test_*.cpp; do basename "$f" .cpp; done
        [ $mode = models ] && for f in tests/cuda/models/test_*.cpp; do basename "$f" .cpp; done)
benches=$(for f in bench/cuda/*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done
          [ $mode = models ] && for f in bench/cuda/models/*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done)
# shellcheck disable=SC2086  # one target per word
step build "$LOG/build.log" ninja -C "$BUILD" $tests $benches
# A failing test does not stop the benchmarks (one device call should bring back both); it fails the script.
status=0
if ! ctest --test-dir "$BUILD" -L cuda --output-on-failure >"$LOG/tests.log" 2>&1; then
  grep -E "Failure|actual|Which is|Expected|step|slots|rror|FAILED|tests passed" "$LOG/tests.log" | head -80
  echo "gpu_check: GPU tests FAILED (log: $LOG/tests.log)"
  status=1
elif grep -q "(Skipped)" "$LOG/tests.log"; then
  echo "gpu_check: GPU tests were skipped: no usable CUDA device (log: $LOG/tests.log)"
  status=1
fi
grep -E "tests passed" "$LOG/tests.log"
[ $mode = models ] && "$BUILD/test_cuda_models" --gtest_filter='*LogitsMatch*' 2>&1 | grep "worst relative"
# Out-of-bounds accesses and shared-memory races, where compute-sanitizer works (not under gVisor).
if [ "${SANITIZE:-1}" != 0 ] && command -v compute-sanitizer >/dev/null; then
  for t in ${SANITIZE_TESTS:-$tests}; do
    for tool in ${SANITIZE_TOOLS:-memcheck racecheck}; do
      echo "== $tool $t" >>"$LOG/sanitizer.log"
      timeout "${SANITIZE_TIMEOUT:-300}" compute-sanitizer --tool "$tool" --error-exitcode 3 "$BUILD/$t" \
        >>"$LOG/sanitizer.log" 2>&1
      rc=$?  # 124: ran past SANITIZE_TIMEOUT seconds (reported, not a failure)
      echo "gpu_check: compute-sanitizer $tool $t: exit $rc"
      [ $rc = 3 ] && status=1
    done
  done
fi
[ "${DECODE_BENCH:-1}" != 0 ] && step bench "$LOG/bench.txt" "$BUILD/gpu_decode"
# Where the decode kernels' time goes (hardware counters; ncu works on Firecracker machines, not gVisor):
# one profiled call per case, clocks left as they are.
if [ "${NCU:-1}" != 0 ] && [ "${DECODE_BENCH:-1}" != 0 ] && command -v ncu >/dev/null; then
  for kase in "gdn 256" "gdn_layer 256" "kda_layer 256" "gdn_layer 1"; do
    echo "== $kase" >>"$LOG/ncu.txt"
    # shellcheck disable=SC2086  # KERNEL B
    timeout 120 ncu --clock-control none --launch-skip 10 --launch-count 1 --section SpeedOfLight \
      --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats \
      "$BUILD/gpu_decode" $kase >>"$LOG/ncu.txt" 2>&1 || echo "gpu_check: ncu $kase failed (log: $LOG/ncu.txt)"
  done
  grep -E "^== |  Duration|DRAM Throughput|(Theoretical|Achieved) Occupancy|Registers Per|Block Size|Grid Size" \
    "$LOG/ncu.txt" || true
fi
# Whole-model speed, CPU and GPU side by side: a random Mamba2 of mamba2-130m's shape where python3 has
# numpy (tools/make_random_model.py), else the tiny golden fixture.
if [ $mode = models ] && [ "${MAMBA2_SPEED:-1}" != 0 ]; then
  model=tests/golden/mamba2_b
  if python3 -c "import numpy" 2>/dev/null &&
     python3 tools/make_random_model.py mamba2 "$BUILD/mamba2-random" >"$LOG/make_model.log" 2>&1; then
    model=$BUILD/mamba2-random
  fi
  # shellcheck disable=SC2086  # PROMPT GEN REPS
  step model_speed "$LOG/model_speed.txt" "$BUILD/gpu_model_speed" "$model" ${MODEL_SPEED:-512 128 3}
fi
if [ $mode = models ]; then
  # Kimi-Linear- and Qwen3-Next-shaped random models (~1B, MoE): generated here (2 GB each, not carried),
  # linfer on CUDA only (their CPU runs take minutes), then transformers on the same folder and GPU.
  hf=0
  [ "${HF_SPEED:-1}" != 0 ] && python3 -c "import torch, transformers" 2>/dev/null && hf=1
  for preset in ${WHOLE_MODELS-kimi_linear qwen3next}; do
    dir=$BUILD/$preset-random
    [ -f "$dir/config.json" ] ||
      step "make $preset" "$LOG/make_$preset.log" python3 tools/make_random_model.py "$preset" "$dir"
    # shellcheck disable=SC2086  # PROMPT GEN REPS
    MODEL_SPEED_DEVICES=cuda step "speed $preset" "$LOG/speed_$preset.txt" "$BUILD/gpu_model_speed" "$dir" \
      ${MODEL_SPEED:-512 128 3}
    if [ $hf = 1 ]; then
      # shellcheck disable=SC2086
      PYTHONUNBUFFERED=1 timeout "${HF_TIMEOUT:-300}" python3 tools/hf_model_speed.py "$dir" ${MODEL_SPEED:-512 128 3} \
        >"$LOG/hf_$preset.txt" 2>&1 || echo "gpu_check: transformers on $preset failed (log: $LOG/hf_$preset.txt)"
    fi
  done
fi
[ "${DECODE_BENCH:-1}" != 0 ] && cat "$LOG/bench.txt"
if [ $mode = models ]; then
  cat "$LOG/model_speed.txt" 2>/dev/null
  for preset in ${WHOLE_MODELS-kimi_linear qwen3next}; do
    cat "$LOG/speed_$preset.txt" 2>/dev/null
    grep -E "^torch|parameters|^\| " "$LOG/hf_$preset.txt" 2>/dev/null | grep -v "^|---" | tail -6
  done
fi
exit $status
