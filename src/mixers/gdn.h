#pragma once
// Gated DeltaNet layer (Qwen3-Next). Per token, x = normed hidden:
//   [q k v z] = in_proj_qkvz(x), [b a] = in_proj_ba(x)   both grouped per key head in the checkpoint:
//       key head j's block of in_proj_qkvz is [q_j (K) | k_j (K) | v (r·V) | z (r·V)], r = HV / H,
//       and of in_proj_ba [b (r) | a (r)] (transformers' fix_query_key_value_ordering); the loader
//       regroups the rows into in_proj_qkv ([all q | all k | all v], the conv's channel order), in_proj_z,
//       in_proj_b and in_proj_a (llama.cpp's GGUF splits in_proj_qkvz so itself, and may quantize the two
//       parts to different types)
//   q, k, v = SiLU(ShortConv([q | k | v]))   one depthwise conv over 2·H·K + HV·V channels
//   g = -exp(A_log) · softplus(a + dt_bias), β = sigmoid(b)   one scalar per value head
//   o = GDN(l2norm(q) / √K, l2norm(k), v, g, β)               kernels/cpu/delta_rule.h
//   y = out_proj(RMSNorm_head(o) · w · SiLU(z))                plain weight (not zero-centred)
// State per sequence: conv [2·H·K + HV·V, W-1], gdn.S [HV, V, K].

#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct GdnWeights {
  // The checkpoint's in_proj_qkvz / in_proj_ba (grouped per key head) regrouped at load into one product per
  // part (models/load_layers.cpp), or llama.cpp's split in_proj_qkv / in_proj_z taken as they are.
  Weight in_proj_qkv;   // [2·H·K + HV·V, hidden], rows [all q | all k | all v] (the conv's channel order)
  Weight in_proj_z;     // [HV·V, hidden]
  Weight in_proj_b;     // [HV, hidden]
  Weight in_proj_a;     // [HV, hidden]
  Param conv;           // [2·H·K + HV·V, W]
  Param A_log, dt_bias; // [HV]
  Param norm;           // [V]
  Weight out_proj;      // [hidden, HV·V]
};

class GdnMixer final : public Mixer {
 public:
  GdnMixer(const DeltaDims& dims, double norm_eps, GdnWeights w) : d_(dims), eps_(norm_eps), w_(std::move(w)) {}
  static void state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const Mat& x, const Mat& y, const MixerCall& call) const override;
  bool step_replayable() const override { return true; }

 private:
  DeltaDims d_;
  double eps_;
  GdnWeights w_;
};

}  // namespace linfer
