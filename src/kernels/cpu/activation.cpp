#include "kernels/cpu/activation.h"

#include <cmath>
#include <numbers>

#include "kernels/cpu/activation_simd.h"

namespace linfer::kernels {
namespace {

inline float sigmoid1(float x) { return 1.0f / (1.0f + std::exp(-x)); }

}  // namespace

void silu(const float* x, float* y, int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::silu(level, x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid1(x[i]);
}

void sigmoid(const float* x, float* y, int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::sigmoid(level, x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = sigmoid1(x[i]);
}

void softplus(const float* x, float* y, int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::softplus(level, x, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > 20.0f ? x[i] : std::log1p(std::exp(x[i]));
}

void gelu(const float* x, float* y, int64_t n, SimdLevel) {
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::erf(x[i] * float(std::numbers::sqrt2 / 2)));
}

void gelu_tanh(const float* x, float* y, int64_t n, SimdLevel) {
  const float c = float(std::sqrt(2.0 / std::numbers::pi));
  for (int64_t i = 0; i < n; ++i) y[i] = 0.5f * x[i] * (1.0f + std::tanh(c * (x[i] + 0.044715f * x[i] * x[i] * x[i])));
}

void swiglu(const float* gate, const float* up, float* y, int64_t n, SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::swiglu(level, gate, up, y, n);
#endif
  for (int64_t i = 0; i < n; ++i) y[i] = gate[i] * sigmoid1(gate[i]) * up[i];
}

void swiglu_packed(const float* gu, float* y, int64_t rows, int64_t n, SimdLevel level) {
  // Row by row in order: row r of y never overlaps the unread part of gu (r·n < 2·r·n + n).
  for (int64_t r = 0; r < rows; ++r) swiglu(gu + r * 2 * n, gu + r * 2 * n + n, y + r * n, n, level);
}

}  // namespace linfer::kernels
