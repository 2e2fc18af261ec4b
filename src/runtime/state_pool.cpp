#include "runtime/state_pool.h"

#include <algorithm>

#include "backend/host_slots.h"
#include "linfer/core/error.h"

namespace linfer {

namespace {

size_t row_bytes(const StateTensorSpec& t) { return size_t(shape_numel(t.shape)) * sizeof(float); }

int at_least_one(int n_slots) {
  LINFER_CHECK(n_slots >= 1, "the state pool needs at least one slot, not {}", n_slots);
  return n_slots;
}

}  // namespace

StatePool::StatePool(const Model& model, int n_slots, size_t kv_budget_bytes, int n_spare)
    : StatePool(model.state_spec(), model.make_slots(at_least_one(n_slots) + std::max(n_spare, 0)), n_slots,
                kv_budget_bytes) {}

StatePool::StatePool(const StateSpec& spec, int n_slots, size_t kv_budget_bytes, int n_spare)
    : StatePool(spec, std::make_unique<HostStateSlots>(spec, at_least_one(n_slots) + std::max(n_spare, 0)), n_slots,
                kv_budget_bytes) {}

StatePool::StatePool(const StateSpec& spec, std::unique_ptr<StateSlots> slots, int n, size_t kv_budget_bytes)
    : spec_(spec), slots_(std::move(slots)), kv_budget_(kv_budget_bytes) {
  host_ = dynamic_cast<HostStateSlots*>(slots_.get());
  if (!host_) scratch_ = SequenceState(spec_);
  reserved_.assign(size_t(n), 0);
  used_.assign(size_t(n), false);
  for (int i = n - 1; i >= 0; --i) free_.push_back(i);  // slot 0 first
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
  LINFER_CHECK(!free_.empty(), "state pool: no free slot (all {} in use)", used_.size());
  LINFER_CHECK(kv_bytes <= kv_free(), "state pool: {} KV bytes requested, {} free of {}", kv_bytes, kv_free(),
               kv_budget_);
  const int slot = free_.back();
  free_.pop_back();
  slots_->reset(slot);
  reserved_[size_t(slot)] = kv_bytes;
  used_[size_t(slot)] = true;
  kv_reserved_ += kv_bytes;
  return slot;
}

void StatePool::release(int slot) {
  LINFER_CHECK(slot >= 0 && size_t(slot) < used_.size() && used_[size_t(slot)], "state pool: slot {} is not in use",
               slot);
  kv_reserved_ -= reserved_[size_t(slot)];
  reserved_[size_t(slot)] = 0;
  used_[size_t(slot)] = false;
  free_.push_back(slot);
}

const SequenceState& StatePool::view(int slot) {
  if (host_) return host_->at(slot);
  slots_->save(slot, scratch_);
  return scratch_;
}

size_t StatePool::fixed_bytes_in_use() const { return fixed_bytes(spec_) * (used_.size() - free_.size()); }

size_t StatePool::kv_bytes_in_use() const {
  // A Growing tensor holds one row per token of its sequence.
  size_t total = 0;
  for (int slot = 0; slot < n_slots(); ++slot)
    if (used_[size_t(slot)]) total += kv_bytes_for(slots_->n_tokens(slot));
  return total;
}

}  // namespace linfer
