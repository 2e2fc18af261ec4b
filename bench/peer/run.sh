#!/usr/bin/env bash
# Interleaved benchmark session: ours, peer, ours, peer (ROUNDS rounds), same shapes.
#   bench/peer/run.sh [out_dir]
# Two measures, because the 2-core machine is shared and wall time moves with everyone else's load:
#   wall clock at 2 threads (ours: threads:2 rows; the peer always uses hardware_concurrency() = 2);
#   CPU time per call: ours from the threads:1 rows (Google Benchmark's CPU column is the calling
#   thread's, which is all of the work at 1 thread); the peer from the process's user + sys time
#   (/usr/bin/time, one process per case) divided by the op executions it reports (+1 warm-up).
# Needs bench/peer/build.sh (peer) and build-peer/bench_{delta,ssm} (ours, see bench/peer/README.md).
# Raw logs and the load average before each step go to out_dir (default /work/peers/results/<UTC time>).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PEER_DIR=${PEER_DIR:-/work/peers/llama.cpp}
OURS=${OURS:-$ROOT/build-peer}
ROUNDS=${ROUNDS:-2}
OUT=${1:-/work/peers/results/$(date -u +%Y%m%dT%H%M%SZ)}
# ggml's CPU backend waits at its per-op barriers through OpenMP; libgomp's default (spin first) is
# pathological when the 2 cores are oversubscribed by other work (a spinning thread holds a core the
# other needs), so we run it passive, which is how our thread pool waits (condition variables).
# Set PEER_OMP_WAIT_POLICY=ACTIVE to see the peer's default.
export OMP_WAIT_POLICY=${PEER_OMP_WAIT_POLICY:-PASSIVE}
MIN_TIME=${MIN_TIME:-0.3}

mkdir -p "$OUT"
"$ROOT/bench/peer/cases.sh" "$PEER_DIR" > "$OUT/cases.txt"
{
  date -u
  lscpu | grep -E 'Model name|^CPU\(s\)|Thread|Core|cache'
  echo "flags: $(grep -o -w -E 'avx|avx2|fma|f16c|avx512[a-z_]*' /proc/cpuinfo | sort -u | tr '\n' ' ')"
  echo "llama.cpp $(git -C "$PEER_DIR" rev-parse --short HEAD), linfer $(git -C "$ROOT" rev-parse --short HEAD)"
  echo "OMP_WAIT_POLICY=$OMP_WAIT_POLICY"
} > "$OUT/machine.txt"

load() { echo "$(date -u +%T) $1 load: $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/load.txt"; }

ours() {
  local r=$1
  load "ours r$r"
  "$OURS/bench_delta" --benchmark_min_time="$MIN_TIME" \
    --benchmark_filter='BM_Floor_.*|BM_Decode/|BM_Prefill/.*/chunk:0/' \
    --benchmark_out="$OUT/ours_delta_r$r.json" --benchmark_out_format=json > "$OUT/ours_delta_r$r.txt"
  "$OURS/bench_ssm" --benchmark_min_time="$MIN_TIME" \
    --benchmark_filter='BM_Mamba2_(Step|Prefill)/' \
    --benchmark_out="$OUT/ours_ssm_r$r.json" --benchmark_out_format=json > "$OUT/ours_ssm_r$r.txt"
}

peer() {
  local r=$1
  load "peer r$r"
  : > "$OUT/peer_r$r.txt"
  for name in $(awk '{print $NF}' "$OUT/cases.txt"); do
    /usr/bin/time -f "cpu_time $name wall=%e user=%U sys=%S" \
      "$PEER_DIR/build/bin/test-backend-ops" perf -b CPU --test-file "$OUT/cases.txt" -p "name=$name," 2>&1 |
      sed 's/\x1b\[[0-9;]*m//g' | grep -E 'us/run|cpu_time' >> "$OUT/peer_r$r.txt"
  done
}

for r in $(seq 1 "$ROUNDS"); do
  ours "$r"
  peer "$r"
done
load "end"
"$ROOT/bench/peer/summarize.sh" "$OUT" | tee "$OUT/table.md"
