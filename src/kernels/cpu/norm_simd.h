#pragma once
// Internal: the Highway row kernels behind kernels/cpu/norm.h (norm_hwy.cpp; norm.cpp dispatches and
// parallelises): the target of `level`, which is not the scalar path.

#include <cstdint>

#include "kernels/cpu/norm.h"
#include "linfer/core/cpu_features.h"

namespace linfer::kernels::hwy_paths {

float sum_squares(SimdLevel level, const float* x, int64_t n);
// y = x · s · (w or 1 + w or 1) [· act(gate)]; gate may be null.
void scale_row(SimdLevel level, const float* x, float s, const float* w, NormWeight mode, const float* gate,
               GateAct act, float* y, int64_t n);
// h = x · silu(z)
void gate_silu(SimdLevel level, const float* x, const float* z, float* h, int64_t n);

}  // namespace linfer::kernels::hwy_paths
