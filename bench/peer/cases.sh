#!/usr/bin/env bash
# Writes a test-backend-ops `--test-file` (one op per line, the format make_test_cases_from_file reads)
# with llama.cpp's GATED_DELTA_NET and SSM_SCAN at the shapes bench_delta / bench_ssm use:
#   GDN / KDA: 16 heads, head dim 128; decode n_seqs B in {1,8,32,128}; prefill T in {512,4096}, 1 sequence
#   Mamba2 (SSM_SCAN): 48 heads, head dim 64, d_state 128, 1 group; decode B in {1,8,32}; prefill T in {512,4096}
# test-backend-ops's built-in perf cases use other shapes (32 heads for GDN, and n_seqs = 1 only), and we
# add nothing to its code, so we feed it our shapes through its own file interface. Such "generic" ops get
# uniform [-1, 1] inputs (no L2-normalised q/k, no negative gate); the kernels are data-independent loops,
# so this changes values, not work.
#   bench/peer/cases.sh <peer_dir> > cases.txt
set -euo pipefail
PEER_DIR=${1:-/work/peers/llama.cpp}

# Enum values from the peer's own header, so the file stays right if ggml renumbers its ops.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/enums.c" <<'C'
#include "ggml.h"
#include <stdio.h>
int main(void) {
  printf("%d %d %d %d\n", GGML_OP_GATED_DELTA_NET, GGML_OP_SSM_SCAN, GGML_TYPE_F32, GGML_TYPE_I32);
  return 0;
}
C
cc -I"$PEER_DIR/ggml/include" "$tmp/enums.c" -o "$tmp/enums"
read -r OP_GDN OP_SSM F32 I32 < <("$tmp/enums")

# A contiguous 4-byte source tensor: "type ne0 ne1 ne2 ne3 nb0 nb1 nb2 nb3".
src() {
  local t=$1 a=$2 b=$3 c=$4 d=$5
  echo "$t $a $b $c $d 4 $((4 * a)) $((4 * a * b)) $((4 * a * b * c))"
}

# ggml_gated_delta_net(q, k, v, g, beta, state, K = 1): out [S*H, T*B + S*B] (outputs, then final states).
gdn() {  # name H S T B kda
  local name=$1 H=$2 S=$3 T=$4 B=$5 kda=$6
  local g0=1
  [ "$kda" = 1 ] && g0=$S
  echo "$OP_GDN $F32 $((S * H)) $((T * B + S * B)) 1 1 1 1 6" \
    "$(src $F32 $S $H $T $B) $(src $F32 $S $H $T $B) $(src $F32 $S $H $T $B)" \
    "$(src $F32 $g0 $H $T $B) $(src $F32 1 $H $T $B) $(src $F32 $S $S $H $B) $name"
}

# ggml_ssm_scan(s, x, dt, A, B, C, ids), Mamba2 (scalar A per head): out [P*H*T*B + N*P*H*B].
ssm() {  # name H P N G T B
  local name=$1 H=$2 P=$3 N=$4 G=$5 T=$6 B=$7
  echo "$OP_SSM $F32 $((P * H * T * B + N * P * H * B)) 1 1 1 0 7" \
    "$(src $F32 $N $P $H $B) $(src $F32 $P $H $T $B) $(src $F32 $H $T $B 1) $(src $F32 1 $H 1 1)" \
    "$(src $F32 $N $G $T $B) $(src $F32 $N $G $T $B) $(src $I32 $B 1 1 1) $name"
}

for kda in 0 1; do
  op=gdn
  [ $kda = 1 ] && op=kda
  for B in 1 8 32 128; do gdn "${op}_decode_B$B" 16 128 1 "$B" $kda; done
  for T in 512 4096; do gdn "${op}_prefill_T$T" 16 128 "$T" 1 $kda; done
done
for B in 1 8 32; do ssm "mamba2_decode_B$B" 48 64 128 1 1 "$B"; done
for T in 512 4096; do ssm "mamba2_prefill_T$T" 48 64 128 1 "$T" 1; done
