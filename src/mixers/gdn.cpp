#include "mixers/gdn.h"

namespace linfer {

void GdnMixer::state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "conv", StateKind::Fixed, {d.conv_dim(), d.conv_width - 1}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "gdn.S", StateKind::Fixed, {d.v_heads, d.head_v, d.head_k}, 0, "[HV, V, K] v-major"});
}

void GdnMixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, H = d_.heads, HV = d_.v_heads, K = d_.head_k, V = d_.head_v;
  const int64_t vd = d_.value_dim(), C = d_.conv_dim();
  Tmp tmp(be);

  // Every projection of x in one call (one parallel region at decode), each in the layout its op reads.
  Mat qkv = tmp.mat(T, C), z = tmp.mat(T, vd), beta = tmp.mat(T, HV), g = tmp.mat(T, HV);
  const Backend::MatmulCall proj[] = {
      {x, &w_.in_proj_qkv, qkv}, {x, &w_.in_proj_z, z}, {x, &w_.in_proj_b, beta}, {x, &w_.in_proj_a, g}};
  be.matmul_many(proj);

  // Conv, gates, the delta rule (q/k L2-normalised, q scaled by 1/√K) and the gated norm: one op.
  const kernels::DeltaRuleShape shape{.H = H, .HV = HV, .K = K, .V = V, .decay = kernels::DeltaDecay::Scalar,
                                      .l2norm_qk = true};
  const Backend::DeltaConv conv[] = {{qkv, w_.conv, call.state(0)}};
  Mat o = tmp.mat(T, vd);
  be.delta_layer(shape,
                 {.conv = conv, .conv_width = d_.conv_width, .beta = beta, .g = g, .A_log = w_.A_log,
                  .dt_bias = w_.dt_bias, .gate = z, .norm_w = w_.norm, .act = kernels::GateAct::Silu,
                  .eps = float(eps_), .o = o},
                 call.state(1), call.seqs);
  be.matmul(o, w_.out_proj, {}, y);
}

}  // namespace linfer
