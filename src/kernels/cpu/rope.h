#pragma once
// Rotary position embedding, Hugging Face `rotate_half` convention: within the first rotary_dim
// dims of a head, dim i (< rotary_dim/2) pairs with dim i + rotary_dim/2:
//   x'[i]        = x[i] · cos(θ_i) − x[i + r/2] · sin(θ_i)
//   x'[i + r/2]  = x[i + r/2] · cos(θ_i) + x[i] · sin(θ_i),    θ_i = position · inv_freq[i]
// Dims from rotary_dim on pass through (partial rotary: Qwen3-Next uses rotary_dim = D / 4).
// The angle is rounded to float32 before cos / sin, as transformers computes it.
//
//   std::vector<float> inv_freq = rope_inv_freq(rotary_dim, 10000.0);
//   rope(q, T, Hq, D, rotary_dim, positions, inv_freq);   // in place; then the same for k

#include <cstdint>
#include <span>
#include <vector>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

// inv_freq[i] = 1 / theta^(2i / rotary_dim), i < rotary_dim / 2 (float32 like transformers' default
// rope init). Scaled variants (linear, yarn, ...) produce another table and use the same rope().
std::vector<float> rope_inv_freq(int64_t rotary_dim, double theta);

// In place on x [T, H, D]. positions[t] is token t's absolute position (packed sequences each
// start at their own cache length). rotary_dim even, <= D.
void rope(float* x,  // [T, H, D]
          int64_t T, int64_t H, int64_t D, int64_t rotary_dim,
          std::span<const int64_t> positions,  // [T]
          std::span<const float> inv_freq,  // [rotary_dim / 2]
          SimdLevel level = simd_level());

}  // namespace linfer::kernels
