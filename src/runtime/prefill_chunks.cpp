// forward_chunked: one loop over the prompt's chunks; the two overloads differ only in the call that
// advances the state (Model::forward on a host state, Model::forward_slots on a slot).

#include "runtime/prefill_chunks.h"

#include <algorithm>

#include "linfer/core/error.h"
#include "linfer/core/function_ref.h"

namespace linfer {

namespace {

// forward(batch, logits, mode) advances the sequence by one batch.
using AdvanceFn = FunctionRef<void(const Batch&, float*, Logits)>;

void run_chunks(const Model& model, std::span<const int32_t> ids, float* logits, Logits mode, int64_t ubatch,
                AdvanceFn forward) {
  LINFER_CHECK(ubatch >= 0, "forward_chunked: ubatch {} must be >= 0 (0: one pass)", ubatch);
  const int64_t T = int64_t(ids.size()), V = model.info().vocab_size;
  // One pass, and forward's own checks, for an empty prompt too.
  if (ubatch == 0 || T <= ubatch) return forward(Batch::single(ids), logits, mode);
  // The checks forward would make on a later chunk, before the first one changes the state.
  check_token_ids(ids, V);
  LINFER_CHECK(logits || mode == Logits::None, "forward: logits buffer is null");
  for (int64_t first = 0; first < T; first += ubatch) {
    const int64_t n = std::min(ubatch, T - first);
    const bool last = first + n == T;
    if (mode == Logits::All) forward(Batch::single(ids.subspan(first, n)), logits + first * V, Logits::All);
    else forward(Batch::single(ids.subspan(first, n)), last ? logits : nullptr, last ? mode : Logits::None);
  }
}

}  // namespace

void check_token_ids(std::span<const int32_t> ids, int64_t vocab) {
  for (size_t t = 0; t < ids.size(); ++t)
    LINFER_CHECK(ids[t] >= 0 && ids[t] < vocab, "forward: token id {} (token {}) is outside the vocabulary [0, {})",
                 ids[t], t, vocab);
}

void forward_chunked(const Model& model, std::span<const int32_t> ids, SequenceState& state, float* logits,
                     Logits mode, int64_t ubatch) {
  SequenceState* sp = &state;
  run_chunks(model, ids, logits, mode, ubatch,
             [&](const Batch& b, float* out, Logits m) { model.forward(b, {&sp, 1}, out, m); });
}

void forward_chunked(const Model& model, std::span<const int32_t> ids, StateSlots& slots, int32_t slot,
                     float* logits, Logits mode, int64_t ubatch) {
  run_chunks(model, ids, logits, mode, ubatch,
             [&](const Batch& b, float* out, Logits m) { model.forward_slots(b, slots, {&slot, 1}, out, m); });
}

}  // namespace linfer
