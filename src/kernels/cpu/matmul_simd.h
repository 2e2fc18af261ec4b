#pragma once
// Internal: the SIMD variants behind kernels/cpu/matmul.h (matmul.cpp checks arguments and
// dispatches). One weight description shared by all variants.

#include <cstdint>

#include "linfer/core/cpu_features.h"
#include "linfer/core/dtype.h"

namespace linfer::kernels {

struct WeightMatrix {
  const void* data;  // [N, ld] elements of dtype; row n starts at n * ld
  DType dtype;       // F32 / BF16 / F16
  int64_t N, K, ld;
};

namespace avx2 {
// y[M, N] = x[M, K] · wᵀ (+ bias), the packed GEMM (matmul_avx2.cpp), parallel over the thread pool.
// Needs AVX2 + FMA + F16C.
void gemm(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);
}  // namespace avx2

namespace hwy_paths {
// y[M, N] = x[M, K] · wᵀ (+ bias), any M, weights read once per 4 rows of x (matmul_hwy.cpp: one
// Highway source compiled per target). `level` names the target: avx2, avx512 (x86-64) or neon
// (aarch64); the CPU must be able to run it.
void gemv(SimdLevel level, const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);
}  // namespace hwy_paths

}  // namespace linfer::kernels
