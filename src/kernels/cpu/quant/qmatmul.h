#pragma once
// Internal: y = x · wᵀ for block-quantized weights (core/quant_formats.h), reached through
// kernels::matmul (kernels/cpu/matmul.h), which dispatches here on the weight's dtype. Activations are
// float32; each weight block is dequantized in registers (scalar path: into one block-sized buffer) and
// dotted with up to 4 rows of x at a time, so a weight row is read once per 4 rows of x and never
// widened to a float32 copy of the matrix.
//
// Sums per row of x never depend on the other rows of the call (batched decode gives each sequence
// the bits it gets alone). Thread-safety: reentrant; parallel over N on the thread pool.

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/cpu_features.h"

namespace linfer::kernels::quant {

// y[M, N] = x[M, K] · wᵀ (+ bias[N]); w.dtype quantized, K % dtype_block(w.dtype) == 0 and ld a
// multiple of the block (matmul.cpp checks).
void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, SimdLevel level);

// Sums of each run of 32 consecutive values of the M rows of x [M, K]: xs[M, K / 32]. Q4_0 and Q4_K
// fold their offsets (-8, the mins) into one product with these instead of one per element.
void group_sums(const float* x, int64_t M, int64_t K, float* xs);

namespace avx2 {
// The AVX2 + FMA + F16C path (qmatmul_avx2.cpp), same contract as quant::matmul.
void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);
}  // namespace avx2

}  // namespace linfer::kernels::quant
