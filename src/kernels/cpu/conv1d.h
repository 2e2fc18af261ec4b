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
//   cpu::conv1d_prefill(x, w, nullptr, C, W, offsets, states, /*silu=*/true, y);
//   cpu::conv1d_step(x1, w, nullptr, C, W, states, true, y1);     // one token per sequence

#include <cstdint>
#include <span>

namespace linfer::cpu {

// Packed sequences: sequence i owns tokens [offsets[i], offsets[i+1]) of x and y and has state
// states[i]. x and y must not alias.
void conv1d_prefill(const float* x,     // [T, C] token-major
                    const float* w,     // [C, W]
                    const float* bias,  // [C] or null
                    int64_t C, int64_t W, std::span<const int64_t> offsets,
                    std::span<float* const> states,  // each [C, W-1]
                    bool silu,
                    float* y);          // [T, C]

// One token for each of B = states.size() sequences. x and y may alias.
void conv1d_step(const float* x,     // [B, C]
                 const float* w,     // [C, W]
                 const float* bias,  // [C] or null
                 int64_t C, int64_t W,
                 std::span<float* const> states,  // each [C, W-1]
                 bool silu,
                 float* y);          // [B, C]

}  // namespace linfer::cpu
