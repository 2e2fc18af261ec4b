#pragma once
// Internal: AVX2 row kernels behind kernels/cpu/norm.h (norm.cpp dispatches and parallelises).

#include <cstdint>

#include "kernels/cpu/norm.h"

namespace linfer::kernels::avx2 {

float sum_squares(const float* x, int64_t n);
// y = x · s · (w or 1 + w or 1) [· act(gate)]; gate may be null.
void scale_row(const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act, float* y,
               int64_t n);
// h = x · silu(z)
void gate_silu(const float* x, const float* z, float* h, int64_t n);

}  // namespace linfer::kernels::avx2
