#include "mixers/attention.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "kernels/cpu/rope.h"
#include "mixers/scratch.h"

namespace linfer {

AttentionMixer::AttentionMixer(const AttentionDims& dims, double norm_eps, bool zero_centred_qk_norm,
                               AttentionWeights w)
    : d_(dims), eps_(norm_eps), zero_centred_(zero_centred_qk_norm), w_(std::move(w)) {
  if (d_.rope_dim > 0) inv_freq_ = kernels::rope_inv_freq(d_.rope_dim, d_.rope_theta);
}

void AttentionMixer::state_spec(const AttentionDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "attn.k", StateKind::Growing, {d.kv_heads, d.head_dim}, 0, "[tokens, Hkv, D]"});
  out.push_back({layer, "attn.v", StateKind::Growing, {d.kv_heads, d.head_dim}, 0, "[tokens, Hkv, D]"});
}

void AttentionMixer::forward(const float* x, float* y, const MixerCall& call) const {
  using namespace kernels;
  const int64_t T = call.T, H = d_.heads, Hkv = d_.kv_heads, D = d_.head_dim;
  Scratch s;

  float* q = s.get(T * H * D);
  float* gate = nullptr;
  if (d_.output_gate) {
    float* qg = s.get(T * H * 2 * D);
    gate = s.get(T * H * D);
    matmul(x, T, w_.q_proj, nullptr, qg);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t h = 0; h < H; ++h) {
        std::memcpy(q + (t * H + h) * D, qg + (t * H + h) * 2 * D, D * sizeof(float));
        std::memcpy(gate + (t * H + h) * D, qg + (t * H + h) * 2 * D + D, D * sizeof(float));
      }
  } else {
    matmul(x, T, w_.q_proj, nullptr, q);
  }
  float* k = s.get(T * Hkv * D);
  float* v = s.get(T * Hkv * D);
  matmul(x, T, w_.k_proj, nullptr, k);
  matmul(x, T, w_.v_proj, nullptr, v);
  if (d_.qk_norm) {
    const auto mode = zero_centred_ ? NormWeight::OnePlus : NormWeight::Plain;
    rms_norm(q, w_.q_norm.f32(), q, T * H, D, float(eps_), mode);
    rms_norm(k, w_.k_norm.f32(), k, T * Hkv, D, float(eps_), mode);
  }
  if (d_.rope_dim > 0) {
    rope(q, T, H, D, d_.rope_dim, call.positions, inv_freq_);
    rope(k, T, Hkv, D, d_.rope_dim, call.positions, inv_freq_);
  }

  // Append this call's K/V to each sequence's cache, then attend.
  thread_local std::vector<KvCache> caches;
  caches.resize(size_t(call.n_seqs()));
  const int64_t row = Hkv * D;
  for (int64_t i = 0; i < call.n_seqs(); ++i) {
    const int64_t b = call.offsets[i], n = call.offsets[i + 1] - b;
    SequenceState& st = *call.states[i];
    std::memcpy(st.append_rows(call.first_tensor, n), k + b * row, n * row * sizeof(float));
    std::memcpy(st.append_rows(call.first_tensor + 1, n), v + b * row, n * row * sizeof(float));
    caches[i] = {st.data(call.first_tensor), st.data(call.first_tensor + 1), st.rows(call.first_tensor)};
  }
  kernels::AttentionDims ad{.n_heads = H, .n_kv_heads = Hkv, .qk_dim = D, .v_dim = D,
                            .scale = float(1.0 / std::sqrt(double(D)))};
  float* o = s.get(T * H * D);
  if (call.decode) attention_decode(q, ad, caches, o);
  else attention_prefill(q, ad, call.offsets, caches, o);

  if (gate) {
    sigmoid(gate, gate, T * H * D);
    for (int64_t i = 0; i < T * H * D; ++i) o[i] *= gate[i];
  }
  matmul(o, T, w_.o_proj, nullptr, y);
}

}  // namespace linfer
