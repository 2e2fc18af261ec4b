#pragma once
// Causal depthwise conv1d with its conv state: the short convolution of Mamba2, GDN (Qwen3-Next)
// and KDA (Kimi Linear). Semantics of transformers' causal_conv1d_fn / causal_conv1d_update torch
// fallbacks: out[t, c] = act(bias[c] + Σ_j w[c, j] · x[t - (W-1) + j, c]), where inputs before a
// sequence's first token come from its conv state.
//
// Conv state per sequence: [C, W-1] float32, the last W-1 inputs of each channel, oldest first
// (zeros for a new sequence). Prefill and step read it and write the updated window back, so
// prefill(a ++ b) == prefill(a); prefill(b) == token-by-token steps.
//
//   // w: checkpoint [C, 1, W] converted to float32 [C, W] at load
//   conv1d_prefill(x, 0, w, nullptr, C, W, offsets, states, /*silu=*/true, y);
//   conv1d_step(x1, 0, w, nullptr, C, W, states, true, y1);     // one token per sequence

#include <cstdint>
#include <span>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

// Packed sequences: sequence i owns tokens [offsets[i], offsets[i+1]) of x and y and has state
// states[i]. x may be a column slice of a wider row (Mamba2's xBC inside in_proj's output): x_stride.
// x and y must not alias.
void conv1d_prefill(const float* x,     // [T, x_stride], channels [0, C) of each row
                    int64_t x_stride,   // floats between tokens of x; 0 means C
                    const float* w,     // [C, W]
                    const float* bias,  // [C] or null
                    int64_t C, int64_t W, std::span<const int64_t> offsets,
                    std::span<float* const> states,  // each [C, W-1]
                    bool silu,
                    float* y,           // [T, C]
                    SimdLevel level = simd_level());

// One token for each of B = states.size() sequences. x and y may alias when x_stride is C.
void conv1d_step(const float* x,     // [B, x_stride]
                 int64_t x_stride,   // 0 means C
                 const float* w,     // [C, W]
                 const float* bias,  // [C] or null
                 int64_t C, int64_t W,
                 std::span<float* const> states,  // each [C, W-1]
                 bool silu,
                 float* y,           // [B, C]
                 SimdLevel level = simd_level());

}  // namespace linfer::kernels
