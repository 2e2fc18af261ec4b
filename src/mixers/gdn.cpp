#include "mixers/gdn.h"

namespace linfer {

void GdnMixer::state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "conv", StateKind::Fixed, {d.conv_dim(), d.conv_width - 1}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "gdn.S", StateKind::Fixed, {d.v_heads, d.head_v, d.head_k}, 0, "[HV, V, K] v-major"});
}

void GdnMixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, H = d_.heads, HV = d_.v_heads, K = d_.head_k, V = d_.head_v;
  const int64_t r = HV / H, kd = d_.key_dim(), vd = d_.value_dim(), C = d_.conv_dim();
  Tmp tmp(be);

  // Projections into qkv [T, C] in conv channel order, z [T, HV·V], beta and the raw gate a [T, HV]:
  // the grouped layout is regrouped by copies, the split one lands in place.
  Mat qkv = tmp.mat(T, C);
  Mat z = tmp.mat(T, vd);
  Mat ba = tmp.mat(T, 2 * HV);
  const bool grouped = !w_.in_proj_qkvz.empty();
  Mat qkvz = grouped ? tmp.mat(T, 2 * kd + 2 * vd) : Mat{};
  if (grouped) {
    const Backend::MatmulCall proj[] = {{x, &w_.in_proj_qkvz, qkvz}, {x, &w_.in_proj_ba, ba}};
    be.matmul_many(proj);  // one parallel region at decode
  } else {
    const Backend::MatmulCall proj[] = {{x, &w_.in_proj_qkv, qkv}, {x, &w_.in_proj_z, z}, {x, &w_.in_proj_ba, ba}};
    be.matmul_many(proj);
  }
  Mat beta = tmp.mat(T, HV);
  Mat g = tmp.mat(T, HV);
  const int64_t blk = 2 * K + 2 * r * V;
  for (int64_t j = 0; j < H; ++j) {
    if (grouped) {
      const Mat src = qkvz.cols_of(j * blk, blk);  // [q_j | k_j | v (r·V) | z (r·V)]
      be.copy(src.cols_of(0, K), qkv.cols_of(j * K, K));
      be.copy(src.cols_of(K, K), qkv.cols_of(kd + j * K, K));
      be.copy(src.cols_of(2 * K, r * V), qkv.cols_of(2 * kd + j * r * V, r * V));
      be.copy(src.cols_of(2 * K + r * V, r * V), z.cols_of(j * r * V, r * V));
    }
    be.copy(ba.cols_of(j * 2 * r, r), beta.cols_of(j * r, r));
    be.copy(ba.cols_of(j * 2 * r + r, r), g.cols_of(j * r, r));
  }
  be.unary(Unary::Sigmoid, beta, beta);
  be.decay_gate(g, w_.dt_bias, w_.A_log, 1);

  Mat conv_out = tmp.mat(T, C);
  be.conv1d(qkv, w_.conv, {}, d_.conv_width, call.state(0), call.seqs, true, conv_out);

  const kernels::DeltaRuleShape shape{.H = H, .HV = HV, .K = K, .V = V, .decay = kernels::DeltaDecay::Scalar,
                                      .l2norm_qk = true};
  Mat o = tmp.mat(T, vd);
  be.delta_rule(shape,
                {.q = conv_out.cols_of(0, kd), .k = conv_out.cols_of(kd, kd), .v = conv_out.cols_of(2 * kd, vd),
                 .beta = beta, .g = g, .o = o},
                call.state(1), call.seqs);

  be.rms_norm_gated(o.split_rows(V), z.split_rows(V), w_.norm, o.split_rows(V), float(eps_), kernels::GateAct::Silu);
  be.matmul(o, w_.out_proj, {}, y);
}

}  // namespace linfer
