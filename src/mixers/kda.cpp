#include "mixers/kda.h"

#include <cmath>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/conv1d.h"
#include "kernels/cpu/delta_rule.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/norm.h"
#include "mixers/scratch.h"
#include "mixers/state_ptrs.h"

namespace linfer {

void KdaMixer::state_spec(const DeltaDims& d, int layer, std::vector<StateTensorSpec>& out) {
  const int64_t w = d.conv_width - 1;
  out.push_back({layer, "conv.q", StateKind::Fixed, {d.key_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "conv.k", StateKind::Fixed, {d.key_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "conv.v", StateKind::Fixed, {d.value_dim(), w}, 0, "[C, W-1] oldest first"});
  out.push_back({layer, "kda.S", StateKind::Fixed, {d.v_heads, d.head_v, d.head_k}, 0, "[HV, V, K] v-major"});
}

void KdaMixer::forward(const float* x, float* y, const MixerCall& call) const {
  using namespace kernels;
  const int64_t T = call.T, HV = d_.v_heads, K = d_.head_k, V = d_.head_v, W = d_.conv_width;
  const int64_t kd = d_.key_dim(), vd = d_.value_dim();
  Scratch s;

  // Projections: one GEMM per weight over every token of the call.
  float* q = s.get(T * kd);
  float* k = s.get(T * kd);
  float* v = s.get(T * vd);
  float* raw = s.get(T * std::max(kd, vd));
  auto conv = [&](const TensorView& proj, const Tensor& wconv, int64_t C, size_t state_idx, float* out) {
    matmul(x, T, proj, nullptr, raw);
    auto states = state_ptrs(call, state_idx);
    if (call.decode) conv1d_step(raw, 0, wconv.f32(), nullptr, C, W, states, true, out);
    else conv1d_prefill(raw, 0, wconv.f32(), nullptr, C, W, call.offsets, states, true, out);
  };
  conv(w_.q_proj, w_.conv_q, kd, 0, q);
  conv(w_.k_proj, w_.conv_k, kd, 1, k);
  conv(w_.v_proj, w_.conv_v, vd, 2, v);

  // Forget gate (log decay per key channel) and beta, in float32.
  const int64_t r = w_.f_a.dim(0);
  float* low = s.get(T * std::max(r, w_.g_a.dim(0)));
  float* g = s.get(T * HV * K);
  matmul(x, T, w_.f_a, nullptr, low);
  matmul(low, T, w_.f_b, nullptr, g);
  const float* dt_bias = w_.dt_bias.f32();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < HV * K; ++i) g[t * HV * K + i] += dt_bias[i];
  softplus(g, g, T * HV * K);
  const float* A_log = w_.A_log.f32();
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < HV; ++h) {
      const float a = -std::exp(A_log[h]);
      float* gh = g + (t * HV + h) * K;
      for (int64_t i = 0; i < K; ++i) gh[i] *= a;
    }
  float* beta = s.get(T * HV);
  matmul(x, T, w_.b_proj, nullptr, beta);
  sigmoid(beta, beta, T * HV);

  // The delta rule (q/k L2-normalised and q scaled by 1/√K inside the kernel).
  DeltaRuleShape shape{.H = d_.heads, .HV = HV, .K = K, .V = V, .decay = DeltaDecay::PerKey, .l2norm_qk = true};
  DeltaRuleInputs in{.q = q, .k = k, .v = v, .beta = beta, .g = g};
  float* o = s.get(T * vd);
  auto S = state_ptrs(call, 3);
  if (call.decode) delta_rule_step(shape, in, S, o);
  else delta_rule_prefill(shape, in, call.offsets, S, o);

  // Output: per-head RMSNorm, then the low-rank sigmoid gate, then o_proj.
  float* gate = s.get(T * vd);
  matmul(x, T, w_.g_a, nullptr, low);
  matmul(low, T, w_.g_b, nullptr, gate);
  rms_norm_gated(o, gate, w_.o_norm.f32(), o, T * HV, V, float(eps_), GateAct::Sigmoid);
  matmul(o, T, w_.o_proj, nullptr, y);
}

}  // namespace linfer
