#pragma once
// Reference (specification) of kernels/cpu/matmul.h: plain loops, float64 accumulation.

#include <cstdint>
#include <span>

#include "linfer/core/tensor.h"

namespace linfer::kernels::ref {

// y[M, N] = x[M, K] · wᵀ (+ bias); w [N, K] f32 / bf16 / f16.
void matmul(const float* x, int64_t M, const TensorView& w, const float* bias, float* y);
// out[i, :] = table[ids[i], :] as float32.
void embedding(const TensorView& table, std::span<const int32_t> ids, float* out);

// Row r of a 2-D weight view as float32 (the one place the reference reads stored weights).
void weight_row(const TensorView& w, int64_t r, float* out);

}  // namespace linfer::kernels::ref
