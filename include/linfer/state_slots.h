#pragma once
// A fixed pool of sequence states kept where a model runs (host memory for the CPU, device memory for
// CUDA), addressed by slot: what a server's scheduler batches over. States move in and out through
// SequenceState (host), the same value that the state wire format saves and ships, so a state prefilled
// on one device continues on another.
//
//   auto slots = model->make_slots(8);
//   slots->load(3, saved);                                        // host -> slot 3
//   int32_t ids[] = {3};
//   model->forward_slots(Batch::single(prompt), *slots, ids, logits.data(), Logits::Last);
//   SequenceState now(model->state_spec());
//   slots->save(3, now);                                          // slot 3 -> host
//
// Thread-safety: none; one thread uses a pool (and the model calls that advance it) at a time.

#include <cstdint>

#include "linfer/state.h"

namespace linfer {

class StateSlots {
 public:
  virtual ~StateSlots() = default;
  virtual int n_slots() const = 0;
  // Copies `s` into the slot (its tensors and token count). Throws linfer::Error when s was not made
  // from this pool's model's state spec, or the slot is out of range.
  virtual void load(int slot, const SequenceState& s) = 0;
  // Copies the slot into `out` (made from the model's state_spec()).
  virtual void save(int slot, SequenceState& out) const = 0;
  // Slot `to` becomes a copy of slot `from` (every tensor, every cache row, the token count), inside the
  // pool's own memory: no trip through the host for a device pool.
  virtual void copy(int from, int to) = 0;
  virtual void reset(int slot) = 0;  // an empty sequence
  virtual int64_t n_tokens(int slot) const = 0;
};

}  // namespace linfer
