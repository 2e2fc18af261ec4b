#pragma once
// Float64 specification of the linear-attention family (kernels/cpu/linear_attn.h): token-by-token
// recurrence over packed sequences, written to be read. Inputs are the same float32 arguments as the
// CPU kernels; states and outputs are double.

#include <cstdint>
#include <span>

#include "kernels/cpu/linear_attn.h"

namespace linfer::kernels::ref {

// states[i]: [HV, V, K] (row v = S[:, v]); z_states[i]: [HV, K] when a.normalize, else empty.
// o: [T, HV, V]. Sequence i owns tokens [offsets[i], offsets[i+1]).
void linear_attn(const LinearAttnArgs& a, std::span<const int64_t> offsets, std::span<double* const> states,
                 std::span<double* const> z_states, double* o);

}  // namespace linfer::kernels::ref
