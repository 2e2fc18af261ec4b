#pragma once
// Float64 specification of the Mamba2 SSD recurrence (kernels/cpu/mamba2_ssd.h), following
// transformers Mamba2Mixer.torch_forward's decode branch token by token: softplus (threshold 20),
// clamp to time_step_limit, dA = exp(dt A), S = S dA + (dt B) x, y = S C + D x.

#include <cstdint>
#include <span>

#include "kernels/cpu/mamba2_ssd.h"

namespace linfer::kernels::ref {

// states[i]: [H, P, N] of sequence i (tokens [offsets[i], offsets[i+1])); y: [T, H, P].
void mamba2_ssd(const Mamba2Dims& dims, const Mamba2Params& params, const Mamba2Inputs& in,
                std::span<const int64_t> offsets, std::span<double* const> states, double* y);

}  // namespace linfer::kernels::ref
