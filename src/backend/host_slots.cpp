#include "backend/host_slots.h"

#include <fmt/format.h>

#include "linfer/core/error.h"

namespace linfer {

std::string spec_mismatch(const StateSpec& spec, const SequenceState& s) {
  const auto& want = spec.tensors;
  const auto& got = s.spec().tensors;
  if (got.size() != want.size())
    return fmt::format("it has {} state tensors, this model's state has {}", got.size(), want.size());
  for (size_t j = 0; j < want.size(); ++j) {
    const StateTensorSpec &a = got[j], &b = want[j];
    if (a.layer != b.layer || a.name != b.name || a.kind != b.kind || a.shape != b.shape ||
        a.capacity != b.capacity || a.layout != b.layout)
      return fmt::format("its tensor {} is layer {} '{}' {} {}, this model expects layer {} '{}' {} {}", j, a.layer,
                         a.name, shape_str(a.shape), a.layout, b.layer, b.name, shape_str(b.shape), b.layout);
  }
  return {};
}

HostStateSlots::HostStateSlots(const StateSpec& spec, int n) : spec_(spec) {
  LINFER_CHECK(n >= 1, "a state pool needs at least one slot (asked for {})", n);
  states_.resize(size_t(n));
}

SequenceState& HostStateSlots::at(int slot, bool allocate) {
  LINFER_CHECK(slot >= 0 && slot < n_slots(), "state slot {} is outside the pool [0, {})", slot, n_slots());
  SequenceState& s = states_[size_t(slot)];
  if (allocate && s.n_tensors() != spec_.tensors.size()) s = SequenceState(spec_);
  return s;
}

const SequenceState& HostStateSlots::at(int slot) const { return const_cast<HostStateSlots*>(this)->at(slot); }

void HostStateSlots::load(int slot, const SequenceState& s) {
  const std::string why = spec_mismatch(spec_, s);
  LINFER_CHECK(why.empty(), "cannot load a state into slot {}: {}", slot, why);
  at(slot) = s;
}

void HostStateSlots::save(int slot, SequenceState& out) const {
  const std::string why = spec_mismatch(spec_, out);
  LINFER_CHECK(why.empty(), "cannot save slot {} into that state: {}", slot, why);
  out = at(slot);
}

void HostStateSlots::copy(int from, int to) {
  const SequenceState& src = at(from);
  // A slot never used gets its buffers here, in the one pass of the copy; a used one keeps its own.
  if (from != to) at(to, /*allocate=*/false) = src;
}

}  // namespace linfer
