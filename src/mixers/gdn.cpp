#include "mixers/gdn.h"

#include <cmath>
#include <cstring>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/delta_rule.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "mixers/scratch.h"
#include "mixers/state_ptrs.h"

namespace linfer {

void GdnMixer::state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  out.push_back({layer, "conv", StateKind::Fixed, {d.conv_dim(), d.conv_width - 1}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "gdn.S", StateKind::Fixed, {d.v_heads, d.head_v, d.head_k}, 0, "[HV, V, K] v-major"});
}

void GdnMixer::forward(const float* x, float* y, const MixerCall& call) const {
  using namespace kernels;
  const int64_t T = call.T, H = d_.heads, HV = d_.v_heads, K = d_.head_k, V = d_.head_v;
  const int64_t r = HV / H, kd = d_.key_dim(), vd = d_.value_dim(), C = d_.conv_dim();
  Scratch s;

  // Projections, then undo the per-key-head grouping: qkv [T, C] in conv channel order, z [T, HV·V].
  const int64_t P = 2 * kd + 2 * vd;
  float* qkvz = s.get(T * P);
  float* ba = s.get(T * 2 * HV);
  matmul(x, T, w_.in_proj_qkvz, nullptr, qkvz);
  matmul(x, T, w_.in_proj_ba, nullptr, ba);
  float* qkv = s.get(T * C);
  float* z = s.get(T * vd);
  float* beta = s.get(T * HV);
  float* g = s.get(T * HV);
  const int64_t blk = 2 * K + 2 * r * V;
  for (int64_t t = 0; t < T; ++t) {
    const float* src = qkvz + t * P;
    float* dst = qkv + t * C;
    for (int64_t j = 0; j < H; ++j) {
      const float* b = src + j * blk;
      std::memcpy(dst + j * K, b, K * sizeof(float));
      std::memcpy(dst + kd + j * K, b + K, K * sizeof(float));
      std::memcpy(dst + 2 * kd + j * r * V, b + 2 * K, r * V * sizeof(float));
      std::memcpy(z + t * vd + j * r * V, b + 2 * K + r * V, r * V * sizeof(float));
      const float* bab = ba + t * 2 * HV + j * 2 * r;
      for (int64_t i = 0; i < r; ++i) {
        beta[t * HV + j * r + i] = bab[i];
        g[t * HV + j * r + i] = bab[r + i] + w_.dt_bias.f32()[j * r + i];
      }
    }
  }
  sigmoid(beta, beta, T * HV);
  softplus(g, g, T * HV);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < HV; ++h) g[t * HV + h] *= -std::exp(w_.A_log.f32()[h]);

  float* conv_out = s.get(T * C);
  auto conv_states = state_ptrs(call, 0);
  if (call.decode) conv1d_step(qkv, 0, w_.conv.f32(), nullptr, C, d_.conv_width, conv_states, true, conv_out);
  else conv1d_prefill(qkv, 0, w_.conv.f32(), nullptr, C, d_.conv_width, call.offsets, conv_states, true, conv_out);

  DeltaRuleShape shape{.H = H, .HV = HV, .K = K, .V = V, .decay = DeltaDecay::Scalar, .l2norm_qk = true};
  DeltaRuleInputs in{.q = conv_out, .k = conv_out + kd, .v = conv_out + 2 * kd, .beta = beta, .g = g,
                     .q_stride = C, .k_stride = C, .v_stride = C};
  float* o = s.get(T * vd);
  auto S = state_ptrs(call, 1);
  if (call.decode) delta_rule_step(shape, in, S, o);
  else delta_rule_prefill(shape, in, call.offsets, S, o);

  rms_norm_gated(o, z, w_.norm.f32(), o, T * HV, V, float(eps_), GateAct::Silu);
  matmul(o, T, w_.out_proj, nullptr, y);
}

}  // namespace linfer
