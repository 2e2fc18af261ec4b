#pragma once
// The server's sequence states: `n_slots` SequenceStates allocated at start (every Fixed and Ring
// tensor whole, so the recurrent bytes are known up front), plus byte accounting for the attention
// layers' KV (Growing tensors), which grows with each sequence's length. A slot is acquired with the
// KV bytes its sequence may reach (kv_bytes_for(max length)) reserved against the KV budget, so
// admission is by bytes, and an admitted sequence never runs out of room.
//
//   StatePool pool(model->state_spec(), 16, 1ull << 30);
//   if (pool.free_slots() >= 1 && pool.kv_free() >= pool.kv_bytes_for(4096)) {
//     int slot = pool.acquire(pool.kv_bytes_for(4096));   // an empty sequence
//     model->forward(batch, {&pool.state(slot)}, ...);
//     pool.release(slot);
//   }
//
// Thread-safety: none; the engine thread owns the pool.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "linfer/state.h"

namespace linfer {

class StatePool {
 public:
  StatePool(const StateSpec& spec, int n_slots, size_t kv_budget_bytes);

  // Bytes of one slot's Fixed + Ring tensors (SequenceState allocates a ring's capacity rows at
  // construction, so sliding-window KV is fixed too), whatever the sequence's length.
  static size_t fixed_bytes(const StateSpec& spec);
  // KV bytes of a sequence of `tokens` tokens: one row of every Growing tensor per token.
  static size_t kv_bytes_for(const StateSpec& spec, int64_t tokens);
  size_t kv_bytes_for(int64_t tokens) const { return kv_bytes_for(spec_, tokens); }

  int n_slots() const { return int(slots_.size()); }
  int free_slots() const { return int(free_.size()); }
  size_t kv_budget() const { return kv_budget_; }
  size_t kv_reserved() const { return kv_reserved_; }
  size_t kv_free() const { return kv_budget_ - kv_reserved_; }

  // Takes a free slot, reset to an empty sequence, and reserves kv_bytes. Throws linfer::Error when
  // no slot is free or the reservation exceeds kv_free() (callers check first).
  int acquire(size_t kv_bytes);
  void release(int slot);  // frees the slot and its reservation
  SequenceState& state(int slot) { return slots_[size_t(slot)].state; }

  size_t fixed_bytes_in_use() const;  // Fixed + Ring bytes of the slots in use
  size_t kv_bytes_in_use() const;     // Growing bytes the slots in use hold now

 private:
  struct Slot {
    SequenceState state;
    size_t kv_reserved = 0;
    bool in_use = false;
  };
  StateSpec spec_;
  std::vector<Slot> slots_;
  std::vector<int> free_;  // a stack: the most recently released slot is reused first (warm memory)
  size_t kv_budget_ = 0;
  size_t kv_reserved_ = 0;
};

}  // namespace linfer
