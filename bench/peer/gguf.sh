#!/usr/bin/env bash
# Random-weight benchmark models as BF16 GGUFs made by llama.cpp's own converter, for the llama.cpp side of
# tools/bench_vs_llamacpp.sh (linfer loads the Hugging Face folder, llama.cpp the GGUF of the same weights).
#
#   bench/peer/gguf.sh LLAMA_CPP_DIR OUT_DIR [preset...]      (presets: mamba2 qwen3next kimi_linear, default all)
#
# For each preset: makes $RAND_DIR/<preset> with tools/make_random_model.py if it has no model.safetensors
# (RAND_DIR defaults to /work/rand), then writes OUT_DIR/<preset>-bf16.gguf with LLAMA_CPP_DIR's unmodified
# convert_hf_to_gguf.py (--outtype bf16; --no-mtp for qwen3next when the converter has it). As root it first
# apt-get installs the Debian packages the converter needs. Nothing from llama.cpp is copied here.
#
# Why it is not a plain converter call (Debian 12: no PyPI, so Debian's own Python stack):
# - It runs /usr/bin/python3, the interpreter apt installs into; a pyenv or venv python3 on PATH lacks them.
# - bench/peer/convert_wrapper.py runs the converter after two in-memory fixes: a stub `transformers`
#   (not packaged; the converter falls back to reading config.json) and placeholders for the float8 dtype
#   names torch 1.13 lacks. Details in that file.
# - Qwen3-Next and Kimi-Linear only take a known Hugging Face tokenizer, and the random folders have none.
#   We train a 512-piece SentencePiece model on $SPM_TEXT (default: tinyshakespeare) and hand the converter
#   a scratch folder of links to the random folder plus that tokenizer.model; the wrapper makes these two
#   architectures read it with the converter's own SentencePiece code, padded to the config's vocab_size.
#   The random folders themselves stay untouched. Mamba2 needs nothing: with no tokenizer the converter uses
#   the GPT-NeoX vocabulary shipped in llama.cpp's models/.
# Benchmarks feed random token ids, so the vocabulary only has to load; its contents do not matter.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PY=/usr/bin/python3
RAND_DIR=${RAND_DIR:-/work/rand}
SPM_TEXT=${SPM_TEXT:-/work/shared/data/tinyshakespeare.txt}
PACKAGES=(python3-numpy python3-torch python3-sentencepiece python3-yaml python3-tqdm)

[ $# -ge 2 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
LLAMA_DIR=$(cd "$1" && pwd) OUT=$2; shift 2
PRESETS=("$@"); [ ${#PRESETS[@]} -gt 0 ] || PRESETS=(mamba2 qwen3next kimi_linear)
[ -f "$LLAMA_DIR/convert_hf_to_gguf.py" ] || { echo "$LLAMA_DIR: no convert_hf_to_gguf.py" >&2; exit 2; }

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null | grep -qx installed || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "apt-get install ${missing[*]}" >&2
    apt-get install -y --no-install-recommends "${missing[@]}" ||
      { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
  else
    echo "warning: not root, cannot install missing packages: ${missing[*]}" >&2
  fi
fi

mkdir -p "$OUT"
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/gguf-peer.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

for preset in "${PRESETS[@]}"; do
  src=$RAND_DIR/$preset
  [ -f "$src/model.safetensors" ] || "$PY" "$REPO/tools/make_random_model.py" "$preset" "$src"
  args=(--outtype bf16)
  case $preset in
    qwen3next|kimi_linear)
      if [ ! -f "$SCRATCH/tokenizer.model" ]; then
        "$PY" - "$SPM_TEXT" "$SCRATCH/spm" <<'EOF'
import sys, sentencepiece as spm
spm.SentencePieceTrainer.train(input=sys.argv[1], model_prefix=sys.argv[2], vocab_size=512, model_type="bpe",
                               byte_fallback=True, character_coverage=1.0, num_threads=1, minloglevel=2)
EOF
        mv "$SCRATCH/spm.model" "$SCRATCH/tokenizer.model"
      fi
      dir=$SCRATCH/$preset; mkdir -p "$dir"
      ln -sf "$(cd "$src" && pwd)"/* "$dir/"
      cp --remove-destination "$SCRATCH/tokenizer.model" "$dir/tokenizer.model"  # never through a link
      src=$dir ;;
  esac
  if [ "$preset" = qwen3next ] && grep -q -- '"--no-mtp"' "$LLAMA_DIR/convert_hf_to_gguf.py"; then
    args+=(--no-mtp)
  fi
  out=$OUT/$preset-bf16.gguf
  echo "== $preset: $src -> $out" >&2
  start=$SECONDS
  "$PY" "$HERE/convert_wrapper.py" "$LLAMA_DIR" "${args[@]}" --outfile "$out.part" "$src"
  mv "$out.part" "$out"
  echo "== $preset: $(du -h "$out" | cut -f1), $((SECONDS - start)) s" >&2
done
