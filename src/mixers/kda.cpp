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

  // Every projection of x in one call (one parallel region at decode): q, k, v (before their causal convs),
  // the forget gate's and the output gate's low-rank halves, beta; then the gates' second halves.
  Mat raw_q = tmp.mat(T, kd), raw_k = tmp.mat(T, kd), raw_v = tmp.mat(T, vd);
  Mat low = tmp.mat(T, w_.f_a.dim(0)), low_out = tmp.mat(T, w_.g_a.dim(0));
  Mat beta = tmp.mat(T, HV);
  const Backend::MatmulCall proj[] = {{x, &w_.q_proj, raw_q}, {x, &w_.k_proj, raw_k}, {x, &w_.v_proj, raw_v},
                                      {x, &w_.f_a, low},      {x, &w_.g_a, low_out},  {x, &w_.b_proj, beta}};
  be.matmul_many(proj);
  Mat g = tmp.mat(T, HV * K), gate = tmp.mat(T, vd);
  const Backend::MatmulCall up[] = {{low, &w_.f_b, g}, {low_out, &w_.g_b, gate}};
  be.matmul_many(up);

  // Convs, gates (log decay per key channel), the delta rule (q/k L2-normalised, q scaled by 1/√K) and the
  // per-head RMSNorm with the low-rank sigmoid gate: one op.
  const kernels::DeltaRuleShape shape{.H = d_.heads, .HV = HV, .K = K, .V = V,
                                      .decay = kernels::DeltaDecay::PerKey, .l2norm_qk = true};
  const Backend::DeltaConv conv[] = {
      {raw_q, w_.conv_q, call.state(0)}, {raw_k, w_.conv_k, call.state(1)}, {raw_v, w_.conv_v, call.state(2)}};
  Mat o = tmp.mat(T, vd);
  be.delta_layer(shape,
                 {.conv = conv, .conv_width = W, .beta = beta, .g = g, .A_log = w_.A_log, .dt_bias = w_.dt_bias,
                  .gate = gate, .norm_w = w_.o_norm, .act = kernels::GateAct::Sigmoid, .eps = float(eps_), .o = o},
                 call.state(3), call.seqs);
  be.matmul(o, w_.o_proj, {}, y);
}

}  // namespace linfer
