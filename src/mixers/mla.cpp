#include "mixers/mla.h"

#include <cmath>

#include "linfer/core/error.h"

namespace linfer {

void MlaMixer::state_spec(const MlaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "mla.latent", StateKind::Growing, {d.latent_dim()}, 0, "[tokens, kv_lora_rank + rope]"});
}

void MlaMixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, H = d_.heads, dq = d_.qk_nope + d_.qk_rope, L = d_.latent_dim();
  const float eps = float(d_.latent_norm_eps);
  Tmp tmp(be);

  // q (or its LoRA's first half) and the latent rows [c | k_r] from x in one call.
  Mat q = tmp.mat(T, H * dq), lat = tmp.mat(T, L);
  Mat qa = d_.q_lora_rank > 0 ? tmp.mat(T, d_.q_lora_rank) : Mat();
  const Backend::MatmulCall proj[] = {{x, d_.q_lora_rank > 0 ? &w_.q_a : &w_.q_proj, d_.q_lora_rank > 0 ? qa : q},
                                      {x, &w_.kv_a, lat}};
  be.matmul_many(proj);
  if (d_.q_lora_rank > 0) {
    be.rms_norm(qa, w_.q_a_norm, qa, eps, kernels::NormWeight::Plain);
    be.matmul(qa, w_.q_b, {}, q);
  }
  LINFER_CHECK(!d_.rope, "MLA with RoPE is not implemented (Kimi Linear's MLA is NoPE)");

  // The latent rows, c normalised, are appended to each sequence's cache.
  be.rms_norm(lat.cols_of(0, d_.kv_lora_rank), w_.kv_a_norm, lat.cols_of(0, d_.kv_lora_rank), eps,
              kernels::NormWeight::Plain);
  const kernels::MlaDims md{.n_heads = H, .kv_lora_rank = d_.kv_lora_rank, .qk_nope_dim = d_.qk_nope,
                            .qk_rope_dim = d_.qk_rope, .v_dim = d_.v_head,
                            .scale = float(1.0 / std::sqrt(double(dq)))};
  Mat o = tmp.mat(T, H * d_.v_head);
  be.mla(q, lat, w_.kv_b, w_.kv_b_k_t, md, call.state(0), call.seqs, o);
  be.matmul(o, w_.o_proj, {}, y);
}

}  // namespace linfer
