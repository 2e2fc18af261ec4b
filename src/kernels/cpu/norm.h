#pragma once
// RMSNorm in its variants, and L2 norm. All rows are independent: a "row" is whatever the caller
// normalises over (a hidden vector [hidden], or one head [D] of a [T, H, D] tensor: rows = T·H).
// Weights are float32 (norm weights are small: convert once at load). x and y may alias (in place).
// Formulas match transformers (float32 throughout, eps inside the square root).
//
//   rms_norm(x, w, y, T, hidden, 1e-6f, NormWeight::Plain);          // Llama / Kimi / Mamba2
//   rms_norm(x, w, y, T, hidden, 1e-6f, NormWeight::OnePlus);        // Qwen3-Next: x̂·(1 + w)
//   rms_norm_gated(o, g, w, o, T * H, D, 1e-5f, GateAct::Sigmoid);   // KDA output norm
//   rms_norm_gate_first(y, z, w, y, T, I, I / n_groups, 1e-5f);      // Mamba2 family

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

enum class NormWeight {
  Plain,    // x̂ · w
  OnePlus,  // x̂ · (1 + w)   (zero-centred weights: Qwen3-Next's Qwen3NextRMSNorm, not its gated norm)
};

enum class GateAct { Sigmoid, Silu };

// y = x / sqrt(mean(x²) + eps) · weight. w may be null (no weight).
void rms_norm(const float* x,  // [rows, n]
              const float* w,  // [n]
              float* y,        // [rows, n]
              int64_t rows, int64_t n, float eps, NormWeight mode = NormWeight::Plain,
              SimdLevel level = simd_level());

// Norm, then gate: y = (x / sqrt(mean(x²) + eps)) · w · act(gate).
// Kimi KDA (act = sigmoid), Qwen3-Next GDN's Qwen3NextRMSNormGated (act = SiLU, plain weight).
void rms_norm_gated(const float* x,     // [rows, n]
                    const float* gate,  // [rows, n]
                    const float* w,     // [n]
                    float* y,           // [rows, n]
                    int64_t rows, int64_t n, float eps, GateAct act,
                    SimdLevel level = simd_level());

// Gate, then norm (Mamba2): h = x · silu(z); each group of `group` consecutive channels of a row
// is normalised on its own: y = h / sqrt(mean_group(h²) + eps) · w. group == n normalises the
// whole row, which is what transformers' `mamba2` (MambaRMSNormGated) does whatever n_groups is;
// bamba / zamba2 / nemotron_h / falcon_h1 (and mamba_ssm) use group = n / n_groups.
void rms_norm_gate_first(const float* x,  // [rows, n]
                         const float* z,  // [rows, n]
                         const float* w,  // [n]
                         float* y,        // [rows, n]
                         int64_t rows, int64_t n, int64_t group, float eps,
                         SimdLevel level = simd_level());

// y = x / sqrt(sum(x²) + eps)   (transformers' / fla's l2norm; KDA and GDN use eps = 1e-6).
void l2_norm(const float* x,  // [rows, n]
             float* y,        // [rows, n]
             int64_t rows, int64_t n, float eps, SimdLevel level = simd_level());

}  // namespace linfer::kernels
