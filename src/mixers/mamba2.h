#pragma once
// Mamba2 mixer (SSD). Per token, x = normed hidden:
//   [z | xBC | dt] = in_proj(x)                 z, x: d_inner = H·P; B, C: G·N each; dt: H
//   xBC = SiLU(ShortConv(xBC))                  depthwise causal conv with bias
//   y = SSD(x, dt, B, C; A_log, dt_bias, D)     kernels/cpu/mamba2_ssd.h
//   out = out_proj(RMSNorm(y · SiLU(z)) · w)    gate before norm (transformers' MambaRMSNormGated)
// State per sequence: conv [d_inner + 2·G·N, W-1], ssm [H, P, N].

#include "linfer/core/tensor.h"
#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct Mamba2Weights {
  TensorView in_proj;           // [2·d_inner + 2·G·N + H, hidden]
  Tensor in_proj_bias;          // f32 [...] or empty
  Tensor conv, conv_bias;       // f32 [conv_dim, W], [conv_dim] (conv_bias may be empty)
  Tensor A_log, dt_bias, D;     // f32 [H]
  Tensor norm;                  // f32 [d_inner]
  TensorView out_proj;          // [hidden, d_inner]
  Tensor out_proj_bias;         // f32 [hidden] or empty
};

class Mamba2Mixer final : public Mixer {
 public:
  Mamba2Mixer(const Mamba2Dims& dims, double norm_eps, Mamba2Weights w)
      : d_(dims), eps_(norm_eps), w_(std::move(w)) {}
  static void state_spec(const Mamba2Dims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const float* x, float* y, const MixerCall& call) const override;

 private:
  Mamba2Dims d_;
  double eps_;
  Mamba2Weights w_;
};

}  // namespace linfer
