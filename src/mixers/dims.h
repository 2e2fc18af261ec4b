#pragma once
// Dimensions of each token-mixer family, as the architecture factories fill them from config.json.

#include <cstdint>

namespace linfer {

// Linear-attention family (KDA, GDN): q/k have `heads` heads of `head_k`, v/gates/beta `v_heads`
// heads of `head_v`.
struct DeltaDims {
  int64_t heads = 0, v_heads = 0, head_k = 0, head_v = 0;
  int64_t conv_width = 4;
  int64_t key_dim() const { return heads * head_k; }
  int64_t value_dim() const { return v_heads * head_v; }
  int64_t conv_dim() const { return 2 * key_dim() + value_dim(); }
};

struct Mamba2Dims {
  int64_t heads = 0, head_dim = 0, state = 0, groups = 1, conv_width = 4;
  bool conv_bias = true, proj_bias = false;
  double dt_min = 0.0, dt_max = 1e30;  // time_step_limit clamp on softplus(dt + dt_bias)
  int64_t norm_groups = 1;             // gated RMSNorm groups over d_inner (transformers: 1)
  int64_t d_inner() const { return heads * head_dim; }
  int64_t conv_dim() const { return d_inner() + 2 * groups * state; }
};

struct AttentionDims {
  int64_t heads = 0, kv_heads = 0, head_dim = 0;
  int64_t rope_dim = 0;  // leading dims of each head that RoPE rotates (0: NoPE)
  double rope_theta = 10000.0;
  bool qk_norm = false;      // per-head RMSNorm of q and k (before RoPE)
  bool output_gate = false;  // q_proj also yields a per-head gate: out *= sigmoid(gate)
};

struct MlaDims {
  int64_t heads = 0, q_lora_rank = 0 /* 0: direct q_proj */, kv_lora_rank = 0;
  int64_t qk_nope = 0, qk_rope = 0, v_head = 0;
  bool rope = false;  // Kimi Linear: NoPE (the k_rot part is kept but not rotated)
  double rope_theta = 10000.0;
  double latent_norm_eps = 1e-6;
  int64_t latent_dim() const { return kv_lora_rank + qk_rope; }
};

}  // namespace linfer
