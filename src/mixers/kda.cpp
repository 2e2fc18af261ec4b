#include "mixers/kda.h"

namespace linfer {

void KdaMixer::state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  const int64_t w = d.conv_width - 1;
  out.push_back({layer, "conv.q", StateKind::Fixed, {d.key_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "conv.k", StateKind::Fixed, {d.key_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "conv.v", StateKind::Fixed, {d.value_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "kda.S", StateKind::Fixed, {d.v_heads, d.head_v, d.head_k}, 0, "[HV, V, K] v-major"});
}

void KdaMixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, HV = d_.v_heads, K = d_.head_k, V = d_.head_v, W = d_.conv_width;
  const int64_t kd = d_.key_dim(), vd = d_.value_dim();
  Tmp tmp(be);

  // Every projection of x in one call (one parallel region at decode): q, k, v (each then through its
  // causal conv), the forget gate's and the output gate's low-rank halves, beta.
  Mat q = tmp.mat(T, kd), k = tmp.mat(T, kd), v = tmp.mat(T, vd);
  Mat raw_q = tmp.mat(T, kd), raw_k = tmp.mat(T, kd), raw_v = tmp.mat(T, vd);
  Mat low = tmp.mat(T, w_.f_a.dim(0)), low_out = tmp.mat(T, w_.g_a.dim(0));
  Mat beta = tmp.mat(T, HV);
  const Backend::MatmulCall proj[] = {{x, &w_.q_proj, raw_q}, {x, &w_.k_proj, raw_k}, {x, &w_.v_proj, raw_v},
                                      {x, &w_.f_a, low},      {x, &w_.g_a, low_out},  {x, &w_.b_proj, beta}};
  be.matmul_many(proj);
  be.conv1d(raw_q, w_.conv_q, {}, W, call.state(0), call.seqs, true, q);
  be.conv1d(raw_k, w_.conv_k, {}, W, call.state(1), call.seqs, true, k);
  be.conv1d(raw_v, w_.conv_v, {}, W, call.state(2), call.seqs, true, v);

  // Forget gate (log decay per key channel), output gate and beta, in float32.
  Mat g = tmp.mat(T, HV * K), gate = tmp.mat(T, vd);
  const Backend::MatmulCall up[] = {{low, &w_.f_b, g}, {low_out, &w_.g_b, gate}};
  be.matmul_many(up);
  be.decay_gate(g, w_.dt_bias, w_.A_log, K);
  be.unary(Unary::Sigmoid, beta, beta);

  // The delta rule (q/k L2-normalised and q scaled by 1/√K inside the kernel).
  const kernels::DeltaRuleShape shape{.H = d_.heads, .HV = HV, .K = K, .V = V,
                                      .decay = kernels::DeltaDecay::PerKey, .l2norm_qk = true};
  Mat o = tmp.mat(T, vd);
  be.delta_rule(shape, {.q = q, .k = k, .v = v, .beta = beta, .g = g, .o = o}, call.state(3), call.seqs);

  // Output: per-head RMSNorm, then the low-rank sigmoid gate, then o_proj.
  be.rms_norm_gated(o.split_rows(V), gate.split_rows(V), w_.o_norm, o.split_rows(V), float(eps_),
                    kernels::GateAct::Sigmoid);
  be.matmul(o, w_.o_proj, {}, y);
}

}  // namespace linfer
