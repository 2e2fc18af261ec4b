#pragma once
// Reference (specification) of kernels/cpu/rope.h: transformers' rotate_half, with the angle
// position · inv_freq rounded to float32 as transformers computes it, then cos / sin in float64.

#include <cstdint>
#include <span>

namespace linfer::kernels::ref {

void rope(float* x, int64_t T, int64_t H, int64_t D, int64_t rotary_dim, std::span<const int64_t> positions,
          std::span<const float> inv_freq);

}  // namespace linfer::kernels::ref
