#!/usr/bin/env bash
# A / B of a CUDA change in one device call: the working tree ("new") against a base ("old"), both built side by side
# (kernels only), their benchmark runs alternated in rounds in one process tree, each kept output line tagged.
#
#   here:   bash tools/gpu_ab.sh base REF
#             writes the files that differ between git REF and the working tree, as they are at REF, into $AB_BASE
#             (default .device/ab-base; git-ignored: name it in the device call's carry), and the list of files REF
#             lacks into $AB_BASE.removed
#   there:  bash tools/gpu_ab.sh run ROUNDS -- TARGET ARGS... [-- TARGET ARGS...]
#             e.g. bash tools/gpu_ab.sh run 2 -- gpu_prefill 32768 gdn chunked -- gpu_decode gdn 8
#
# Environment (run): AB_BASE as above; AB_TESTS, test targets built for both and run on "new" first (a failure is
# reported, the runs still happen); AB_KEEP, a grep -E pattern for the output lines kept (default: table rows);
# CUDA_ARCH (default 90a); OUT, where the log goes (default /tmp). Needs what tools/gpu_check.sh's kernels mode needs.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
base=${AB_BASE:-.device/ab-base}

case "${1:-}" in
base)
  ref=${2:?usage: gpu_ab.sh base REF}
  rm -rf "$base" "$base.removed"
  mkdir -p "$base"
  : >"$base.removed"
  { git diff --name-only "$ref"; git ls-files --others --exclude-standard; } | sort -u | while read -r f; do
    if git cat-file -e "$ref:$f" 2>/dev/null; then
      mkdir -p "$base/$(dirname "$f")"
      git show "$ref:$f" >"$base/$f"
    else
      echo "$f" >>"$base.removed"
    fi
  done
  echo "gpu_ab: $(find "$base" -type f | wc -l) files as at $ref in $base, $(wc -l <"$base.removed") that $ref lacks"
  ;;
run)
  rounds=${2:?usage: gpu_ab.sh run ROUNDS -- TARGET ARGS... [-- ...]}
  shift 2
  [ "${1:-}" = -- ] || { echo "gpu_ab: runs start with --" >&2; exit 2; }
  [ -d "$base" ] || { echo "gpu_ab: no base in $base (tools/gpu_ab.sh base REF, then carry it)" >&2; exit 2; }
  runs=() run=""
  for a in "${@:2}" --; do
    if [ "$a" = -- ]; then
      [ -n "$run" ] && runs+=("$run")
      run=""
    else
      run+="${run:+ }$a"
    fi
  done
  targets=$(printf '%s\n' "${runs[@]}" | awk '{print $1}' | sort -u | tr '\n' ' ')
  log=${OUT:-/tmp}/gpu_ab.txt
  old=/tmp/gpu_ab_old
  rm -rf "$old" && mkdir -p "$old"
  tar --exclude=./.git --exclude='./build*' --exclude=./.device --exclude=./.scratch --exclude=./models \
    --exclude=./tests/server/js/node_modules -cf - . | tar -C "$old" -xf -
  cp -r "$base"/. "$old"/
  [ -f "$base.removed" ] && (cd "$old" && xargs -r rm -f <"$OLDPWD/$base.removed")
  # shellcheck disable=SC2086  # $targets and $AB_TESTS: one target per word
  build() {  # build SOURCE_DIR NAME
    cmake -S "$1" -B "$1/build-ab" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLINFER_CUDA=ON -DLINFER_KERNELS_ONLY=ON \
      -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90a}" >"/tmp/gpu_ab_$2.log" 2>&1 &&
      ninja -C "$1/build-ab" $targets ${AB_TESTS:-} >>"/tmp/gpu_ab_$2.log" 2>&1 ||
      { grep -B2 -A12 -m3 error "/tmp/gpu_ab_$2.log" | head -60; echo "gpu_ab: the $2 build failed"; return 1; }
  }
  t0=$SECONDS
  build "$PWD" new & b1=$!
  build "$old" old & b2=$!
  wait $b1 || exit 1
  wait $b2 || exit 1
  {
    nvidia-smi --query-gpu=name,clocks.max.sm,driver_version --format=csv,noheader
    echo "gpu_ab: built in $((SECONDS - t0)) s"
    for t in ${AB_TESTS:-}; do
      build-ab/"$t" >"/tmp/gpu_ab_$t.log" 2>&1
      echo "gpu_ab: $t on new: exit $? ($(grep -E '^\[  (PASSED|FAILED)  \]' "/tmp/gpu_ab_$t.log" | tr '\n' ' '))"
    done
    for r in $(seq 1 "$rounds"); do
      # the variant that runs first alternates from round to round
      order=$([ $((r % 2)) = 1 ] && echo "new old" || echo "old new")
      for v in $order; do
        dir=$PWD/build-ab
        [ "$v" = old ] && dir=$old/build-ab
        for run in "${runs[@]}"; do
          # shellcheck disable=SC2086  # the run's words
          set -- $run
          "$dir/$1" "${@:2}" 2>&1 | grep -E "${AB_KEEP:-^\|}" | sed "s/^/[$v r$r] /"
        done
      done
    done
  } | tee "$log"
  ;;
*)
  sed -n 2,16p "$0"
  exit 2
  ;;
esac
