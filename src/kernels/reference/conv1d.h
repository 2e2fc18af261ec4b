#pragma once
// Reference (specification) of kernels/cpu/conv1d.h: the causal depthwise conv written as
// transformers' torch fallback does it — concatenate [state, inputs], convolve without padding,
// keep the last W-1 inputs as the new state — token by token, in float64.

#include <cstdint>
#include <span>

namespace linfer::kernels::ref {

void conv1d_prefill(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    std::span<const int64_t> offsets, std::span<float* const> states, bool silu, float* y);
void conv1d_step(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                 std::span<float* const> states, bool silu, float* y);

}  // namespace linfer::kernels::ref
