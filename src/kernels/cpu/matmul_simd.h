#pragma once
// Internal: the SIMD variants behind kernels/cpu/matmul.h (matmul.cpp checks arguments and
// dispatches). One weight description shared by all variants.

#include <cstdint>

#include "linfer/core/dtype.h"

namespace linfer::kernels {

struct WeightMatrix {
  const void* data;  // [N, ld] elements of dtype; row n starts at n * ld
  DType dtype;       // F32 / BF16 / F16
  int64_t N, K, ld;
};

namespace avx2 {
// y[M, N] = x[M, K] · wᵀ (+ bias), parallel over the thread pool. Needs AVX2 + FMA + F16C.
void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);
}  // namespace avx2

}  // namespace linfer::kernels
