#pragma once
// Internal: the prefill GEMM with x rounded to bf16 (rounds_prefill_to_bf16 in linfer/core/quant_activations.h,
// the CLI's --activations bf16 and q8), on AVX-512 BF16's vdpbf16ps: each instruction takes 16 output columns
// × 2 values of k (32 products) where the float32 GEMM's FMA takes 16 × 1. x86-64 only; matmul.cpp and
// quant/qmatmul.cpp send BF16 and block-quantized products of more than 48 rows here when the setting asks
// for it and the CPU has it, every other product keeps the float32 GEMM (gemm_hwy.cpp).
//
// What it computes: y = round_bf16(x) · round_bf16(w)ᵀ (+ bias), round_bf16 to nearest even (BF16 weights are
// their own values; quantized weights are dequantized in float32 first: core/quant_formats.h), products exact
// in float32 and summed in float32 (vdpbf16ps treats denormal inputs and results as zero), each y element
// summed over pairs of k in order, blocks of K in order: its value depends on K alone (not on M, N or threads).
// Thread-safety: reentrant; parallel over the thread pool.

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"

namespace linfer::kernels {

using GemmBf16Fn = void (*)(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

// The kernel for the `level` path, or null where there is none (not the avx512 path, a CPU without
// AVX-512 BF16, not x86-64).
GemmBf16Fn gemm_bf16_dot_for(SimdLevel level);

// y[M, N] = round_bf16(x[M, K]) · round_bf16(w[N, K])ᵀ (+ bias); w.dtype BF16 or block-quantized (K and ld
// whole blocks).
void gemm_bf16_avx512bf16(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y);

}  // namespace linfer::kernels
