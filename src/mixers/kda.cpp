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

  // Projections (one GEMM per weight over every token of the call), each through its causal conv.
  Mat q = tmp.mat(T, kd), k = tmp.mat(T, kd), v = tmp.mat(T, vd);
  auto conv = [&](const Weight& proj, const Param& wconv, size_t state_idx, const Mat& out) {
    Tmp raw_tmp(be);
    Mat raw = raw_tmp.mat(T, out.cols);
    be.matmul(x, proj, {}, raw);
    be.conv1d(raw, wconv, {}, W, call.state(state_idx), call.seqs, true, out);
  };
  conv(w_.q_proj, w_.conv_q, 0, q);
  conv(w_.k_proj, w_.conv_k, 1, k);
  conv(w_.v_proj, w_.conv_v, 2, v);

  // Forget gate (log decay per key channel) and beta, in float32.
  Mat low = tmp.mat(T, w_.f_a.dim(0));
  Mat g = tmp.mat(T, HV * K);
  be.matmul(x, w_.f_a, {}, low);
  be.matmul(low, w_.f_b, {}, g);
  be.decay_gate(g, w_.dt_bias, w_.A_log, K);
  Mat beta = tmp.mat(T, HV);
  be.matmul(x, w_.b_proj, {}, beta);
  be.unary(Unary::Sigmoid, beta, beta);

  // The delta rule (q/k L2-normalised and q scaled by 1/√K inside the kernel).
  const kernels::DeltaRuleShape shape{.H = d_.heads, .HV = HV, .K = K, .V = V,
                                      .decay = kernels::DeltaDecay::PerKey, .l2norm_qk = true};
  Mat o = tmp.mat(T, vd);
  be.delta_rule(shape, {.q = q, .k = k, .v = v, .beta = beta, .g = g, .o = o}, call.state(3), call.seqs);

  // Output: per-head RMSNorm, then the low-rank sigmoid gate, then o_proj.
  Mat low_out = tmp.mat(T, w_.g_a.dim(0));
  Mat gate = tmp.mat(T, vd);
  be.matmul(x, w_.g_a, {}, low_out);
  be.matmul(low_out, w_.g_b, {}, gate);
  be.rms_norm_gated(o.split_rows(V), gate.split_rows(V), w_.o_norm, o.split_rows(V), float(eps_),
                    kernels::GateAct::Sigmoid);
  be.matmul(o, w_.o_proj, {}, y);
}

}  // namespace linfer
