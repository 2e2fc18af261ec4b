#pragma once
// Softmax attention with a growing KV cache (Qwen3-Next's gated attention, and plain GQA):
//   q (and a per-head output gate when output_gate), k, v = projections of x
//   q, k = RMSNorm_head (zero-centred weights here, per `norm`) when qk_norm; partial RoPE on the
//   first rope_dim dims of each head (rotate_half convention)
//   o = causal softmax attention over the cache, GQA; o *= sigmoid(gate); y = o_proj(o)
// State per sequence: attn.k, attn.v, growing rows [Hkv·D] float32.

#include <vector>

#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct AttentionWeights {
  Weight q_proj;           // [H·D·(output_gate ? 2 : 1), hidden], per head [q (D) | gate (D)]
  Weight k_proj, v_proj;   // [Hkv·D, hidden]
  Weight o_proj;           // [hidden, H·D]
  Param q_norm, k_norm;    // [D] (qk_norm only)
};

class AttentionMixer final : public Mixer {
 public:
  // zero_centred_qk_norm: q/k norm weights apply as (1 + w) (Qwen3-Next).
  AttentionMixer(const AttentionDims& dims, double norm_eps, bool zero_centred_qk_norm, AttentionWeights w);
  static void state_spec(const AttentionDims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const Mat& x, const Mat& y, const MixerCall& call) const override;
  bool step_replayable() const override { return true; }

 private:
  AttentionDims d_;
  double eps_;
  bool zero_centred_;
  AttentionWeights w_;
  std::vector<float> inv_freq_;  // [rope_dim / 2]
};

}  // namespace linfer
