#pragma once
// The linear-attention family, CPU: one kernel with options, batched decode step and chunkwise-parallel
// prefill over packed sequences, one state layout for both. The float64 specification is
// kernels/reference/linear_attn.h. Per value head hv (q/k head h = hv / (HV / H)), token t:
//
//   S   <- diag(exp(g_t)) S + k_t (beta_t v_t)ᵀ      S: [V, K] per head, v-major (row v = S[:, v])
//   z   <- exp(g_t) ⊙ z + k_t                          only when `normalize`
//   num = S (scale q_t)                                [V]
//   o_t = normalize ? num / ((scale q_t)·z + eps) : num,   then o_t += skip[hv] * v_t
//
// The decay covers the family:
//   None     Katharopoulos linear attention (feature-mapped q / k, see feature_maps.h; Performer)
//   PerHead  RetNet / lightning attention: g [HV] constant in time (retnet_log_decays, lightning_...)
//   Scalar   simple GLA / Mamba2-style: g [T, HV]
//   Vector   GLA: g [T, HV, K], one decay per key channel
// Gates are log decays g <= 0. beta and skip exist so Mamba2 (kernels/cpu/mamba2_ssd.h) runs on this
// kernel: q = C, k = B, v = x, beta = dt, g = dt * A, skip = D.
//
//   LinearAttnArgs a{.H = 8, .HV = 8, .K = 64, .V = 64, .q = q, .k = k, .v = v,
//                    .decay = LinearAttnDecay::Scalar, .g = g};
//   linear_attn_prefill(a, offsets, states, {}, o);   // states[i]: [HV, V, K] of sequence i
//   linear_attn_step(a1, states, {}, o1);             // one token per sequence
//
// Thread-safety: uses the global thread pool; concurrent calls must write distinct states / outputs.

#include <cstdint>
#include <span>
#include <vector>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

enum class LinearAttnDecay { None, PerHead, Scalar, Vector };

struct LinearAttnArgs {
  int64_t H = 0;   // q / k heads
  int64_t HV = 0;  // v heads; HV % H == 0
  int64_t K = 0;   // key (feature) dim
  int64_t V = 0;   // value dim
  const float* q = nullptr;  // [T, H, K]
  const float* k = nullptr;  // [T, H, K]
  const float* v = nullptr;  // [T, HV, V]
  // Token strides in floats (0 = dense: H*K, H*K, HV*V), so inputs may be slices of wider rows.
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  LinearAttnDecay decay = LinearAttnDecay::None;
  const float* g = nullptr;     // log decay <= 0: PerHead [HV], Scalar [T, HV], Vector [T, HV, K]
  const float* beta = nullptr;  // [T, HV] or null: scales v_t in the state update (not the skip)
  const float* skip = nullptr;  // [HV] or null: o_t += skip[hv] * v_t
  float scale = 1.0f;           // multiplies q
  bool normalize = false;       // keep z [HV, K] and divide by (scale q)·z + eps
  float eps = 1e-6f;
};

// Floats per sequence: S [HV, V, K], and z [HV, K] when normalised (a separate state tensor).
inline int64_t linear_attn_state_elems(const LinearAttnArgs& a) { return a.HV * a.V * a.K; }
inline int64_t linear_attn_z_elems(const LinearAttnArgs& a) { return a.HV * a.K; }

// One token for each of states.size() sequences (token i -> states[i], z_states[i]; z_states empty
// unless a.normalize). o: [n_seqs, HV, V].
void linear_attn_step(const LinearAttnArgs& a, std::span<float* const> states, std::span<float* const> z_states,
                      float* o, SimdLevel level = simd_level());

// Chunkwise-parallel prefill: sequence i owns tokens [offsets[i], offsets[i+1]). o: [T, HV, V].
void linear_attn_prefill(const LinearAttnArgs& a, std::span<const int64_t> offsets, std::span<float* const> states,
                         std::span<float* const> z_states, float* o, SimdLevel level = simd_level());

// RetNet decays: g[h] = log(1 - 2^(-5 - h)) for h in [0, HV).
std::vector<float> retnet_log_decays(int64_t HV);
// Lightning attention (MiniMax-01, transformers MiniMaxLightningAttention.get_slope_rate):
// g[h] = -2^(-8 (h + 1) / HV) * (1 - layer / (n_layers - 1 + 1e-5) + 1e-5), layer 0-based.
std::vector<float> lightning_log_decays(int64_t HV, int64_t layer, int64_t n_layers);

}  // namespace linfer::kernels
