#include "mixers/mamba2.h"

#include <cstring>

#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/mamba2_ssd.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "mixers/scratch.h"
#include "mixers/state_ptrs.h"

namespace linfer {

void Mamba2Mixer::state_spec(const Mamba2Dims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "conv", StateKind::Fixed, {d.conv_dim(), d.conv_width - 1}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "ssm", StateKind::Fixed, {d.heads, d.head_dim, d.state}, 0, "[H, P, N]"});
}

void Mamba2Mixer::forward(const float* x, float* y, const MixerCall& call) const {
  using namespace kernels;
  const int64_t T = call.T, DI = d_.d_inner(), C = d_.conv_dim(), GN = d_.groups * d_.state;
  const int64_t P = w_.in_proj.dim(0);  // 2·d_inner + 2·G·N + H
  Scratch s;

  float* zxbcdt = s.get(T * P);
  matmul(x, T, w_.in_proj, w_.in_proj_bias.numel() ? w_.in_proj_bias.f32() : nullptr, zxbcdt);

  float* xbc = s.get(T * C);
  const float* conv_bias = w_.conv_bias.numel() ? w_.conv_bias.f32() : nullptr;
  auto conv_states = state_ptrs(call, 0);
  if (call.decode)
    conv1d_step(zxbcdt + DI, P, w_.conv.f32(), conv_bias, C, d_.conv_width, conv_states, true, xbc);
  else
    conv1d_prefill(zxbcdt + DI, P, w_.conv.f32(), conv_bias, C, d_.conv_width, call.offsets, conv_states, true, xbc);

  kernels::Mamba2Dims dims{.H = d_.heads, .P = d_.head_dim, .N = d_.state, .G = d_.groups};
  Mamba2Params params{.A_log = w_.A_log.f32(), .dt_bias = w_.dt_bias.f32(), .D = w_.D.f32(),
                      .dt_min = float(d_.dt_min), .dt_max = float(d_.dt_max)};
  Mamba2Inputs in{.x = xbc, .dt = zxbcdt + DI + C, .B = xbc + DI, .C = xbc + DI + GN,
                  .x_stride = C, .dt_stride = P, .B_stride = C, .C_stride = C};
  float* ys = s.get(T * DI);
  auto ssm = state_ptrs(call, 1);
  if (call.decode) mamba2_ssd_step(dims, params, in, ssm, ys);
  else mamba2_ssd_prefill(dims, params, in, call.offsets, ssm, ys);

  float* z = s.get(T * DI);
  for (int64_t t = 0; t < T; ++t) std::memcpy(z + t * DI, zxbcdt + t * P, DI * sizeof(float));
  rms_norm_gate_first(ys, z, w_.norm.f32(), ys, T, DI, DI / d_.norm_groups, float(eps_));
  matmul(ys, T, w_.out_proj, w_.out_proj_bias.numel() ? w_.out_proj_bias.f32() : nullptr, y);
}

}  // namespace linfer
