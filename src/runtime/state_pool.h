#pragma once
// The server's sequence states: `n_slots` states kept where the model runs (Model::make_slots: host
// SequenceStates on the CPU, a device pool on CUDA), every Fixed and Ring tensor allocated at start so
// the recurrent bytes are known up front, plus byte accounting for the attention layers' KV (Growing
// tensors), which grows with each sequence's length. A slot is acquired with the KV bytes its sequence
// may reach (kv_bytes_for(max length)) reserved against the KV budget, so admission is by bytes, and an
// admitted sequence never runs out of room. States enter and leave the pool as host SequenceStates (the
// wire format's value; a snapshot, a restored or remotely prefilled state). Beside the running slots the pool may hold spare ones,
// never acquired: the prefix cache keeps states there (PrefixCache::attach_slots), so storing one and
// resuming from it are copies inside the pool's memory.
//
//   StatePool pool(*model, 16, 1ull << 30);
//   if (pool.free_slots() >= 1 && pool.kv_free() >= pool.kv_bytes_for(4096)) {
//     int slot = pool.acquire(pool.kv_bytes_for(4096));   // an empty sequence
//     model->forward_slots(batch, pool.slots(), {&slot, 1}, ...);
//     pool.release(slot);
//   }
//
// Thread-safety: none; the engine thread owns the pool.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "linfer/model.h"
#include "linfer/state.h"
#include "linfer/state_slots.h"

namespace linfer {

class HostStateSlots;

class StatePool {
 public:
  // Slots from model.make_slots(n_slots + n_spare): on the model's device.
  StatePool(const Model& model, int n_slots, size_t kv_budget_bytes, int n_spare = 0);
  // Host slots (tests).
  StatePool(const StateSpec& spec, int n_slots, size_t kv_budget_bytes, int n_spare = 0);

  // Bytes of one slot's Fixed + Ring tensors (SequenceState allocates a ring's capacity rows at
  // construction, so sliding-window KV is fixed too), whatever the sequence's length.
  static size_t fixed_bytes(const StateSpec& spec);
  // KV bytes of a sequence of `tokens` tokens: one row of every Growing tensor per token.
  static size_t kv_bytes_for(const StateSpec& spec, int64_t tokens);
  size_t kv_bytes_for(int64_t tokens) const { return kv_bytes_for(spec_, tokens); }

  int n_slots() const { return int(used_.size()); }  // the running ones: [0, n_slots())
  int n_spare() const { return slots_->n_slots() - n_slots(); }  // [n_slots(), n_slots() + n_spare())
  int free_slots() const { return int(free_.size()); }
  size_t kv_budget() const { return kv_budget_; }
  size_t kv_reserved() const { return kv_reserved_; }
  size_t kv_free() const { return kv_budget_ - kv_reserved_; }

  // Takes a free slot, reset to an empty sequence, and reserves kv_bytes. Throws linfer::Error when
  // no slot is free or the reservation exceeds kv_free() (callers check first).
  int acquire(size_t kv_bytes);
  void release(int slot);  // frees the slot and its reservation

  StateSlots& slots() { return *slots_; }  // what Model::forward_slots advances; the spare ones too
  // The slot's state on the host: the slot itself for host slots, else a copy made now into a buffer
  // the next view() overwrites.
  const SequenceState& view(int slot);
  void copy(int from, int to) { slots_->copy(from, to); }

  size_t fixed_bytes_in_use() const;  // Fixed + Ring bytes of the slots in use
  size_t kv_bytes_in_use() const;     // Growing bytes the slots in use hold now

 private:
  StatePool(const StateSpec& spec, std::unique_ptr<StateSlots> slots, int n_slots, size_t kv_budget_bytes);

  StateSpec spec_;
  std::unique_ptr<StateSlots> slots_;
  HostStateSlots* host_ = nullptr;  // slots_, when its states are host SequenceStates
  SequenceState scratch_;           // view()'s copy for device slots
  std::vector<size_t> reserved_;    // KV bytes reserved per slot
  std::vector<bool> used_;
  std::vector<int> free_;  // a stack: the most recently released slot is reused first (warm memory)
  size_t kv_budget_ = 0;
  size_t kv_reserved_ = 0;
};

}  // namespace linfer
