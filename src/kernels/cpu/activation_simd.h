#pragma once
// Internal: the Highway kernels behind kernels/cpu/activation.h (activation_hwy.cpp; activation.cpp dispatches):
// the target of `level`, which is not the scalar path.

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels::hwy_paths {

void silu(SimdLevel level, const float* x, float* y, int64_t n);
void sigmoid(SimdLevel level, const float* x, float* y, int64_t n);
void softplus(SimdLevel level, const float* x, float* y, int64_t n);
void swiglu(SimdLevel level, const float* gate, const float* up, float* y, int64_t n);

}  // namespace linfer::kernels::hwy_paths
