#include <immintrin.h>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/attention_core.h"

namespace linfer::kernels::avx2 {
namespace {

struct Ops {
  static float dot(const float* a, const float* b, int64_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
      s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
      s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float r = hsum256(_mm256_add_ps(s0, s1));
    for (; i < n; ++i) r += a[i] * b[i];
    return r;
  }
  static void scale(float* o, float alpha, int64_t n) {
    const __m256 a = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), a));
    for (; i < n; ++i) o[i] *= alpha;
  }
  static void axpy(float* o, float p, const float* v, int64_t n) {
    const __m256 pv = _mm256_set1_ps(p);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_fmadd_ps(pv, _mm256_loadu_ps(v + i), _mm256_loadu_ps(o + i)));
    for (; i < n; ++i) o[i] += p * v[i];
  }
  // p[j] = exp(p[j] − m); returns Σ p. p has room for a whole vector past n (key block buffer).
  static float exp_shift(float* p, int64_t n, float m) {
    const __m256 mv = _mm256_set1_ps(m);
    __m256 sum = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(p + j), mv));
      _mm256_storeu_ps(p + j, e);
      sum = _mm256_add_ps(sum, e);
    }
    float r = hsum256(sum);
    for (; j < n; ++j) r += (p[j] = std::exp(p[j] - m));
    return r;
  }
};

}  // namespace

void attend_rows(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs, int64_t n_segs,
                 AttnAcc acc) {
  attend_rows_impl<Ops>(s, rows, R, segs, n_segs, acc);
}

}  // namespace linfer::kernels::avx2
