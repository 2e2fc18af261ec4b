#include <immintrin.h>

#include "kernels/cpu/activation_avx2.h"
#include "kernels/cpu/norm_simd.h"

namespace linfer::kernels::avx2 {

float sum_squares(const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
    a0 = _mm256_fmadd_ps(v0, v0, a0);
    a1 = _mm256_fmadd_ps(v1, v1, a1);
  }
  float s = hsum256(_mm256_add_ps(a0, a1));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

namespace {

inline __m256 weight8(const float* w, NormWeight mode, int64_t i) {
  if (!w) return _mm256_set1_ps(1.0f);
  const __m256 v = _mm256_loadu_ps(w + i);
  return mode == NormWeight::OnePlus ? _mm256_add_ps(v, _mm256_set1_ps(1.0f)) : v;
}

inline __m256 act8(const float* gate, GateAct act, int64_t i) {
  const __m256 g = _mm256_loadu_ps(gate + i);
  return act == GateAct::Sigmoid ? sigmoid256(g) : silu256(g);
}

// Up to 8 values of a row tail, zero padded, through the same vector formula.
struct Tail {
  alignas(32) float v[8] = {};
  Tail(const float* p, int64_t n) {
    if (p)
      for (int64_t j = 0; j < n; ++j) v[j] = p[j];
  }
  const float* get(const float* p) const { return p ? v : nullptr; }
};

void scale8(const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act, float* y,
            int64_t i) {
  __m256 r = _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), _mm256_set1_ps(s)), weight8(w, mode, i));
  if (gate) r = _mm256_mul_ps(r, act8(gate, act, i));
  _mm256_storeu_ps(y + i, r);
}

}  // namespace

void scale_row(const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act, float* y,
               int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) scale8(x, s, w, mode, gate, act, y, i);
  if (i < n) {
    const int64_t m = n - i;
    Tail tx(x + i, m), tw(w ? w + i : nullptr, m), tg(gate ? gate + i : nullptr, m);
    alignas(32) float out[8];
    scale8(tx.v, s, tw.get(w), mode, tg.get(gate), act, out, 0);
    for (int64_t j = 0; j < m; ++j) y[i + j] = out[j];
  }
}

void gate_silu(const float* x, const float* z, float* h, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(h + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), silu256(_mm256_loadu_ps(z + i))));
  if (i < n) {
    const int64_t m = n - i;
    Tail tx(x + i, m), tz(z + i, m);
    alignas(32) float out[8];
    _mm256_store_ps(out, _mm256_mul_ps(_mm256_load_ps(tx.v), silu256(_mm256_load_ps(tz.v))));
    for (int64_t j = 0; j < m; ++j) h[i + j] = out[j];
  }
}

}  // namespace linfer::kernels::avx2
