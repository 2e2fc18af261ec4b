#!/usr/bin/env bash
# Regenerate every golden fixture on a GPU machine (python3 with torch, transformers, tokenizers, tiktoken).
#   tools/gpu_fixtures.sh fixtures            tokenizer + tiny-model fixtures
#   tools/gpu_fixtures.sh train STEPS BUDGET  demo model (models/demo, tests/golden/demo) + llama baseline,
#                                             both trained at once on the one GPU (DEMO_OUT, DEMO_FIX,
#                                             LLAMA_OUT override the output folders, e.g. for a smoke run)
# Logs go to $OUT (or .scratch/logs); tinyshakespeare is read from .scratch/data/.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1
LOG=${OUT:-.scratch/logs}
mkdir -p "$LOG"
DATA=.scratch/data/tinyshakespeare.txt

case "${1:-}" in
fixtures)
  python3 -c "import torch, transformers, tokenizers, tiktoken; print('torch', torch.__version__, 'transformers', \
transformers.__version__, 'tokenizers', tokenizers.__version__, 'tiktoken', tiktoken.__version__, \
torch.cuda.get_device_name(0))"
  python3 tools/golden/make_tokenizer_fixtures.py --data $DATA --out tests/golden/tokenizer 2>&1 | tee "$LOG/tokenizer.log"
  python3 tools/golden/make_fixtures.py --out tests/golden 2>&1 | tee "$LOG/fixtures.log"
  ;;
train)
  STEPS=${2:?steps}; BUDGET=${3:?budget seconds}; shift 3
  python3 tools/train_demo.py --arch kimi --steps "$STEPS" --budget-s "$BUDGET" --data $DATA \
    --out "${DEMO_OUT:-models/demo}" --fixtures "${DEMO_FIX:-tests/golden/demo}" "$@" > "$LOG/kimi.log" 2>&1 &
  KIMI=$!
  python3 tools/train_demo.py --arch llama --steps "$STEPS" --budget-s "$BUDGET" --data $DATA \
    --out "${LLAMA_OUT:-.scratch/llama}" "$@" > "$LOG/llama.log" 2>&1 &
  LLAMA=$!
  rc=0
  wait $KIMI || rc=$?
  wait $LLAMA || rc=$?
  grep -h "RESULT\|trained\|Error\|error" "$LOG/kimi.log" "$LOG/llama.log" || true
  exit $rc
  ;;
*)
  echo "usage: $0 fixtures | train STEPS BUDGET_S [train_demo.py args]" >&2
  exit 2
  ;;
esac
