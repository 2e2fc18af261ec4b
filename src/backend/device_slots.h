#pragma once
// StateSlots in a device's memory, as a model's forward binds them to a call (backend/backend.h's
// SlotBinding): every Fixed state tensor of a slot at its own offset, slot after slot; each Growing one
// (KV / latent caches) in rows of its own per slot. The CUDA backend's
// pool; the CPU backend keeps host SequenceStates instead (backend/host_slots.h).

#include <span>

#include "backend/backend.h"

namespace linfer {

class DeviceStateSlots : public StateSlots {
 public:
  virtual const Backend& backend() const = 0;  // whose memory the slots are in
  // The pool bound to a call over `ids` (one slot per sequence) and `seqs` (their tokens): every Growing
  // tensor of sequence i's slot grows by its tokens' rows (contents undefined until the call's ops write
  // them), then the ids, the table of the caches' rows and seqs' offsets and positions go to the device in
  // one upload. Valid until the next bind. Throws linfer::Error, changing nothing, when memory runs out.
  virtual SlotBinding bind(std::span<const int32_t> ids, const Seqs& seqs) = 0;
  virtual void advance(int slot, int64_t n_tokens) = 0;  // the slot's sequence grew by n tokens
  // Copies state tensors [first, last) of the slot into `out` (host): Fixed ones whole, Growing ones the
  // rows past those `out` holds (it holds a prefix of the slot's rows: the state the slot was loaded
  // from, or an emptied one). Leaves out's token count alone. What a streamed prefill ships per layer.
  virtual void save_tensors(int slot, size_t first, size_t last, SequenceState& out) const = 0;
  // Growing state tensor j of a slot (a KV or latent cache): its rows in device memory (a bind may move
  // them) and their count.
  virtual const float* rows_data(int slot, size_t j) const = 0;
  virtual int64_t rows(int slot, size_t j) const = 0;
};

}  // namespace linfer
