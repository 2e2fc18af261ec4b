#pragma once
// Reference (specification) of kernels/cpu/activation.h: scalar float64 formulas, as torch defines
// them.

#include <cstdint>

namespace linfer::kernels::ref {

double silu(double x);
double sigmoid(double x);
double softplus(double x);  // torch: beta 1, threshold 20 (x > 20 returns x)
double gelu(double x);      // x · Φ(x), erf form
double gelu_tanh(double x); // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))

void silu(const float* x, float* y, int64_t n);
void sigmoid(const float* x, float* y, int64_t n);
void softplus(const float* x, float* y, int64_t n);
void gelu(const float* x, float* y, int64_t n);
void gelu_tanh(const float* x, float* y, int64_t n);
void swiglu(const float* gate, const float* up, float* y, int64_t n);
void swiglu_packed(const float* gu, float* y, int64_t rows, int64_t n);  // gu [rows, 2n] -> y [rows, n]

}  // namespace linfer::kernels::ref
