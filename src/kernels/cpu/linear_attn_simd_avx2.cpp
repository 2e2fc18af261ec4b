// AVX2 + FMA inner kernels (this file is compiled with -mavx2 -mfma; reached only through
// linear_attn_simd(), after the CPU check).
#include <immintrin.h>

#include <cmath>

#include "kernels/cpu/linear_attn_simd.h"

namespace linfer::kernels {
namespace {

// exp for 8 floats: Cody-Waite range reduction to [-ln2/2, ln2/2], degree-5 polynomial, scale by 2^n.
// Relative error ~1e-7; inputs below -87.3 give 0 (the kernels only exponentiate log decays <= 0).
inline __m256 exp8(__m256 x) {
  const __m256 underflow = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                             _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(underflow, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

float decay_axpy_dot(int64_t n, float* s, const float* dvec, float dscalar, float alpha, const float* x,
                     const float* q) {
  const __m256 va = _mm256_set1_ps(alpha), vd = _mm256_set1_ps(dscalar);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256 d0 = dvec ? _mm256_loadu_ps(dvec + i) : vd, d1 = dvec ? _mm256_loadu_ps(dvec + i + 8) : vd;
    __m256 s0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(d0, _mm256_loadu_ps(s + i)));
    __m256 s1 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i + 8), _mm256_mul_ps(d1, _mm256_loadu_ps(s + i + 8)));
    _mm256_storeu_ps(s + i, s0);
    _mm256_storeu_ps(s + i + 8, s1);
    acc0 = _mm256_fmadd_ps(s0, _mm256_loadu_ps(q + i), acc0);
    acc1 = _mm256_fmadd_ps(s1, _mm256_loadu_ps(q + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) {
    __m256 d0 = dvec ? _mm256_loadu_ps(dvec + i) : vd;
    __m256 s0 = _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_mul_ps(d0, _mm256_loadu_ps(s + i)));
    _mm256_storeu_ps(s + i, s0);
    acc0 = _mm256_fmadd_ps(s0, _mm256_loadu_ps(q + i), acc0);
  }
  float acc = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; ++i) {
    s[i] = (dvec ? dvec[i] : dscalar) * s[i] + alpha * x[i];
    acc += s[i] * q[i];
  }
  return acc;
}

float decayed_dot_step(int64_t n, const float* q, const float* k, float* d, const float* g) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 vd = _mm256_loadu_ps(d + i);
    acc = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_loadu_ps(q + i), _mm256_loadu_ps(k + i)), exp8(vd), acc);
    _mm256_storeu_ps(d + i, _mm256_add_ps(vd, _mm256_loadu_ps(g + i)));
  }
  float s = hsum(acc);
  for (; i < n; ++i) {
    s += q[i] * k[i] * std::exp(d[i]);
    d[i] += g[i];
  }
  return s;
}

// Micro-kernels over R x C (or R x W vectors) register tiles. The tile loops carry `unroll` pragmas:
// at -O2 GCC otherwise keeps the accumulator arrays in memory.

// R rows x C columns of dot products over kd.
template <int R, int C>
inline void dots(int64_t kd, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                 bool accumulate) {
  __m256 acc[R][C];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[r][j] = _mm256_setzero_ps();
  int64_t p = 0;
  for (; p + 8 <= kd; p += 8) {
    __m256 vb[C];
    #pragma GCC unroll 16
    for (int j = 0; j < C; ++j) vb[j] = _mm256_loadu_ps(b + j * ldb + p);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 va = _mm256_loadu_ps(a + r * lda + p);
      #pragma GCC unroll 16
      for (int j = 0; j < C; ++j) acc[r][j] = _mm256_fmadd_ps(va, vb[j], acc[r][j]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      float s = hsum(acc[r][j]);
      for (int64_t q = p; q < kd; ++q) s += a[r * lda + q] * b[j * ldb + q];
      c[r * ldc + j] = accumulate ? c[r * ldc + j] + s : s;
    }
}

void gemm_nt(int64_t m, int64_t n, int64_t kd, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  int64_t i = 0;
  for (; i + 2 <= m; i += 2) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4)
      dots<2, 4>(kd, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
    for (; j < n; ++j) dots<2, 1>(kd, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
  }
  for (; i < m; ++i) {
    int64_t j = 0;
    for (; j + 4 <= n; j += 4)
      dots<1, 4>(kd, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
    for (; j < n; ++j) dots<1, 1>(kd, a + i * lda, lda, b + j * ldb, ldb, c + i * ldc + j, ldc, accumulate);
  }
}

// R rows x W vectors of 8 columns of c += a b (6 x 2: 12 accumulators, 8 loads per 12 FMAs).
template <int R, int W>
inline void axpys(int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb, float* c,
                  int64_t ldc, const float* c_scale) {
  __m256 acc[R][W];
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const __m256 scale = _mm256_set1_ps(c_scale ? c_scale[r] : 1.0f);
    #pragma GCC unroll 16
    for (int w = 0; w < W; ++w) acc[r][w] = _mm256_mul_ps(scale, _mm256_loadu_ps(c + r * ldc + 8 * w));
  }
  for (int64_t p = 0; p < kd; ++p) {
    __m256 vb[W];
    #pragma GCC unroll 16
    for (int w = 0; w < W; ++w) vb[w] = _mm256_loadu_ps(b + p * ldb + 8 * w);
    #pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      __m256 va = _mm256_broadcast_ss(a + r * a_rs + p * a_cs);
      #pragma GCC unroll 16
      for (int w = 0; w < W; ++w) acc[r][w] = _mm256_fmadd_ps(va, vb[w], acc[r][w]);
    }
  }
  #pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
    #pragma GCC unroll 16
    for (int w = 0; w < W; ++w) _mm256_storeu_ps(c + r * ldc + 8 * w, acc[r][w]);
}

template <int R>
inline void gemm_nn_rows(int64_t n, int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                         int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  int64_t j = 0;
  for (; j + 16 <= n; j += 16) axpys<R, 2>(kd, a, a_rs, a_cs, b + j, ldb, c + j, ldc, c_scale);
  for (; j + 8 <= n; j += 8) axpys<R, 1>(kd, a, a_rs, a_cs, b + j, ldb, c + j, ldc, c_scale);
  for (; j < n; ++j)
    for (int r = 0; r < R; ++r) {
      float s = c_scale ? c_scale[r] * c[r * ldc + j] : c[r * ldc + j];
      for (int64_t p = 0; p < kd; ++p) s += a[r * a_rs + p * a_cs] * b[p * ldb + j];
      c[r * ldc + j] = s;
    }
}

void gemm_nn(int64_t m, int64_t n, int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  auto scale = [&](int64_t i) { return c_scale ? c_scale + i : nullptr; };
  int64_t i = 0;
  for (; i + 6 <= m; i += 6) gemm_nn_rows<6>(n, kd, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, scale(i));
  for (; i + 4 <= m; i += 4) gemm_nn_rows<4>(n, kd, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, scale(i));
  for (; i < m; ++i) gemm_nn_rows<1>(n, kd, a + i * a_rs, a_rs, a_cs, b, ldb, c + i * ldc, ldc, scale(i));
}

void mul(int64_t n, float* dst, const float* a, const float* bvec, float bscalar) {
  const __m256 vs = _mm256_set1_ps(bscalar);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), bvec ? _mm256_loadu_ps(bvec + i) : vs));
  for (; i < n; ++i) dst[i] = a[i] * (bvec ? bvec[i] : bscalar);
}

void exp_inplace(int64_t n, float* x) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, exp8(_mm256_loadu_ps(x + i)));
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

constexpr LinearAttnSimd kAvx2{decay_axpy_dot, decayed_dot_step, gemm_nt, gemm_nn, mul, exp_inplace};

}  // namespace

const LinearAttnSimd& linear_attn_simd_avx2() { return kAvx2; }

}  // namespace linfer::kernels
