#pragma once
// SwiGLU MLP: y = down(silu(gate(x)) · up(x)). The gate and up projections are either two tensors
// ([I, hidden] each) or one packed gate_up tensor ([2·I, hidden], gate rows first), as
// transformers packs MoE experts.

#include <vector>

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
  bool step_replayable(int64_t) const override { return true; }

 private:
  MlpWeights w_;
};

// The MLP maths without the Ffn wrapper.
void swiglu_mlp(Backend& be, const MlpWeights& w, const Mat& x, const Mat& y);

// The same in steps, so that a MoE runs the products of all its experts together (one
// Backend::matmul_many for every gate / up, one for every down): swiglu_up_calls adds the gate and up
// products of x [T, hidden] into h (T · 2·I floats of scratch); after they ran, swiglu_activate forms
// silu(gate) · up in place and returns it ([T, I] at the front of h), the down product's input.
void swiglu_up_calls(const MlpWeights& w, const Mat& x, float* h, std::vector<Backend::MatmulCall>& calls);
Mat swiglu_activate(Backend& be, const MlpWeights& w, int64_t T, float* h);

}  // namespace linfer
