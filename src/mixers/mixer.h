#pragma once
// A token mixer: declares the per-sequence state it needs (StateSpec tensors) and maps normed
// hidden states x [T, hidden] to its output y [T, hidden] over packed sequences, advancing each
// sequence's state. When every sequence brings exactly one token the mixer runs its recurrent step
// form; otherwise its chunked prefill form. Both read and write the same state layout.
//
// Mixers are immutable after construction (weights are views into the mmap'd checkpoint or small
// float32 copies) and reentrant; per-call scratch comes from mixers/scratch.h.

#include <cstdint>
#include <span>
#include <vector>

#include "linfer/state.h"

namespace linfer {

// One forward call of one layer.
struct MixerCall {
  int64_t T = 0;                         // tokens in the call, all sequences
  std::span<const int64_t> offsets;      // n_seqs + 1
  std::span<const int64_t> positions;    // [T] absolute position of each token
  std::span<SequenceState* const> states;
  size_t first_tensor = 0;               // index of this layer's first state tensor
  bool decode = false;                   // every sequence has exactly one token

  int64_t n_seqs() const { return int64_t(offsets.size()) - 1; }
  // Sequence i's j-th state tensor of this layer.
  float* state(int64_t i, size_t j) const { return states[i]->data(first_tensor + j); }
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // Appends this layer's state tensors (their order is the order of MixerCall::state(i, j)).
  virtual void declare_state(int layer, std::vector<StateTensorSpec>& out) const = 0;
  virtual void forward(const float* x,  // [T, hidden]
                       float* y,        // [T, hidden]
                       const MixerCall& call) const = 0;
};

}  // namespace linfer
