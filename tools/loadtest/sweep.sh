#!/usr/bin/env bash
# Concurrency sweep against a fresh `linfer serve` on loopback: for each concurrency C, C clients each
# sending REQUESTS_PER_CLIENT streaming requests back to back (greedy, ignore_eos, MAX_TOKENS each,
# prompts of PROMPT_TOKENS token ids), then the server's peak
# RSS. Fails when any request fails or the server dies. A few minutes on the demo model.
#
#   tools/loadtest/sweep.sh OUT_DIR [MODEL_DIR] [-- extra serve flags]
#   env: LINFER=build/linfer  CONCURRENCY="1 8 32 64"  MAX_TOKENS=64  THREADS=2  VOCAB=4000 (prompt ids below it)
#        REQUESTS_PER_CLIENT=2  PROMPT_TOKENS=32..256
# Writes OUT_DIR/c<C>.json (tools/loadtest/loadtest.mjs) and OUT_DIR/summary.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: sweep.sh OUT_DIR [MODEL_DIR] [-- serve flags]}
shift
model_args=()
if [[ $# -gt 0 && $1 != "--" ]]; then model_args=(--model "$1"); shift; fi
[[ ${1:-} == "--" ]] && shift
linfer=${LINFER:-build/linfer}
mkdir -p "$out"

max_c=0
for c in ${CONCURRENCY:-1 8 32 64}; do ((c > max_c)) && max_c=$c; done
log="$out/serve.log"
"$linfer" --threads "${THREADS:-2}" serve "${model_args[@]}" --port 0 --max-seqs "$max_c" "$@" 2>"$log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 600); do grep -q "ready on" "$log" && break; kill -0 $pid || { cat "$log"; exit 1; }; sleep 0.1; done
url=$(grep -o "ready on http://[0-9.:]*" "$log" | head -1 | cut -d' ' -f3)
echo "server $url (pid $pid)"

for c in ${CONCURRENCY:-1 8 32 64}; do
  node tools/loadtest/loadtest.mjs --url "$url" --concurrency "$c" --requests $((${REQUESTS_PER_CLIENT:-2} * c)) \
    --max-tokens "${MAX_TOKENS:-64}" --prompt-tokens "${PROMPT_TOKENS:-32..256}" --vocab "${VOCAB:-4000}" --json "$out/c$c.json"
  kill -0 $pid || { echo "server died"; cat "$log"; exit 1; }
done
rss_kib=$(awk '/VmHWM/ {print $2}' /proc/$pid/status)
echo "peak RSS: $((rss_kib / 1024)) MiB"
kill -TERM $pid
wait $pid
trap - EXIT
{
  echo "{\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"threads\": ${THREADS:-2},"
  echo " \"date\": \"$(date -u +%F)\", \"peak_rss_mib\": $((rss_kib / 1024)), \"runs\": ["
  sep=""
  for c in ${CONCURRENCY:-1 8 32 64}; do echo "$sep$(cat "$out/c$c.json")"; sep=","; done
  echo "]}"
} >"$out/summary.json"
echo "wrote $out/summary.json"
