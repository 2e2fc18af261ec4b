#!/usr/bin/env bash
# The GPU cycle in one go, on a machine with an NVIDIA GPU (docs/gpu.md): configure + build the CUDA kernels,
# their tests and the decode benchmark (a kernels-only build: the tokenizer's xxhash / PCRE2 / ICU are not
# needed), run the GPU tests, run the benchmark, print a short table last. Logs go to $OUT (or
# $BUILD/logs); from the repository root of a clean checkout:
#   bash tools/gpu_check.sh
# Needs nvcc (CUDA 12 or later; built with 13.0), CMake >= 3.25, Ninja, a C++20 compiler, fmt, nlohmann-json and
# GoogleTest. BUILD (default build-gpu) names the build directory; the GPU is sm_90a (H100 / H200) unless
# CUDA_ARCH says otherwise (e.g. CUDA_ARCH=100a).
set -uo pipefail
cd "$(dirname "$0")/.."
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

step configure "$LOG/configure.log" cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DLINFER_CUDA=ON -DLINFER_KERNELS_ONLY=ON -DCMAKE_CUDA_COMPILER="$NVCC" \
  -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}"
targets=$(for f in tests/cuda/test_*.cpp; do basename "$f" .cpp; done; \
          for f in bench/cuda/*.cpp; do echo "gpu_$(basename "$f" .cpp)"; done)
# shellcheck disable=SC2086  # one target per word
step build "$LOG/build.log" ninja -C "$BUILD" $targets
# A failing test does not stop the benchmark (one device call should bring back both); it fails the script.
status=0
if ! ctest --test-dir "$BUILD" -L cuda --output-on-failure >"$LOG/tests.log" 2>&1; then
  grep -E "Failure|actual|Which is|step|slots|rror|FAILED|tests passed" "$LOG/tests.log" | head -60
  echo "gpu_check: GPU tests FAILED (log: $LOG/tests.log)"
  status=1
elif grep -q "(Skipped)" "$LOG/tests.log"; then
  echo "gpu_check: GPU tests were skipped: no usable CUDA device (log: $LOG/tests.log)"
  status=1
fi
grep -E "tests passed" "$LOG/tests.log"
# Out-of-bounds accesses and shared-memory races, where compute-sanitizer works (not under gVisor).
if command -v compute-sanitizer >/dev/null; then
  for t in $(for f in tests/cuda/test_*.cpp; do basename "$f" .cpp; done); do
    for tool in memcheck racecheck; do
      echo "== $tool $t" >>"$LOG/sanitizer.log"
      compute-sanitizer --tool $tool --error-exitcode 3 "$BUILD/$t" >>"$LOG/sanitizer.log" 2>&1
      rc=$?
      echo "gpu_check: compute-sanitizer $tool $t: exit $rc"
      [ $rc = 3 ] && status=1
    done
  done
fi
step bench "$LOG/bench.txt" "$BUILD/gpu_decode"
# Where the decode kernels' time goes (hardware counters; ncu works on Firecracker machines, not gVisor):
# one profiled call per case, clocks left as they are.
if command -v ncu >/dev/null; then
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
cat "$LOG/bench.txt"
exit $status
