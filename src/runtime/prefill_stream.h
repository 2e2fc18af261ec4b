#pragma once
// Prefill that ships the state while it is being produced: one forward over the prompt, layer by layer
// (Model::forward_layerwise), and a writer thread that serializes layer l's records into each sequence's
// sink while layer l + 1 computes. With a ubatch, only each sequence's last `ubatch` tokens go through that
// layerwise forward; the tokens before them run first in chunks of at most `ubatch` (runtime/prefill_chunks.h),
// unstreamed, since a layer's state is final only once it has seen every token: memory then follows the
// ubatch instead of the prompt, and the writing has only the last chunk's compute to hide behind. Each sink receives exactly the bytes write_state
// would give for the finished state (tested), so a receiver checks record by record as they arrive.
//
//   SequenceState s(model->state_spec());
//   std::vector<float> logits(model->info().vocab_size);
//   FdSink out(sock);
//   SequenceState* states[] = {&s};
//   Sink* sinks[] = {&out};
//   auto st = prefill_streamed(*model, Batch::single(ids), states, sinks, id, {.dtype = DType::BF16},
//                              logits.data());
//
// The sinks may be slow (a network): nothing is copied, the writer reads the states in place, and
// the call returns once every byte is out. Thread-safety: the model is shared; the states and sinks
// belong to this call until it returns.

#include <cstdint>
#include <span>
#include <vector>

#include "linfer/model.h"
#include "runtime/state_format.h"

namespace linfer {

struct StreamedPrefillStats {
  double forward_s = 0;      // from the call to the end of the last layer (and the logits), chunks before included
  double write_busy_s = 0;   // time the writer spent writing (serializing, compressing, in the sinks)
  double write_hidden_s = 0; // the part of write_busy_s spent while the forward was still running
  double tail_s = 0;         // from the end of the forward to the last byte: what streaming did not hide
  double total_s = 0;
  std::vector<uint64_t> bytes;  // written to each sink
};

// Advances states[i] by sequence i of `batch` and writes each finished state to sinks[i]. `logits`:
// [n_seqs, vocab] floats, filled with each sequence's last-token logits, which also go into its
// stream as the logits record; null: no logits record. ubatch: 0 streams whole prompts from one
// layerwise forward; N > 0 runs each sequence's tokens before its last N in chunks of N first. Token ids
// are checked before any state changes. Errors of the forward or of any sink are rethrown once the
// forward is over (a failed sink stops only the writing; states are advanced).
StreamedPrefillStats prefill_streamed(const Model& model, const Batch& batch, std::span<SequenceState* const> states,
                                      std::span<Sink* const> sinks, const StateIdentity& id,
                                      const StateWriteOptions& options, float* logits, int64_t ubatch = 0);

}  // namespace linfer
