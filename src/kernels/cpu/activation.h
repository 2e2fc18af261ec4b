#pragma once
// Elementwise activations over float32 arrays, matching torch's definitions. x and y may alias.
//
//   silu(x, x, n);                      // in place
//   swiglu_packed(gu, h, T, I);         // h[T, I] = silu(gu[:, :I]) · gu[:, I:]

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

// x · sigmoid(x)
void silu(const float* x, float* y, int64_t n, SimdLevel level = simd_level());
// 1 / (1 + e^-x)
void sigmoid(const float* x, float* y, int64_t n, SimdLevel level = simd_level());
// log(1 + e^x); x above 20 passes through (torch)
void softplus(const float* x, float* y, int64_t n, SimdLevel level = simd_level());
// x · Φ(x), exact erf form (torch "gelu")
void gelu(const float* x, float* y, int64_t n, SimdLevel level = simd_level());
// tanh approximation ("gelu_pytorch_tanh")
void gelu_tanh(const float* x, float* y, int64_t n, SimdLevel level = simd_level());

// y = silu(gate) · up.
void swiglu(const float* gate, const float* up, float* y, int64_t n, SimdLevel level = simd_level());
// The same on a fused gate_up projection: row t of gu holds gate (first n) then up (next n), as
// transformers packs `gate_up_proj`. y may alias gu (row t of y is written after it is read).
void swiglu_packed(const float* gu,  // [rows, 2n]
                   float* y,         // [rows, n]
                   int64_t rows, int64_t n, SimdLevel level = simd_level());

}  // namespace linfer::kernels
