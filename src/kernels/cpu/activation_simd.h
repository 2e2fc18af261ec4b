#pragma once
// Internal: AVX2 variants behind kernels/cpu/activation.h (activation.cpp dispatches).

#include <cstdint>

namespace linfer::kernels::avx2 {

void silu(const float* x, float* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void softplus(const float* x, float* y, int64_t n);
void swiglu(const float* gate, const float* up, float* y, int64_t n);

}  // namespace linfer::kernels::avx2
