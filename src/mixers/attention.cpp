#include "mixers/attention.h"

#include <cmath>

#include "kernels/cpu/rope.h"

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

void AttentionMixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, H = d_.heads, Hkv = d_.kv_heads, D = d_.head_dim;
  Tmp tmp(be);

  // q (with the output gate interleaved per head when there is one), k and v from x in one call.
  Mat q = tmp.mat(T, H * D), k = tmp.mat(T, Hkv * D), v = tmp.mat(T, Hkv * D);
  Mat qg = d_.output_gate ? tmp.mat(T, H * 2 * D) : Mat();  // per head [q (D) | gate (D)]
  const Backend::MatmulCall proj[] = {{x, &w_.q_proj, d_.output_gate ? qg : q}, {x, &w_.k_proj, k}, {x, &w_.v_proj, v}};
  be.matmul_many(proj);
  Mat gate;
  if (d_.output_gate) {
    gate = tmp.mat(T, H * D);
    const Mat heads(qg.p, T * H, 2 * D);
    be.copy(heads.cols_of(0, D), q.split_rows(D));
    be.copy(heads.cols_of(D, D), gate.split_rows(D));
  }
  if (d_.qk_norm) {
    const auto mode = zero_centred_ ? kernels::NormWeight::OnePlus : kernels::NormWeight::Plain;
    be.rms_norm(q.split_rows(D), w_.q_norm, q.split_rows(D), float(eps_), mode);
    be.rms_norm(k.split_rows(D), w_.k_norm, k.split_rows(D), float(eps_), mode);
  }
  if (d_.rope_dim > 0) {
    be.rope(q, H, D, d_.rope_dim, call.seqs, inv_freq_);
    be.rope(k, Hkv, D, d_.rope_dim, call.seqs, inv_freq_);
  }

  // Append this call's K/V to each sequence's cache, then attend.
  const kernels::AttentionDims ad{.n_heads = H, .n_kv_heads = Hkv, .qk_dim = D, .v_dim = D,
                                  .scale = float(1.0 / std::sqrt(double(D)))};
  Mat o = tmp.mat(T, H * D);
  be.attention(q, k, v, ad, call.state(0), call.state(1), call.seqs, o);

  if (gate.p) {
    be.unary(Unary::Sigmoid, gate, gate);
    be.mul(o, gate);
  }
  be.matmul(o, w_.o_proj, {}, y);
}

}  // namespace linfer
