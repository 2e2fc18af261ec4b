#!/usr/bin/env bash
# The GPU cycle in one go, on a machine with an NVIDIA GPU (docs/gpu.md): configure + build the CUDA
# kernels, the CUDA backend, their tests and benchmarks and (where the libraries are there or carried)
# the whole `linfer` CLI with the serving test, run the GPU tests, run the benchmarks, print short tables
# last. Logs go to $OUT (or $BUILD/logs); from the repository root of a clean checkout:
#   bash tools/gpu_check.sh
# Needs nvcc (CUDA 12 or later; built with 13.0), CMake >= 3.25, Ninja, a C++20 compiler, fmt, nlohmann-json
# and GoogleTest. Libraries the machine lacks come from Debian packages in $DEBS (default .device/debs):
# gpu-libs.tar.xz, made on a Debian 12 machine by tools/gpu_libs.sh (all of them, trimmed to ~11 MB), or
# the .debs themselves (`apt-get download libxxhash-dev libxxhash0 pkgconf-bin libpkgconf3 libpcre2-dev
# libpcre2-8-0 libicu-dev libicu72 libhiredis-dev libhiredis0.14 libboost1.74-dev libhwy-dev`, 30 MB),
# unpacked here into $BUILD/prefix, runtime libraries included (Debian's ICU 72 beside the machine's own
# ICU 74: another soname). The build mode follows what is there: full (every library: the CLI,
# `linfer serve --device cuda` end to end, tests/e2e/test_serve_cuda, serving speed), models (xxhash, and
# Highway's headers where carried — without them the CPU side's float matmul runs scalar code:
# LINFER_MODELS_ONLY, whole-model tests and benchmarks), kernels (nothing: LINFER_KERNELS_ONLY). MODE=models
# or MODE=kernels asks for less.
# Environment: BUILD (default build-gpu), CUDA_ARCH (default 90a), NCU=0 skips the ncu profiles,
# SANITIZE=0 skips compute-sanitizer (SANITIZE_TESTS / SANITIZE_TOOLS narrow it: default every GPU test,
# memcheck and racecheck; SANITIZE_TIMEOUT seconds each, default 300), DECODE_BENCH=0 skips gpu_decode,
# MOE_BENCH=0 skips gpu_moe (the routed experts' tensor-core products against their GEMV by rows per expert),
# PREFILL_BENCH=0 skips gpu_prefill (chunked GDN, KDA and Mamba2 prefill vs token by token, T = 8K and 32K)
# and, where python3 has torch, tools/sdpa_vs_chunked.py (the chunked prefill against PyTorch SDPA; SDPA=0 skips it),
# FLA_BENCH=0 skips tools/fla_side_by_side.py (flash-linear-attention's kernels timed like ours; runs where FLA,
# default .device/py, holds fla's and einops' Python sources and python3 has torch and Triton),
# MODEL_SPEED="PROMPT GEN REPS" (default "512 128 3"), WHOLE_MODELS="kimi_linear qwen3next" (random ~1B
# models of those presets made here, timed on CUDA alone and, where python3 has torch + transformers,
# with transformers on the same GPU: tools/hf_model_speed.py; WHOLE_MODELS= skips them), HF_SPEED=0 skips
# transformers, MAMBA2_SPEED=0 skips the Mamba2 CPU-vs-GPU run, OP_BY_OP=0 skips the second run of each
# whole-model benchmark with LINFER_CUDA_GRAPHS=0 (decode steps op by op instead of CUDA graphs); full mode: SERVE_SPEED=0 skips
# tools/serve_speed.py on the random Kimi model (SERVE_PREFILL="4096,16384" prompt lengths on the GPU,
# SERVE_PREFILL_CPU="4096" on the CPU, SERVE_DECODE="1,8,32" concurrencies on the GPU, SERVE_DECODE_CPU="8").
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

# Libraries: the system's, else carried Debian packages (pkgconf too where the machine has no pkg-config).
debs=${DEBS:-.device/debs}
prefix=$PWD/$BUILD/prefix
missing=() lacking=()
have_pc() { pkg-config --exists "$1" 2>/dev/null; }
command -v pkg-config >/dev/null || missing+=(pkgconf-bin libpkgconf3)
have_pc libxxhash || missing+=(libxxhash-dev libxxhash0)
have_pc libpcre2-8 || missing+=(libpcre2-dev libpcre2-8-0)
have_pc icu-uc || missing+=(libicu-dev libicu72)
have_pc hiredis || missing+=(libhiredis-dev libhiredis0.14)
[ -f /usr/include/boost/beast.hpp ] || missing+=(libboost1.74-dev)
[ -f /usr/include/hwy/highway.h ] || missing+=(libhwy-dev)
mkdir -p "$prefix"
archive=$debs/gpu-libs.tar.xz  # every package below, trimmed (tools/gpu_libs.sh)
unpacked=0
for p in "${missing[@]}"; do
  f=$(ls "$debs/${p}"_*.deb 2>/dev/null | head -1)
  if [ -n "$f" ]; then
    dpkg -x "$f" "$prefix"
  elif [ -f "$archive" ]; then
    if [ $unpacked = 0 ]; then
      { command -v xz >/dev/null && tar -C "$prefix" -xJf "$archive"; } || python3 -m tarfile -e "$archive" "$prefix"
      unpacked=1
    fi
  else
    lacking+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  # Debian's .pc files name /usr (hiredis's libdir is /usr/lib, its library is in the multiarch folder).
  find "$prefix" -name '*.pc' -exec sed -i -E -e "s#^(prefix|exec_prefix|includedir|libdir)( ?= ?)/usr#\1\2$prefix/usr#" \
    -e "s#^libdir=$prefix/usr/lib\$#libdir=$prefix/usr/lib/x86_64-linux-gnu#" {} +
  export PKG_CONFIG_PATH=$prefix/usr/lib/x86_64-linux-gnu/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
  export LD_LIBRARY_PATH=$prefix/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
  command -v pkg-config >/dev/null || export PKG_CONFIG=$prefix/usr/bin/pkgconf  # CMake's FindPkgConfig reads it
  echo "gpu_check: the machine lacks ${missing[*]}; carried from $debs: all but ${lacking[*]:-none}"
fi
mode=${MODE:-full}
lacks() { for p in "$@"; do [[ " ${lacking[*]} " == *" $p "* ]] && return 0; done; return 1; }
if [ "$mode" = full ] && lacks libpcre2-dev libicu-dev libhiredis-dev libboost1.74-dev libhwy-dev; then
  echo "gpu_check: without ${lacking[*]}: no CLI, models build only"
  mode=models
fi
if [ "$mode" != kernels ] && lacks libxxhash-dev; then
  echo "gpu_check: no xxhash (system or $debs/*.deb): kernels only, no whole-model tests"
  mode=kernels
fi
case $mode in
  full) only=(-DLINFER_TEST_DIRS=e2e "-DCMAKE_PREFIX_PATH=$prefix/usr") ;;  # Boost and Highway headers too
  models) only=(-DLINFER_MODELS_ONLY=ON "-DCMAKE_PREFIX_PATH=$prefix/usr") ;;  # Highway headers, where carried
  *) only=(-DLINFER_KERNELS_ONLY=ON) ;;
esac

# A build directory configured for another mode keeps that mode's cached findings (Highway found under a prefix
# this mode does not pass, say): configure it afresh.
[ -f "$BUILD/gpu_check_mode" ] && [ "$(cat "$BUILD/gpu_check_mode")" != "$mode" ] &&
  rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
echo "$mode" >"$BUILD/gpu_check_mode"
step configure "$LOG/configure.log" cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLINFER_CUDA=ON "${only[@]}" -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}"
models=$([ $mode = kernels ] && echo 0 || echo 1)
tests=$(for f in tests/cuda/test_*.cpp; do basename "$f" .cpp; done
        [ $models = 1 ] && for f in tests/cuda/models/test_*.cpp; do basename "$f" .cpp; done)
benches=$(for f in bench/cuda/*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done
          [ $models = 1 ] && for f in bench/cuda/models/*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done)
cli=$([ $mode = full ] && echo linfer test_serve_cuda)
# shellcheck disable=SC2086  # one target per word
step build "$LOG/build.log" ninja -C "$BUILD" $tests $benches $cli
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
# Full mode: the serving test (GPU prefill node -> CPU decode node, and serve --device cuda, against an
# all-CPU node on the golden fixtures).
if [ $mode = full ]; then
  "$BUILD/test_serve_cuda" >"$LOG/serve_test.log" 2>&1
  rc=$?
  grep -E "^\[ +(OK|FAILED|SKIPPED|PASSED) " "$LOG/serve_test.log"
  if [ $rc != 0 ] || grep -q "SKIPPED \]" "$LOG/serve_test.log"; then
    grep -E "Failure|Expected|Which is|actual|differs|skip" "$LOG/serve_test.log" | head -40
    echo "gpu_check: serving test FAILED or skipped (log: $LOG/serve_test.log)"
    status=1
  fi
fi
[ $models = 1 ] && "$BUILD/test_cuda_models" --gtest_filter='*LogitsMatch*' 2>&1 | grep "worst relative"
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
[ "${MOE_BENCH:-1}" != 0 ] && step "moe bench" "$LOG/moe_bench.txt" "$BUILD/gpu_moe"
# the chunked prefill kernel is new: a failure here is reported without stopping the cycle
[ "${PREFILL_BENCH:-1}" != 0 ] && { "$BUILD/gpu_prefill" >"$LOG/prefill_bench.txt" 2>&1 ||
  { status=1; echo "gpu_check: gpu_prefill failed (log: $LOG/prefill_bench.txt)"; }; }
[ "${PREFILL_BENCH:-1}" != 0 ] && [ "${SDPA:-1}" != 0 ] && python3 -c "import torch" 2>/dev/null && {
  PYTHONUNBUFFERED=1 timeout 300 python3 tools/sdpa_vs_chunked.py "$BUILD/gpu_prefill" >"$LOG/sdpa.txt" 2>&1 ||
    echo "gpu_check: sdpa_vs_chunked failed (log: $LOG/sdpa.txt)"; }
# flash-linear-attention's decode and chunked prefill kernels on the same GPU, where its source is carried
# (FLA: a folder holding fla/ and einops/, default .device/py; never committed).
fla=${FLA:-.device/py}
[ "${FLA_BENCH:-1}" != 0 ] && [ -d "$fla/fla" ] && python3 -c "import torch, triton" 2>/dev/null && {
  PYTHONPATH=$fla${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 timeout 600 python3 tools/fla_side_by_side.py \
    >"$LOG/fla.txt" 2>&1 || echo "gpu_check: fla_side_by_side failed (log: $LOG/fla.txt)"; }
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
if [ $models = 1 ] && [ "${MAMBA2_SPEED:-1}" != 0 ]; then
  model=tests/golden/mamba2_b
  if python3 -c "import numpy" 2>/dev/null &&
     python3 tools/make_random_model.py mamba2 "$BUILD/mamba2-random" >"$LOG/make_model.log" 2>&1; then
    model=$BUILD/mamba2-random
  fi
  # shellcheck disable=SC2086  # PROMPT GEN REPS
  step model_speed "$LOG/model_speed.txt" "$BUILD/gpu_model_speed" "$model" ${MODEL_SPEED:-512 128 3}
  # shellcheck disable=SC2086
  [ "${OP_BY_OP:-1}" != 0 ] && LINFER_CUDA_GRAPHS=0 MODEL_SPEED_DEVICES=cuda step "model_speed op by op" \
    "$LOG/model_speed_op_by_op.txt" "$BUILD/gpu_model_speed" "$model" ${MODEL_SPEED:-512 128 3}
fi
if [ $models = 1 ]; then
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
    # shellcheck disable=SC2086
    [ "${OP_BY_OP:-1}" != 0 ] && LINFER_CUDA_GRAPHS=0 MODEL_SPEED_DEVICES=cuda step "speed $preset op by op" \
      "$LOG/speed_${preset}_op_by_op.txt" "$BUILD/gpu_model_speed" "$dir" ${MODEL_SPEED:-512 128 3}
    if [ $hf = 1 ]; then
      # shellcheck disable=SC2086
      PYTHONUNBUFFERED=1 timeout "${HF_TIMEOUT:-300}" python3 tools/hf_model_speed.py "$dir" ${MODEL_SPEED:-512 128 3} \
        >"$LOG/hf_$preset.txt" 2>&1 || echo "gpu_check: transformers on $preset failed (log: $LOG/hf_$preset.txt)"
    fi
  done
fi
# Serving speed (full mode): a prefill node's tokens/s and time to last byte for long prompts, and serve's
# decode tokens/s at a few concurrencies, on the random Kimi-shaped model, GPU and CPU.
if [ $mode = full ] && [ "${SERVE_SPEED:-1}" != 0 ]; then
  dir=$BUILD/kimi_linear-random
  [ -f "$dir/config.json" ] ||
    step "make kimi_linear" "$LOG/make_kimi_linear.log" python3 tools/make_random_model.py kimi_linear "$dir"
  {
    echo "| what | device | prompt / C | tokens/s | first byte ms / ms per token | last byte ms / wall s | MiB / ms per forward / iteration (iterations) |"
    PYTHONUNBUFFERED=1 timeout 300 python3 tools/serve_speed.py "$BUILD/linfer" "$dir" --device cuda \
      --prefill "${SERVE_PREFILL-4096,16384}" --decode "${SERVE_DECODE-1,8,32}" --log "$LOG/serve_speed"
    PYTHONUNBUFFERED=1 timeout 300 python3 tools/serve_speed.py "$BUILD/linfer" "$dir" --device cpu \
      --prefill "${SERVE_PREFILL_CPU-4096}" --decode "${SERVE_DECODE_CPU-8}" --decode-tokens 32 --log "$LOG/serve_speed"
  } >"$LOG/serve_speed.txt" 2>&1 || echo "gpu_check: serve_speed failed (log: $LOG/serve_speed.txt)"
fi
[ "${DECODE_BENCH:-1}" != 0 ] && cat "$LOG/bench.txt"
[ "${PREFILL_BENCH:-1}" != 0 ] && cat "$LOG/prefill_bench.txt" "$LOG/sdpa.txt" 2>/dev/null
cat "$LOG/fla.txt" 2>/dev/null
if [ $models = 1 ]; then
  cat "$LOG/model_speed.txt" "$LOG/model_speed_op_by_op.txt" 2>/dev/null
  cat "$LOG/serve_speed.txt" 2>/dev/null
  for preset in ${WHOLE_MODELS-kimi_linear qwen3next}; do
    cat "$LOG/speed_$preset.txt" "$LOG/speed_${preset}_op_by_op.txt" 2>/dev/null
    grep -E "^torch|parameters|^\| " "$LOG/hf_$preset.txt" 2>/dev/null | grep -v "^|---" | tail -6
  done
fi
exit $status
