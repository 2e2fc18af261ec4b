#pragma once
// Feed-forward blocks: the SwiGLU MLP and the mixture of experts built from it, written over the ops
// of a backend (backend/backend.h) that holds their weights. Immutable after construction; forward is
// reentrant.

#include <cstdint>

#include "backend/backend.h"

namespace linfer {

enum class RouterKind : uint8_t { Softmax, Sigmoid };

struct MoeDims {
  int64_t experts = 0, top_k = 0, intermediate = 0;
  int64_t shared_intermediate = 0;  // 0: no shared expert
  bool shared_gate = false;         // Qwen3-Next: shared expert scaled by sigmoid(x·w_gate)
  RouterKind router = RouterKind::Softmax;
  bool renormalize = true;
  bool correction_bias = false;     // e_score_correction_bias added for selection only
  double routed_scaling = 1.0;
  int64_t groups = 1, topk_groups = 1;  // group-limited routing (DeepSeek style); 1, 1 = plain top-k
};

class Ffn {
 public:
  virtual ~Ffn() = default;
  virtual void forward(Backend& be,
                       const Mat& x,  // [T, hidden]
                       const Mat& y   // [T, hidden]
                       ) const = 0;
  // Mixer::step_replayable's promise for a decode batch's rows: the MLP, not the MoE (its routing runs on
  // the host).
  virtual bool step_replayable() const { return false; }
};

}  // namespace linfer
