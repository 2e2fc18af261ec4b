#pragma once
// Mamba2 mixer (SSD). Per token, x = normed hidden:
//   [z | xBC | dt] = in_proj(x)                 z, x: d_inner = H·P; B, C: G·N each; dt: H
//   xBC = SiLU(ShortConv(xBC))                  depthwise causal conv with bias
//   y = SSD(x, dt, B, C; A_log, dt_bias, D)     kernels/cpu/mamba2_ssd.h
//   out = out_proj(RMSNorm(y · SiLU(z)) · w)    gate before norm (transformers' MambaRMSNormGated)
// State per sequence: conv [d_inner + 2·G·N, W-1], ssm [H, P, N].

#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct Mamba2Weights {
  Weight in_proj;              // [2·d_inner + 2·G·N + H, hidden]
  Param in_proj_bias;          // [2·d_inner + 2·G·N + H] or empty
  Param conv, conv_bias;       // [conv_dim, W], [conv_dim] (conv_bias may be empty)
  Param A_log, dt_bias, D;     // [H]
  Param norm;                  // [d_inner]
  Weight out_proj;             // [hidden, d_inner]
  Param out_proj_bias;         // [hidden] or empty
};

class Mamba2Mixer final : public Mixer {
 public:
  Mamba2Mixer(const Mamba2Dims& dims, double norm_eps, Mamba2Weights w)
      : d_(dims), eps_(norm_eps), w_(std::move(w)) {}
  static void state_spec(const Mamba2Dims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const Mat& x, const Mat& y, const MixerCall& call) const override;
  bool step_replayable() const override { return true; }

 private:
  Mamba2Dims d_;
  double eps_;
  Mamba2Weights w_;
};

}  // namespace linfer
