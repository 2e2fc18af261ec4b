#pragma once
// A token mixer: declares the per-sequence state it needs (StateSpec tensors) and maps normed
// hidden states x [T, hidden] to its output y [T, hidden] over packed sequences, advancing each
// sequence's state. When every sequence brings exactly one token the mixer runs its recurrent step
// form; otherwise its chunked prefill form. Both read and write the same state layout.
//
// A mixer's logic is written once, over the ops of the call's backend (backend/backend.h); its weights
// are handles in that backend's memory. Mixers are immutable after construction and reentrant.

#include <cstdint>
#include <span>
#include <vector>

#include "backend/backend.h"
#include "linfer/state.h"

namespace linfer {

// One forward call of one layer.
struct MixerCall {
  Backend* be = nullptr;                  // where x, y, the weights and the states live
  int64_t T = 0;                          // tokens in the call, all sequences
  Seqs seqs;                              // offsets, positions, decode
  std::span<SequenceState* const> states = {};  // host states (CPU backend), or
  const SlotBinding* slots = nullptr;     // the backend's slot pool
  size_t first_tensor = 0;                // index of this layer's first state tensor

  int64_t n_seqs() const { return seqs.n(); }
  // This layer's j-th state tensor of every sequence.
  StateRef state(size_t j) const {
    return slots ? slots->tensor(first_tensor + j) : StateRef{.seqs = states, .tensor = first_tensor + j};
  }
};

class Mixer {
 public:
  virtual ~Mixer() = default;
  // Appends this layer's state tensors (their order is the order of MixerCall::state(j)).
  virtual void declare_state(int layer, std::vector<StateTensorSpec>& out) const = 0;
  virtual void forward(const Mat& x,  // [T, hidden]
                       const Mat& y,  // [T, hidden]
                       const MixerCall& call) const = 0;
  // Whether the step form (seqs.decode) issues backend ops whose arguments depend on nothing but the batch
  // size and the call's slot binding, with no host-side work between them, so that a model may record the
  // step once and replay it (Backend::run_recorded). Attention and MLA qualify through the binding: their
  // caches' rows, the call's offsets and positions are read from the backend's memory, and their work split
  // follows the class of the longest cache, which the model adds to the recording's key.
  virtual bool step_replayable() const = 0;
};

}  // namespace linfer
