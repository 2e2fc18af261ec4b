#!/usr/bin/env bash
# linfer vs llama.cpp, side by side on one machine (issue 12): the same random-weight model as a Hugging
# Face folder (linfer) and as llama.cpp's own converter's GGUF (llama.cpp), interleaved over rounds, and a
# markdown table of medians and ratios. It builds and fetches nothing: pass the binaries.
#
#   tools/bench_vs_llamacpp.sh --llama-bench /path/to/llama-bench [options] NAME=MODEL=GGUF_FILE ...
#
# MODEL is what linfer loads: the Hugging Face folder (BF16 weights against llama.cpp's BF16 GGUF), or the
# GGUF file itself (the same quantized file for both engines: Q8_0, Q4_0, Q4_K_M).
#   --llama-bench PATH     llama.cpp's llama-bench (pp512, pp4096, tg128)
#   --batched-bench PATH   llama.cpp's llama-batched-bench (tg128 at batch 8); default: beside llama-bench
#   --linfer PATH          linfer binary (default: build/linfer)
#   --rounds N             interleaved rounds (default 3); the table shows the median of the rounds
#   --threads N            threads for both engines (default 2)
#   --tests LIST           any of pp512,pp4096,tg128,tg128x8 (default: all four)
#   --out DIR              raw outputs and results.tsv (default: a new directory under /tmp)
#
# What each test is, on each side (one timed run per round and engine, after each tool's own warm-up):
#   ppN      prefill N random tokens into an empty sequence. linfer: `bench -p N` (chunks of --ubatch, 512 by default);
#            llama-bench: `-p N` (default batch 2048 / ubatch 512, so pp4096 runs in 512-token ubatches).
#   tg128    decode 128 tokens one at a time from an empty sequence. linfer `bench -n 128`; llama-bench `-n 128`.
#   tg128x8  8 sequences decoded together, 128 steps of one token each (one batch of 8 per step), tokens/s
#            over all 8 sequences. llama.cpp: llama-bench has no batched decode; llama-batched-bench
#            `-npp 0 -ntg 128 -npl 8` measures exactly this (S_TG = 8·128 / time of the 128 steps).
#            linfer: `bench -p 0 -n 128 <batch option> 8` when `linfer bench --help` lists the option
#            (LINFER_BATCH_OPT, default --batch); otherwise the linfer cell stays empty.
# Order: each round runs, per model, linfer then llama.cpp, and the next round the other way round.
# The load average is logged before each step (results.tsv, load.log): the machine may be shared.
# llama.cpp's CPU backend waits at its per-op barriers through OpenMP; on a machine loaded by other work,
# libgomp's default spin-then-sleep collapses (bench/peer/README.md): there, run with
# OMP_WAIT_POLICY=PASSIVE (the environment is passed through and logged); on a quiet machine leave it unset.
set -euo pipefail

LLAMA_BENCH="" BATCHED_BENCH="" LINFER=build/linfer ROUNDS=3 THREADS=2 TESTS=pp512,pp4096,tg128,tg128x8 OUT=""
MODELS=()
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while [ $# -gt 0 ]; do
  case $1 in
    --llama-bench) LLAMA_BENCH=$2; shift 2 ;;
    --batched-bench) BATCHED_BENCH=$2; shift 2 ;;
    --linfer) LINFER=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --threads) THREADS=$2; shift 2 ;;
    --tests) TESTS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "unknown option $1" >&2; usage ;;
    *) MODELS+=("$1"); shift ;;
  esac
done
[ -n "$LLAMA_BENCH" ] && [ ${#MODELS[@]} -gt 0 ] || usage
BATCHED_BENCH=${BATCHED_BENCH:-$(dirname "$LLAMA_BENCH")/llama-batched-bench}
for bin in "$LLAMA_BENCH" "$LINFER"; do [ -x "$bin" ] || { echo "not executable: $bin" >&2; exit 2; }; done
for m in "${MODELS[@]}"; do
  IFS='=' read -r name hf gguf <<<"$m"
  [ -n "$name" ] && { [ -d "$hf" ] || [ -f "$hf" ]; } && [ -f "$gguf" ] ||
    { echo "bad model spec '$m' (want NAME=MODEL=GGUF_FILE)" >&2; exit 2; }
done
has_test() { [[ ",$TESTS," == *",$1,"* ]]; }
PP=(); for p in 512 4096; do has_test pp$p && PP+=($p); done
if has_test tg128x8 && [ ! -x "$BATCHED_BENCH" ]; then echo "not executable: $BATCHED_BENCH" >&2; exit 2; fi
BATCH_OPT=${LINFER_BATCH_OPT:---batch}
LINFER_BATCH=0
if has_test tg128x8 && "$LINFER" bench --help 2>&1 | grep -q -- "$BATCH_OPT"; then LINFER_BATCH=1; fi
OUT=${OUT:-$(mktemp -d /tmp/bench_vs_llamacpp.XXXXXX)}
mkdir -p "$OUT"
RES="$OUT/results.tsv"
printf 'round\tmodel\tengine\ttest\ttokens_per_s\tload1\n' >"$RES"
load1() { cut -d' ' -f1 /proc/loadavg; }
log() { echo "[$(date -u +%H:%M:%S) load $(cat /proc/loadavg | cut -d' ' -f1-3)] $*" | tee -a "$OUT/load.log" >&2; }

run_linfer() {  # round name hf
  local r=$1 name=$2 hf=$3 ld pstr
  local -a gen=()
  has_test tg128 && gen=(-n 128) || gen=(-n 0)
  pstr=$(IFS=,; echo "${PP[*]:-0}")
  if [ "$pstr" != 0 ] || has_test tg128; then
    ld=$(load1); log "round $r $name linfer pp/tg"
    "$LINFER" --threads "$THREADS" bench --model "$hf" -p "$pstr" "${gen[@]}" -r 1 --json \
      >"$OUT/r$r-$name-linfer.json" 2>"$OUT/r$r-$name-linfer.err"
    jq -r --arg r "$r" --arg m "$name" --arg l "$ld" \
      '.[] | [$r, $m, "linfer", .test, .tokens_per_s, $l] | @tsv' "$OUT/r$r-$name-linfer.json" >>"$RES"
  fi
  if has_test tg128x8 && [ "$LINFER_BATCH" = 1 ]; then
    ld=$(load1); log "round $r $name linfer tg128 x 8"
    "$LINFER" --threads "$THREADS" bench --model "$hf" -p 0 -n 128 "$BATCH_OPT" 8 -r 1 --json \
      >"$OUT/r$r-$name-linfer-b8.json" 2>"$OUT/r$r-$name-linfer-b8.err"
    jq -r --arg r "$r" --arg m "$name" --arg l "$ld" \
      '.[] | [$r, $m, "linfer", "tg128x8", .tokens_per_s, $l] | @tsv' "$OUT/r$r-$name-linfer-b8.json" >>"$RES"
  fi
}

run_llama() {  # round name gguf
  local r=$1 name=$2 gguf=$3 ld pstr
  local -a gen=()
  has_test tg128 && gen=(-n 128) || gen=(-n 0)
  pstr=$(IFS=,; echo "${PP[*]:-0}")
  if [ "$pstr" != 0 ] || has_test tg128; then
    ld=$(load1); log "round $r $name llama-bench pp/tg"
    "$LLAMA_BENCH" -m "$gguf" -t "$THREADS" -p "$pstr" "${gen[@]}" -r 1 -o jsonl \
      >"$OUT/r$r-$name-llama.jsonl" 2>"$OUT/r$r-$name-llama.err"
    # llama-bench names tests by n_prompt / n_gen: pp512 is n_prompt 512, n_gen 0.
    jq -r --arg r "$r" --arg m "$name" --arg l "$ld" \
      '[$r, $m, "llama.cpp", (if .n_gen > 0 then "tg\(.n_gen)" else "pp\(.n_prompt)" end), .avg_ts, $l] | @tsv' \
      "$OUT/r$r-$name-llama.jsonl" >>"$RES"
  fi
  if has_test tg128x8; then
    ld=$(load1); log "round $r $name llama-batched-bench tg128 x 8"
    "$BATCHED_BENCH" -m "$gguf" -t "$THREADS" -tb "$THREADS" -c 2048 -b 2048 -ub 512 -npp 0 -ntg 128 -npl 8 \
      --output-format jsonl >"$OUT/r$r-$name-llama-b8.jsonl" 2>"$OUT/r$r-$name-llama-b8.err"
    cat "$OUT/r$r-$name-llama-b8.jsonl" "$OUT/r$r-$name-llama-b8.err" | grep '^{"n_kv_max"' | jq -r --arg r "$r" --arg m "$name" --arg l "$ld" \
      '[$r, $m, "llama.cpp", "tg128x8", .speed_tg, $l] | @tsv' >>"$RES"
  fi
}

T0=$(date +%s)
log "start: $(nproc) cpus, $THREADS threads, tests $TESTS, $ROUNDS rounds, linfer batch option:" \
    "$([ $LINFER_BATCH = 1 ] && echo "$BATCH_OPT" || echo none), OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-unset}"
for r in $(seq 1 "$ROUNDS"); do
  for m in "${MODELS[@]}"; do
    IFS='=' read -r name hf gguf <<<"$m"
    if [ $((r % 2)) = 1 ]; then run_linfer "$r" "$name" "$hf"; run_llama "$r" "$name" "$gguf"
    else run_llama "$r" "$name" "$gguf"; run_linfer "$r" "$name" "$hf"; fi
  done
done
ELAPSED=$(( $(date +%s) - T0 ))

# Medians over rounds; ratio = linfer / llama.cpp (> 1: linfer faster).
echo
echo "| model | test | linfer tokens/s | llama.cpp tokens/s | linfer / llama.cpp |"
echo "|---|---|---|---|---|"
awk -F'\t' 'NR > 1 { v[$2 SUBSEP $4 SUBSEP $3] = v[$2 SUBSEP $4 SUBSEP $3] " " $5; seen[$2 SUBSEP $4] = 1;
                     if (!($2 in mo)) { mo[$2] = ++nm; mname[nm] = $2 } }
  function median(s,   a, n, i, j, t) {
    n = split(s, a, " "); if (n == 0) return "";
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  END { split("pp512 pp4096 tg128 tg128x8", tests, " ");
    for (k = 1; k <= nm; k++) for (i = 1; i <= 4; i++) { key = mname[k] SUBSEP tests[i]; if (!(key in seen)) continue;
      a = median(v[key SUBSEP "linfer"]); b = median(v[key SUBSEP "llama.cpp"]);
      printf "| %s | %s | %s | %s | %s |\n", mname[k], tests[i], a == "" ? "–" : sprintf("%.1f", a),
             b == "" ? "–" : sprintf("%.1f", b), (a == "" || b == "") ? "–" : sprintf("%.2f", a / b) } }' "$RES"
echo
echo "$ROUNDS rounds, $THREADS threads, $(( ELAPSED / 60 )) min $(( ELAPSED % 60 )) s; load average during the run:" \
     "$(awk -F'\t' 'NR > 1 { if (min == "" || $6 < min) min = $6; if ($6 > max) max = $6 } END { print min "–" max }' "$RES");" \
     "raw outputs in $OUT"
