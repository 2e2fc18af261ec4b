#!/bin/bash
# A prefill node and a decode node on two "hosts" (network namespaces joined by a veth pair), the link
# shaped to RATE with `tc tbf` in both directions and DELAY ms added each way by tools/delay_relay (this
# kernel has no netem). Measures, for one prompt of TOKENS random ids:
#   stream.csv      POST /v1/prefill over the link, each record's arrival (tools/pfaas/record_times.py)
#   sequential.txt  the same state made first (`linfer prefill --save-state` on the prefill host), then
#                   downloaded over the same link: forward_s, download_s
#   ttft.txt        /v1/completions with max_tokens 1 to a decode node that prefills remotely over the
#                   link, and to a plain node on the decode host that prefills locally
# RATE 0 and DELAY 0: an unshaped veth, no relay (the layers' completion times, as near as a client sees).
#
#   sudo tools/pfaas/shaped_link.sh LINFER DELAY_RELAY MODEL_DIR VOCAB TOKENS RATE_MBIT DELAY_MS OUT_DIR
# Needs root (ip netns, tc). Every process it starts is stopped by its pid on exit, the namespaces deleted.
set -euo pipefail
LINFER=$(realpath "$1"); RELAY=$(realpath "$2"); MODEL=$(realpath "$3"); VOCAB=$4; TOKENS=$5; RATE=$6
DELAY=$7; OUT=$8
HERE=$(dirname "$(realpath "$0")")
P=pfaas-p D=pfaas-d PIP=10.231.0.1 DIP=10.231.0.2
mkdir -p "$OUT"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  ip netns del $P 2>/dev/null || true
  ip netns del $D 2>/dev/null || true
}
trap cleanup EXIT
cleanup
ip netns add $P
ip netns add $D
ip link add pfaas-vp type veth peer name pfaas-vd
ip link set pfaas-vp netns $P
ip link set pfaas-vd netns $D
ip -n $P addr add $PIP/24 dev pfaas-vp
ip -n $D addr add $DIP/24 dev pfaas-vd
for ns in $P $D; do ip -n $ns link set lo up; done
ip -n $P link set pfaas-vp up
ip -n $D link set pfaas-vd up
if [ "$RATE" != 0 ]; then
  # burst: 10 ms of the rate (at least 64 KB); the queue holds 100 ms of it.
  BURST=$(( RATE * 1000000 / 8 / 100 )); [ $BURST -lt 65536 ] && BURST=65536
  tc -n $P qdisc add dev pfaas-vp root tbf rate ${RATE}mbit burst $BURST latency 100ms
  tc -n $D qdisc add dev pfaas-vd root tbf rate ${RATE}mbit burst $BURST latency 100ms
fi

wait_http() {  # namespace url
  for _ in $(seq 600); do ip netns exec "$1" curl -sf -o /dev/null "$2" && return 0; sleep 0.5; done
  echo "shaped_link: $2 did not come up" >&2; return 1
}
ip netns exec $P "$LINFER" serve --role prefill --model "$MODEL" --host $PIP --port 8090 2> "$OUT/prefill-node.log" &
PIDS+=($!)
mkdir -p "$OUT/files"
ip netns exec $P /usr/bin/python3 -m http.server 8091 --bind $PIP --directory "$OUT/files" > /dev/null 2>&1 &
PIDS+=($!)
if [ "$DELAY" != 0 ]; then
  ip netns exec $D "$RELAY" --listen 127.0.0.1:18090 --to $PIP:8090 --delay-ms "$DELAY" 2> "$OUT/relay.log" &
  PIDS+=($!)
  ip netns exec $D "$RELAY" --listen 127.0.0.1:18091 --to $PIP:8091 --delay-ms "$DELAY" 2>> "$OUT/relay.log" &
  PIDS+=($!)
  PF=http://127.0.0.1:18090 FILES=http://127.0.0.1:18091
else
  PF=http://$PIP:8090 FILES=http://$PIP:8091
fi
wait_http $D $PF/health
FP=$(ip netns exec $D curl -s -D - -o /dev/null -X POST $PF/v1/prefill \
       -d '{"prompt":[1],"model_fingerprint":"?","format_version":1}' | tr -d '\r' |
     awk -F': ' 'tolower($1)=="x-linfer-model-fingerprint" {print $2}')
echo "fingerprint $FP" > "$OUT/info.txt"
echo "rate_mbit $RATE" >> "$OUT/info.txt"
echo "delay_ms $DELAY" >> "$OUT/info.txt"
echo "loadavg_before $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/info.txt"

# 1. The state streamed as it is produced.
ip netns exec $D /usr/bin/python3 "$HERE/record_times.py" --url $PF --fingerprint "$FP" --vocab "$VOCAB" \
  --tokens "$TOKENS" --out "$OUT/stream.csv"

# 2. The same state written after the forward, then sent.
IDS=$(/usr/bin/python3 -c "import random; r = random.Random(1); print(','.join(str(r.randrange($VOCAB)) for _ in range($TOKENS)))")
T0=$(date +%s.%N)
ip netns exec $P "$LINFER" prefill --model "$MODEL" --prompt-ids "$IDS" --save-state "$OUT/files/state.bin" 2> "$OUT/prefill-cli.log"
T1=$(date +%s.%N)
DL=$(ip netns exec $D curl -s -o /dev/null -w '%{time_total}' $FILES/state.bin)
echo "forward_s $(echo "$T1 - $T0" | bc)" > "$OUT/sequential.txt"
echo "download_s $DL" >> "$OUT/sequential.txt"
echo "bytes $(stat -c %s "$OUT/files/state.bin")" >> "$OUT/sequential.txt"
rm -f "$OUT/files/state.bin"

# 3. Time to first token: a decode node that prefills remotely over the link vs a node prefilling locally.
ip netns exec $D "$LINFER" serve --role decode --prefill-url $PF --prefill-threshold 16 --prefill-timeout 3600 \
  --model "$MODEL" --host 127.0.0.1 --port 8080 2> "$OUT/decode-node.log" &
PIDS+=($!)
ip netns exec $D "$LINFER" serve --model "$MODEL" --host 127.0.0.1 --port 8081 2> "$OUT/local-node.log" &
PIDS+=($!)
wait_http $D http://127.0.0.1:8080/health
wait_http $D http://127.0.0.1:8081/health
BODY="{\"prompt\":[$IDS],\"max_tokens\":1,\"temperature\":0}"
for port in 8080 8081; do
  t=$(ip netns exec $D curl -s -o "$OUT/completion-$port.json" -w '%{time_total}' -H 'Content-Type: application/json' \
      -d "$BODY" http://127.0.0.1:$port/v1/completions)
  echo "$([ $port = 8080 ] && echo remote || echo local)_ttft_s $t" >> "$OUT/ttft.txt"
done
echo "loadavg_after $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/info.txt"
echo "shaped_link: $RATE Mbit/s, $DELAY ms: $(tr '\n' ' ' < "$OUT/ttft.txt")"
