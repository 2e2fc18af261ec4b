#pragma once
// Feed-forward blocks: the SwiGLU MLP and the mixture of experts built from it, written over the ops
// of a backend (backend/backend.h) that holds their weights. Immutable after construction; forward is
// reentrant.

#include <cstdint>

#include "backend/backend.h"
#include "backend/moe_routing.h"

namespace linfer {

// A MoE layer's dimensions: its routing rule (backend/moe_routing.h) and the experts' sizes.
struct MoeDims : MoeRouting {
  int64_t intermediate = 0;
  int64_t shared_intermediate = 0;  // 0: no shared expert
  bool shared_gate = false;         // Qwen3-Next: shared expert scaled by sigmoid(x·w_gate)
  bool correction_bias = false;     // e_score_correction_bias added for selection only
};

class Ffn {
 public:
  virtual ~Ffn() = default;
  virtual void forward(Backend& be,
                       const Mat& x,  // [T, hidden]
                       const Mat& y   // [T, hidden]
                       ) const = 0;
  // Mixer::step_replayable's promise for a decode step of `rows` rows: the MLP always; the MoE where its
  // routing runs on the backend (Moe::forward).
  virtual bool step_replayable(int64_t rows) const = 0;
};

}  // namespace linfer
