#pragma once
// The delta-rule family, CPU: DeltaNet, Gated DeltaNet (GDN, Qwen3-Next) and Kimi Delta Attention
// (KDA, Kimi Linear). Batched decode step and prefill over packed sequences, one state layout for
// both. The float64 specification is kernels/reference/delta_rule.h. Per value head hv (q/k head
// h = hv / (HV / H)), token t, state S ∈ R^{K×V}:
//
//   S   <- diag(exp(g_t)) S                    decay: None (DeltaNet), Scalar (GDN), PerKey (KDA)
//   u   =  beta_t (v_t - Sᵀ k_t)               [V]
//   S   <- S + k_t uᵀ
//   o_t =  Sᵀ (scale q_t)                      [V]
//
// i.e. S_t = (I - β_t k_t k_tᵀ) diag(α_t) S_{t-1} + β_t k_t v_tᵀ with α_t = exp(g_t), as fla and
// transformers compute it (for GDN, α_t is a scalar and commutes). The state is stored v-major, [HV, V, K]: row v holds S[:, v] over the key channels.
// With `l2norm_qk` the kernel normalises q and k per head as x / sqrt(sum(x²) + 1e-6) (what
// transformers does for Kimi Linear and Qwen3-Next), so the model passes them un-normalised.
//
//   DeltaRuleShape shape{.H = 16, .HV = 32, .K = 128, .V = 128, .decay = DeltaDecay::Scalar,
//                        .l2norm_qk = true};                    // scale 0: 1/sqrt(K)
//   DeltaRuleInputs in{.q = q, .k = k, .v = v, .beta = beta, .g = g};
//   delta_rule_prefill(shape, in, offsets, states, o);   // states[i]: [HV, V, K] of sequence i
//   delta_rule_step(shape, in1, states, o1);             // one token per sequence
//
// Thread-safety: uses the global thread pool (parallel over sequence × value head); concurrent calls
// must write distinct states and outputs.

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

enum class DeltaDecay { None, Scalar, PerKey };  // DeltaNet, GDN, KDA

struct DeltaRuleShape {
  int64_t H = 0;   // q / k heads
  int64_t HV = 0;  // value heads (also beta / g heads); HV % H == 0
  int64_t K = 0;   // key head dim
  int64_t V = 0;   // value head dim
  DeltaDecay decay = DeltaDecay::Scalar;
  bool l2norm_qk = false;  // normalise q and k per head inside the kernel (eps 1e-6 under the sqrt)
  float scale = 0.0f;      // multiplies q (after the L2 norm); 0 selects 1/sqrt(K)
};

// Per-token inputs, token-major over the packed sequences. q / k / v advance by their stride per token
// (0 = dense: H*K, H*K, HV*V), so they may be slices of a wider projection row.
struct DeltaRuleInputs {
  const float* q = nullptr;     // [T, H, K]
  const float* k = nullptr;     // [T, H, K]
  const float* v = nullptr;     // [T, HV, V]
  const float* beta = nullptr;  // [T, HV], already through the sigmoid
  const float* g = nullptr;     // log decay <= 0: Scalar [T, HV], PerKey [T, HV, K]; null for None
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
};

// How prefill runs. Both give the same outputs and final states (to float32 rounding).
enum class DeltaPrefillForm {
  Auto,       // what measured fastest on AVX2 FP32 CPUs (see docs/benchmarks.md): Recurrent
  Recurrent,  // token-by-token sweep, one head's state held in cache
  Chunked,    // chunkwise-parallel (UT transform) with chunk `chunk` tokens
};

struct DeltaPrefillOptions {
  DeltaPrefillForm form = DeltaPrefillForm::Auto;
  int chunk = 0;  // chunk length for Chunked, 1..64; 0 selects the default (16)
};

float delta_rule_scale(const DeltaRuleShape& shape);  // shape.scale, or 1/sqrt(K) when it is 0

// Floats in one sequence's state: [HV, V, K].
inline int64_t delta_rule_state_elems(const DeltaRuleShape& s) { return s.HV * s.V * s.K; }

// One token for each of states.size() sequences: token i of `in` belongs to states[i].
// o: [n_seqs, HV, V].
void delta_rule_step(const DeltaRuleShape& shape, const DeltaRuleInputs& in, std::span<float* const> states,
                     float* o, SimdLevel level = simd_level());

// Prefill of n_seqs = offsets.size() - 1 packed sequences; sequence i owns tokens
// [offsets[i], offsets[i+1]), reads its initial state from states[i] and writes the final one back.
// o: [T, HV, V].
void delta_rule_prefill(const DeltaRuleShape& shape, const DeltaRuleInputs& in, std::span<const int64_t> offsets,
                        std::span<float* const> states, float* o, DeltaPrefillOptions options = {},
                        SimdLevel level = simd_level());

}  // namespace linfer::kernels
