#pragma once
// Internal: y = x · wᵀ for block-quantized weights (core/quant_formats.h), reached through
// kernels::matmul / matmul_many (kernels/cpu/matmul.h). Up to 48 rows of x (decode, small batches) on the
// SIMD paths, and every size on a path without a quantized GEMM (NEON), matmul.cpp's GEMV calls
// hwy_paths::matmul_rows (each weight block dequantized in registers and dotted with up to 4 rows of x at a
// time: Highway vectors of 8, 16, 4 lanes on avx2, avx512, neon), so a layer's products share one split of
// the pool whatever their weights' types; a row's sums never depend on the other rows of the call (batched
// decode gives each sequence the bits it gets alone). matmul() below takes the rest: more rows on x86
// (prefill), on the bf16 GEMM where the activations setting rounds x to bf16 and the CPU has it (weights
// dequantized and rounded to bf16 a block of K at a time: gemm_bf16.h), else panels of weight rows
// dequantized to a bounded float32 buffer for the packed float32 GEMM; and the scalar path (each block into
// a block-sized buffer). The matrix is never widened to a float32 copy as a whole.
// Thread-safety: reentrant; parallel over N on the thread pool.

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/cpu_features.h"

namespace linfer::kernels::quant {

// Whether matmul() has a GEMM for the `level` path (x86-64's avx2 and avx512); elsewhere the GEMV takes
// products of every size.
bool has_gemm(SimdLevel level);

// y[M, N] = x[M, K] · wᵀ (+ bias[N]) on has_gemm's GEMM or the scalar path (level Scalar); w.dtype quantized,
// K % dtype_block(w.dtype) == 0 and ld a multiple of the block (matmul.cpp checks).
void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, SimdLevel level);

// Sums of each run of 32 consecutive values of the M rows of x [M, K]: xs[M, K / 32]. Formats with
// offsets (Q4_0's -8, Q4_1's m, the K-quants' mins ...) fold them into one product with these.
void group_sums(const float* x, int64_t M, int64_t K, float* xs);

// y[M, n0:n1) for weight rows [n0, n1) with float32 x on the calling thread: rows16.h's kernel (n0, n1 multiples
// of 16 or N), every other type hwy_paths::matmul_rows below; xs as there.
void matmul_rows(SimdLevel level, const float* x, const float* xs, int64_t M, const WeightMatrix& w,
                 const float* bias, float* y, int64_t n0, int64_t n1);
// Whether matmul_rows reads xs for weights of type t on the `level` path.
bool reads_group_sums(SimdLevel level, DType t);

namespace hwy_paths {
// y[M, n0:n1) for weight rows [n0, n1) on the calling thread (qmatmul_hwy.cpp: one Highway source compiled
// per target); xs: x's group sums (group_sums; read only by formats with offsets). `level` names the
// target: avx2, avx512 (x86-64) or neon (aarch64); the CPU must be able to run it. A row's result does not
// depend on n0, n1 or M.
void matmul_rows(SimdLevel level, const float* x, const float* xs, int64_t M, const WeightMatrix& w,
                 const float* bias, float* y, int64_t n0, int64_t n1);
// Whether matmul_rows reads xs for weights of type t on the `level` path (formats with offsets, but not
// AVX-512's Q4_0 / Q5_0, whose table takes the offset).
bool reads_group_sums(SimdLevel level, DType t);
}  // namespace hwy_paths

}  // namespace linfer::kernels::quant
