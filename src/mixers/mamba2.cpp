#include "mixers/mamba2.h"

namespace linfer {

void Mamba2Mixer::state_spec(const Mamba2Dims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "conv", StateKind::Fixed, {d.conv_dim(), d.conv_width - 1}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "ssm", StateKind::Fixed, {d.heads, d.head_dim, d.state}, 0, "[H, P, N]"});
}

void Mamba2Mixer::forward(const Mat& x, const Mat& y, const MixerCall& call) const {
  Backend& be = *call.be;
  const int64_t T = call.T, DI = d_.d_inner(), C = d_.conv_dim(), GN = d_.groups * d_.state;
  const int64_t P = w_.in_proj.dim(0);  // 2·d_inner + 2·G·N + H
  Tmp tmp(be);

  Mat zxbcdt = tmp.mat(T, P);  // [z | xBC | dt]
  be.matmul(x, w_.in_proj, w_.in_proj_bias, zxbcdt);

  Mat xbc = tmp.mat(T, C);
  be.conv1d(zxbcdt.cols_of(DI, C), w_.conv, w_.conv_bias, d_.conv_width, call.state(0), call.seqs, true, xbc);

  const kernels::Mamba2Dims dims{.H = d_.heads, .P = d_.head_dim, .N = d_.state, .G = d_.groups};
  const Mamba2Gates gates{.A_log = w_.A_log, .dt_bias = w_.dt_bias, .D = w_.D, .dt_min = float(d_.dt_min),
                          .dt_max = float(d_.dt_max)};
  Mat ys = tmp.mat(T, DI);
  be.mamba2_ssd(dims, gates,
                {.x = xbc.cols_of(0, DI), .dt = zxbcdt.cols_of(DI + C, d_.heads), .B = xbc.cols_of(DI, GN),
                 .C = xbc.cols_of(DI + GN, GN), .y = ys},
                call.state(1), call.seqs);

  Mat z = tmp.mat(T, DI);
  be.copy(zxbcdt.cols_of(0, DI), z);
  be.rms_norm_gate_first(ys, z, w_.norm, ys, DI / d_.norm_groups, float(eps_));
  be.matmul(ys, w_.out_proj, w_.out_proj_bias, y);
}

}  // namespace linfer
