#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/activation_simd.h"

namespace linfer::kernels::avx2 {

// Vector body, then the tail through the same vector code on a zero-padded copy (one formula for
// every element, so results do not depend on where an element falls).
template <class F>
static void unary(const float* x, float* y, int64_t n, F f) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, f(_mm256_loadu_ps(x + i)));
  if (i < n) {
    alignas(32) float buf[8] = {};
    for (int64_t j = i; j < n; ++j) buf[j - i] = x[j];
    _mm256_store_ps(buf, f(_mm256_load_ps(buf)));
    for (int64_t j = i; j < n; ++j) y[j] = buf[j - i];
  }
}

void silu(const float* x, float* y, int64_t n) { unary(x, y, n, silu256); }
void sigmoid(const float* x, float* y, int64_t n) { unary(x, y, n, sigmoid256); }
void softplus(const float* x, float* y, int64_t n) { unary(x, y, n, softplus256); }

void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_mul_ps(silu256(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(up + i)));
  if (i < n) {
    alignas(32) float g[8] = {}, u[8] = {};
    for (int64_t j = i; j < n; ++j) g[j - i] = gate[j], u[j - i] = up[j];
    _mm256_store_ps(g, _mm256_mul_ps(silu256(_mm256_load_ps(g)), _mm256_load_ps(u)));
    for (int64_t j = i; j < n; ++j) y[j] = g[j - i];
  }
}

}  // namespace linfer::kernels::avx2
