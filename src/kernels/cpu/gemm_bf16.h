#pragma once
// Internal: the products with x rounded to bf16 (rounds_to_bf16 in linfer/core/quant_activations.h, the CLI's
// --activations bf16 and q8), on AVX-512 BF16's vdpbf16ps: each instruction takes 16 × 2 products (16 output
// columns × 2 values of k in the GEMM, 32 values of k of one dot product in the GEMV) where an FMA takes 16.
// x86-64 only. The prefill GEMM: matmul.cpp and quant/qmatmul.cpp send BF16 and block-quantized products of
// more than 48 rows here when the setting asks for it and the CPU has it. The decode GEMV: matmul.cpp sends
// products of BF16 weights with up to 48 rows there (block-quantized ones keep their own kernels). Every other
// product keeps the float32 kernels (gemm_hwy.cpp, matmul_hwy.cpp).
//
// What it computes: y = round_bf16(x) · round_bf16(w)ᵀ (+ bias), round_bf16 to nearest even (BF16 weights are
// their own values; quantized weights are dequantized in float32 first: core/quant_formats.h), products exact
// in float32 and summed in float32 (vdpbf16ps treats denormal inputs and results as zero), each y element
// summed over pairs of k in order, blocks of K in order: its value depends on K alone (not on M, N or threads).
// The GEMV computes the same products, summed in another order (16 lanes of pairs, two chains of blocks of 32
// values of k), which again depends on K alone.
// Thread-safety: reentrant; parallel over the thread pool.

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"

namespace linfer::kernels {

using GemmBf16Fn = void (*)(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// The kernel for the `level` path, or null where there is none (not the avx512 path, a CPU without
// AVX-512 BF16, not x86-64).
GemmBf16Fn gemm_bf16_dot_for(SimdLevel level);

// What prefill-sized products take where the setting rounds x to bf16: gemm_bf16_dot_for's kernel on AMD cores
// (Zen 4: +55-63 % prefill tokens/s over the float32 GEMM), null (the float32 GEMM) on Intel ones, where
// vdpbf16ps issues on one port and the FMA on two, so its 32 products per instruction come no faster than the
// FMAs' 2 x 16 and the rounding is extra (Emerald Rapids, mamba2 pp512: 614 tokens/s against 830;
// docs/benchmarks.md).
GemmBf16Fn prefill_gemm_bf16_for(SimdLevel level);

// y[M, N] = round_bf16(x[M, K]) · round_bf16(w[N, K])ᵀ (+ bias); w.dtype BF16 or block-quantized (K and ld
// whole blocks).
void gemm_bf16_avx512bf16(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// The decode GEMV. x is rounded first (round_rows_bf16, once per product), then any thread takes a range of
// weight rows:
//   std::vector<uint16_t> xb(M * bf16_x_ld(K));
//   round_rows_bf16(x, M, K, xb.data());
//   gemv(xb.data(), M, w, bias, y, n0, n1);   // y[M, n0:n1)
using GemvBf16Fn = void (*)(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                            int64_t n0, int64_t n1);

// The kernel for the `level` path, or null (as gemm_bf16_dot_for).
GemvBf16Fn gemv_bf16_dot_for(SimdLevel level);

// Elements per row of the rounded x: K rounded up to 32.
constexpr int64_t bf16_x_ld(int64_t K) { return (K + 31) / 32 * 32; }

// xb[M, bf16_x_ld(K)] = round_bf16(x[M, K]) (nearest even), zero past K. AVX-512 BF16 only (where
// gemv_bf16_dot_for gives a kernel).
void round_rows_bf16(const float* x, int64_t M, int64_t K, uint16_t* xb);

// y[M, n0:n1) = round_bf16(x) · w[n0:n1)ᵀ (+ bias), x as round_rows_bf16 left it; w.dtype BF16.
void gemv_bf16_avx512bf16(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                          int64_t n0, int64_t n1);

}  // namespace linfer::kernels
