#include "kernels/reference/activation.h"

#include <cmath>
#include <numbers>

namespace linfer::kernels::ref {

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double silu(double x) { return x * sigmoid(x); }
double softplus(double x) { return x > 20.0 ? x : std::log1p(std::exp(x)); }
double gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::numbers::sqrt2)); }
double gelu_tanh(double x) {
  const double c = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

template <double (*F)(double)>
static void apply(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(F(x[i]));
}

void silu(const float* x, float* y, int64_t n) { apply<silu>(x, y, n); }
void sigmoid(const float* x, float* y, int64_t n) { apply<sigmoid>(x, y, n); }
void softplus(const float* x, float* y, int64_t n) { apply<softplus>(x, y, n); }
void gelu(const float* x, float* y, int64_t n) { apply<gelu>(x, y, n); }
void gelu_tanh(const float* x, float* y, int64_t n) { apply<gelu_tanh>(x, y, n); }

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = float(silu(double(gate[i])) * up[i]);
}

void swiglu_packed(const float* gu, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) swiglu(gu + r * 2 * n, gu + r * 2 * n + n, y + r * n, n);
}

}  // namespace linfer::kernels::ref
