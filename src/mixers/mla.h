#pragma once
// Multi-head latent attention (Kimi Linear: NoPE). Per token, x = normed hidden:
//   q = q_proj(x)  (or q_b(RMSNorm(q_a(x))) with a q LoRA)           [H, d_n + d_r]
//   [c | k_r] = kv_a_proj_with_mqa(x); c = RMSNorm(c) (kv_a_layernorm)  the cached latent row
//   o = softmax(scale · q·kᵀ) v with k = [W_k c, k_r], v = W_v c          kernels/cpu/mla.h
//   y = o_proj(o)
// State per sequence: mla.latent, growing rows [kv_lora_rank + d_r] float32 — the latent, not the
// expanded per-head K/V.

#include "mixers/dims.h"
#include "mixers/mixer.h"

namespace linfer {

struct MlaWeights {
  Weight q_proj;              // [H·(d_n + d_r), hidden] (no q LoRA)
  Weight q_a, q_b;            // [q_lora, hidden], [H·(d_n + d_r), q_lora] (q LoRA)
  Param q_a_norm;             // [q_lora]
  Weight kv_a;                // [r + d_r, hidden]
  Param kv_a_norm;            // [r]
  Weight kv_b;                // [H·(d_n + d_v), r]
  Weight kv_b_k_t;            // [H·r, d_n]: W_k[h]ᵀ per head, made at load (kernels::mla_keys_transposed)
  Weight o_proj;              // [hidden, H·d_v]
};

class MlaMixer final : public Mixer {
 public:
  MlaMixer(const MlaDims& dims, MlaWeights w) : d_(dims), w_(std::move(w)) {}
  static void state_spec(const MlaDims& d, int layer, std::vector<StateTensorSpec>& out);
  void declare_state(int layer, std::vector<StateTensorSpec>& out) const override { state_spec(d_, layer, out); }
  void forward(const Mat& x, const Mat& y, const MixerCall& call) const override;
  bool step_replayable() const override { return d_.kv_lora_rank <= kMlaStepMaxRank; }

 private:
  MlaDims d_;
  MlaWeights w_;
};

}  // namespace linfer
