#pragma once
// Reference (specification) of the block-quantized weight formats (core/quant_formats.h) and of the
// quantized matmul (kernels/cpu/quant/qmatmul.h): float64, element by element, written from the layout
// description and independent of the float32 dequantizer in core.

#include <cstdint>
#include <vector>

#include "linfer/core/tensor.h"

namespace linfer::kernels::ref {

// The n values (n a multiple of dtype_block(t)) that the blocks at `src` represent, in float64.
std::vector<double> dequantize_f64(DType t, const void* src, int64_t n);

// y[M, N] = x[M, K] · wᵀ (+ bias), w a quantized [N, K] view: each row dequantized in float64, float64
// accumulation.
void matmul_quant_f64(const float* x, int64_t M, const TensorView& w, const float* bias, double* y);

}  // namespace linfer::kernels::ref
