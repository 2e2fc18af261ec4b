#pragma once
// Internal: block-quantized weights times int8-rounded activations (linfer/core/quant_activations.h,
// QuantActivations::Q8), for the decode-sized products of kernels/cpu/quant/qmatmul.cpp. x86-64 only: AVX2
// (vpmaddubsw, 256-bit vectors) and, on CPUs with AVX-512 VNNI, vpdpbusd on 512-bit ones (qmatmul_q8_rows.h).
// Thread-safety: reentrant.

#include <cstdint>

#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/q8_activations.h"

namespace linfer::kernels::quant {

// The int8 kernel for weights of type t on the `level` path, or null where there is none (Q4_1, Q5_1; the
// scalar and NEON paths): then the product stays float32.
using Q8RowsFn = void (*)(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                          int64_t n0, int64_t n1);
Q8RowsFn q8_kernel_for(SimdLevel level, DType t);

// Each instruction set's rows: y[M, n0:n1) = x · w[n0:n1)ᵀ (+ bias) on the calling thread.
void q8_rows_avx2(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                  int64_t n1);
void q8_rows_avx512vnni(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                        int64_t n1);

}  // namespace linfer::kernels::quant
