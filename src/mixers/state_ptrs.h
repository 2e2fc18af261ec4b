#pragma once
// The per-sequence pointers of one state tensor, as kernels take them (std::span<float* const>).
// Backed by a per-thread buffer per slot so decode does not allocate.

#include <span>
#include <vector>

#include "mixers/mixer.h"

namespace linfer {

inline std::span<float* const> state_ptrs(const MixerCall& call, size_t tensor) {
  thread_local std::vector<std::vector<float*>> slots;
  if (slots.size() <= tensor) slots.resize(tensor + 1);
  auto& v = slots[tensor];
  v.resize(size_t(call.n_seqs()));
  for (int64_t i = 0; i < call.n_seqs(); ++i) v[i] = call.state(i, tensor);
  return v;
}

}  // namespace linfer
