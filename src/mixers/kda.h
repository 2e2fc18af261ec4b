#pragma once
// Kimi Delta Attention layer (Kimi Linear). Per token, x = normed hidden:
//   q, k, v = SiLU(ShortConv(W_{q,k,v} x))          three depthwise causal convs (no bias)
//   g       = -exp(A_log[h]) · softplus(f_b(f_a(x)) + dt_bias)    per key channel, log decay
//   β       = sigmoid(b(x))                                         per value head
//   o       = KDA(l2norm(q) / √K, l2norm(k), v, g, β)               kernels/cpu/delta_rule.h
//   y       = o_proj(RMSNorm_head(o) · w · sigmoid(g_b(g_a(x))))
// State per sequence: conv.q / conv.k [H·K, W-1], conv.v [HV·V, W-1], kda.S [HV, V, K].

#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct KdaWeights {
  Weight q_proj, k_proj;  // [H·K, hidden]
  Weight v_proj;          // [HV·V, hidden]
  Param conv_q, conv_k;   // [H·K, W]
  Param conv_v;           // [HV·V, W]
  Weight f_a;             // [r, hidden]  forget gate, low rank
  Weight f_b;             // [HV·K, r]
  Param A_log;            // [HV]
  Param dt_bias;          // [HV·K]
  Weight b_proj;          // [HV, hidden]
  Weight g_a;             // [r', hidden] output gate, low rank
  Weight g_b;             // [HV·V, r']
  Param o_norm;           // [V]
  Weight o_proj;          // [hidden, HV·V]
};

class KdaMixer final : public Mixer {
 public:
  KdaMixer(const DeltaDims& dims, double norm_eps, KdaWeights w) : d_(dims), eps_(norm_eps), w_(std::move(w)) {}
  static void state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const Mat& x, const Mat& y, const MixerCall& call) const override;
  bool step_replayable() const override { return true; }

 private:
  DeltaDims d_;
  double eps_;
  KdaWeights w_;
};

}  // namespace linfer
