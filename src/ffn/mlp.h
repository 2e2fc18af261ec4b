#pragma once
// SwiGLU MLP: y = down(silu(gate(x)) · up(x)). The gate and up projections are either two tensors
// ([I, hidden] each) or one packed gate_up tensor ([2·I, hidden], gate rows first), as
// transformers packs MoE experts.

#include "ffn/ffn.h"

namespace linfer {

struct MlpWeights {
  Weight gate, up;  // [I, hidden] each, or empty when gate_up is set
  Weight gate_up;   // [2·I, hidden]
  Weight down;      // [hidden, I]
  int64_t intermediate() const { return down.dim(1); }
};

class Mlp final : public Ffn {
 public:
  explicit Mlp(MlpWeights w) : w_(std::move(w)) {}
  void forward(Backend& be, const Mat& x, const Mat& y) const override;

 private:
  MlpWeights w_;
};

// The MLP maths without the Ffn wrapper (the MoE runs it per expert on gathered rows).
void swiglu_mlp(Backend& be, const MlpWeights& w, const Mat& x, const Mat& y);

}  // namespace linfer
