#include <immintrin.h>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/conv1d_simd.h"

namespace linfer::kernels::avx2 {

void conv1d_row(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias, bool silu,
                int64_t c0, int64_t c1, float* out) {
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) {
    __m256 acc = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
    for (int64_t j = 0; j < W; ++j) acc = _mm256_fmadd_ps(_mm256_loadu_ps(wT + j * C + c), _mm256_loadu_ps(taps[j] + c), acc);
    _mm256_storeu_ps(out + c, silu ? silu256(acc) : acc);
  }
  if (c < c1) {  // tail: the same vector formula on zero-padded lanes
    const int64_t m = c1 - c;
    alignas(32) float b[8] = {}, wv[8] = {}, xv[8] = {};
    if (bias)
      for (int64_t i = 0; i < m; ++i) b[i] = bias[c + i];
    __m256 acc = _mm256_load_ps(b);
    for (int64_t j = 0; j < W; ++j) {
      for (int64_t i = 0; i < m; ++i) wv[i] = wT[j * C + c + i], xv[i] = taps[j][c + i];
      acc = _mm256_fmadd_ps(_mm256_load_ps(wv), _mm256_load_ps(xv), acc);
    }
    _mm256_store_ps(b, silu ? silu256(acc) : acc);
    for (int64_t i = 0; i < m; ++i) out[c + i] = b[i];
  }
}

}  // namespace linfer::kernels::avx2
