#include "mixers/mla.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/mla.h"
#include "kernels/cpu/norm.h"
#include "linfer/core/error.h"
#include "mixers/scratch.h"

namespace linfer {

void MlaMixer::state_spec(const MlaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "mla.latent", StateKind::Growing, {d.latent_dim()}, 0, "[tokens, kv_lora_rank + rope]"});
}

void MlaMixer::forward(const float* x, float* y, const MixerCall& call) const {
  using namespace kernels;
  const int64_t T = call.T, H = d_.heads, dq = d_.qk_nope + d_.qk_rope, L = d_.latent_dim();
  Scratch s;

  float* q = s.get(T * H * dq);
  if (d_.q_lora_rank > 0) {
    float* qa = s.get(T * d_.q_lora_rank);
    matmul(x, T, w_.q_a, nullptr, qa);
    rms_norm(qa, w_.q_a_norm.f32(), qa, T, d_.q_lora_rank, float(d_.latent_norm_eps));
    matmul(qa, T, w_.q_b, nullptr, q);
  } else {
    matmul(x, T, w_.q_proj, nullptr, q);
  }
  LINFER_CHECK(!d_.rope, "MLA with RoPE is not implemented (Kimi Linear's MLA is NoPE)");

  // The latent rows: [c | k_r] with c normalised; appended to each sequence's cache.
  float* lat = s.get(T * L);
  matmul(x, T, w_.kv_a, nullptr, lat);
  for (int64_t t = 0; t < T; ++t)
    rms_norm(lat + t * L, w_.kv_a_norm.f32(), lat + t * L, 1, d_.kv_lora_rank, float(d_.latent_norm_eps));
  thread_local std::vector<MlaCache> caches;
  caches.resize(size_t(call.n_seqs()));
  for (int64_t i = 0; i < call.n_seqs(); ++i) {
    const int64_t b = call.offsets[i], n = call.offsets[i + 1] - b;
    SequenceState& st = *call.states[i];
    std::memcpy(st.append_rows(call.first_tensor, n), lat + b * L, n * L * sizeof(float));
    caches[i] = {st.data(call.first_tensor), st.rows(call.first_tensor)};
  }
  kernels::MlaDims md{.n_heads = H, .kv_lora_rank = d_.kv_lora_rank, .qk_nope_dim = d_.qk_nope,
                      .qk_rope_dim = d_.qk_rope, .v_dim = d_.v_head, .scale = float(1.0 / std::sqrt(double(dq)))};
  float* o = s.get(T * H * d_.v_head);
  mla_attention(q, md, w_.kv_b, call.offsets, caches, o);
  matmul(o, T, w_.o_proj, nullptr, y);
}

}  // namespace linfer
