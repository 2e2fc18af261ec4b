#pragma once
// StateSlots in host memory: n SequenceStates, each allocated when first used (a pool with room for many
// states costs only what its used slots hold). The CPU backend's pool, and the staging of any backend's
// states on the host.

#include <vector>

#include "linfer/state_slots.h"

namespace linfer {

// Why state `s` was not made from `spec` (empty when it was): tensor count, then the first tensor
// that differs in layer, role, kind, shape, capacity or layout.
std::string spec_mismatch(const StateSpec& spec, const SequenceState& s);

class HostStateSlots final : public StateSlots {
 public:
  HostStateSlots(const StateSpec& spec, int n);
  int n_slots() const override { return int(states_.size()); }
  void load(int slot, const SequenceState& s) override;
  void save(int slot, SequenceState& out) const override;
  void copy(int from, int to) override;
  void reset(int slot) override { at(slot).reset(); }
  int64_t n_tokens(int slot) const override { return at(slot).n_tokens(); }
  SequenceState& at(int slot) { return at(slot, true); }  // allocates the slot's state on first use
  const SequenceState& at(int slot) const;

 private:
  SequenceState& at(int slot, bool allocate);  // without allocate: maybe a state with no tensors yet

  StateSpec spec_;
  std::vector<SequenceState> states_;  // an unused slot's has no tensors yet
};

}  // namespace linfer
