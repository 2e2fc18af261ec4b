#include <immintrin.h>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/attention_core.h"

namespace linfer::kernels::avx2 {
namespace {

struct Ops {
  // out[j] = q · k_j: eight keys at a time share each load of q and keep eight FMA chains in flight
  // (FMA latency 4 × 2 pipes).
  template <int U>
  static void dots_block(const float* q, const float* k0, int64_t stride, int64_t D, float* out) {
    __m256 a[U];
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) a[u] = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= D; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      const float* kp = k0 + i;
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) a[u] = _mm256_fmadd_ps(qv, _mm256_loadu_ps(kp + u * stride), a[u]);
    }
    for (int u = 0; u < U; ++u) {
      float r = hsum256(a[u]);
      for (int64_t t = i; t < D; ++t) r += q[t] * k0[u * stride + t];
      out[u] = r;
    }
  }
  static void dots(const float* q, const float* k, int64_t stride, int64_t n, int64_t D, float* out) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) dots_block<8>(q, k + j * stride, stride, D, out + j);
    for (; j < n; ++j) dots_block<1>(q, k + j * stride, stride, D, out + j);
  }
  static void scale(float* o, float alpha, int64_t n) {
    const __m256 a = _mm256_set1_ps(alpha);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(o + i, _mm256_mul_ps(_mm256_loadu_ps(o + i), a));
    for (; i < n; ++i) o[i] *= alpha;
  }
  // o[Dv] += Σ_j p[j] · v_j: C·8 outputs held in registers across all n keys.
  template <int C>
  static void pv_cols(float* o, const float* p, const float* v, int64_t stride, int64_t n) {
    __m256 a[C];
#pragma GCC unroll 8
    for (int u = 0; u < C; ++u) a[u] = _mm256_loadu_ps(o + 8 * u);
    for (int64_t j = 0; j < n; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      const float* vj = v + j * stride;
#pragma GCC unroll 8
      for (int u = 0; u < C; ++u) a[u] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * u), a[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < C; ++u) _mm256_storeu_ps(o + 8 * u, a[u]);
  }
  static void pv(float* o, const float* p, const float* v, int64_t stride, int64_t n, int64_t Dv) {
    int64_t c = 0;
    for (; c + 64 <= Dv; c += 64) pv_cols<8>(o + c, p, v + c, stride, n);
    for (; c + 8 <= Dv; c += 8) pv_cols<1>(o + c, p, v + c, stride, n);
    for (; c < Dv; ++c)
      for (int64_t j = 0; j < n; ++j) o[c] += p[j] * v[j * stride + c];
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
