#include "runtime/state_pool.h"

#include <algorithm>

#include "linfer/core/error.h"

namespace linfer {

namespace {

size_t row_bytes(const StateTensorSpec& t) { return size_t(shape_numel(t.shape)) * sizeof(float); }

}  // namespace

StatePool::StatePool(const StateSpec& spec, int n_slots, size_t kv_budget_bytes)
    : spec_(spec), kv_budget_(kv_budget_bytes) {
  LINFER_CHECK(n_slots >= 1, "the state pool needs at least one slot, not {}", n_slots);
  slots_.reserve(size_t(n_slots));
  for (int i = 0; i < n_slots; ++i) slots_.push_back({SequenceState(spec_), 0, false});
  for (int i = n_slots - 1; i >= 0; --i) free_.push_back(i);  // slot 0 first
}

size_t StatePool::fixed_bytes(const StateSpec& spec) {
  size_t total = 0;
  for (const auto& t : spec.tensors) {
    if (t.kind == StateKind::Fixed) total += row_bytes(t);
    else if (t.kind == StateKind::Ring) total += row_bytes(t) * size_t(t.capacity);
  }
  return total;
}

size_t StatePool::kv_bytes_for(const StateSpec& spec, int64_t tokens) {
  size_t total = 0;
  for (const auto& t : spec.tensors)
    if (t.kind == StateKind::Growing) total += row_bytes(t) * size_t(std::max<int64_t>(tokens, 0));
  return total;
}

int StatePool::acquire(size_t kv_bytes) {
  LINFER_CHECK(!free_.empty(), "state pool: no free slot (all {} in use)", slots_.size());
  LINFER_CHECK(kv_bytes <= kv_free(), "state pool: {} KV bytes requested, {} free of {}", kv_bytes, kv_free(),
               kv_budget_);
  const int slot = free_.back();
  free_.pop_back();
  Slot& s = slots_[size_t(slot)];
  s.state.reset();
  s.kv_reserved = kv_bytes;
  s.in_use = true;
  kv_reserved_ += kv_bytes;
  return slot;
}

void StatePool::release(int slot) {
  LINFER_CHECK(slot >= 0 && size_t(slot) < slots_.size() && slots_[size_t(slot)].in_use,
               "state pool: slot {} is not in use", slot);
  Slot& s = slots_[size_t(slot)];
  kv_reserved_ -= s.kv_reserved;
  s.kv_reserved = 0;
  s.in_use = false;
  free_.push_back(slot);
}

size_t StatePool::fixed_bytes_in_use() const {
  return fixed_bytes(spec_) * (slots_.size() - free_.size());
}

size_t StatePool::kv_bytes_in_use() const {
  size_t total = 0;
  for (const Slot& s : slots_) {
    if (!s.in_use) continue;
    for (size_t i = 0; i < spec_.tensors.size(); ++i)
      if (spec_.tensors[i].kind == StateKind::Growing)
        total += size_t(s.state.rows(i)) * row_bytes(spec_.tensors[i]);
  }
  return total;
}

}  // namespace linfer
