#pragma once
// SwiGLU MLP: y = down(silu(gate(x)) · up(x)). The gate and up projections are either two tensors
// ([I, hidden] each) or one packed gate_up tensor ([2·I, hidden], gate rows first), as
// transformers packs MoE experts.

#include "ffn/ffn.h"
#include "linfer/core/tensor.h"

namespace linfer {

struct MlpWeights {
  TensorView gate, up;  // [I, hidden] each, or empty when gate_up is set
  TensorView gate_up;   // [2·I, hidden]
  TensorView down;      // [hidden, I]
  int64_t intermediate() const { return down.dim(1); }
};

class Mlp final : public Ffn {
 public:
  explicit Mlp(MlpWeights w) : w_(std::move(w)) {}
  void forward(const float* x, float* y, int64_t T) const override;

 private:
  MlpWeights w_;
};

// The MLP maths without the Ffn wrapper (the MoE runs it per expert on gathered rows).
void swiglu_mlp(const MlpWeights& w, const float* x, float* y, int64_t T);

}  // namespace linfer
