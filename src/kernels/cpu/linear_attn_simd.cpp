// Plain-loop inner kernels: the scalar path (CPUs without AVX2 or NEON, builds without Highway), and
// the baseline the SIMD tests compare against.
#include "kernels/cpu/linear_attn_simd.h"

#include <cmath>

namespace linfer::kernels {
namespace {

float decay_axpy_dot(int64_t n, float* s, const float* dvec, float dscalar, float alpha, const float* x,
                     const float* q) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    float d = dvec ? dvec[i] : dscalar;
    s[i] = d * s[i] + alpha * x[i];
    acc += s[i] * q[i];
  }
  return acc;
}

float decayed_dot_step(int64_t n, const float* q, const float* k, float* d, const float* g) {
  float acc = 0.0f;
  for (int64_t i = 0; i < n; ++i) {
    acc += q[i] * k[i] * std::exp(d[i]);
    d[i] += g[i];
  }
  return acc;
}

void gemm_nt(int64_t m, int64_t n, int64_t kd, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
             int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float acc = 0.0f;
      for (int64_t p = 0; p < kd; ++p) acc += a[i * lda + p] * b[j * ldb + p];
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc : acc;
    }
}

void gemm_nn(int64_t m, int64_t n, int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
             int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  for (int64_t i = 0; i < m; ++i) {
    if (c_scale)
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] *= c_scale[i];
    for (int64_t p = 0; p < kd; ++p) {
      float aip = a[i * a_rs + p * a_cs];
      if (aip == 0.0f) continue;  // the causal mask leaves half of every intra-chunk matrix zero
      for (int64_t j = 0; j < n; ++j) c[i * ldc + j] += aip * b[p * ldb + j];
    }
  }
}

void mul(int64_t n, float* dst, const float* a, const float* bvec, float bscalar) {
  for (int64_t i = 0; i < n; ++i) dst[i] = a[i] * (bvec ? bvec[i] : bscalar);
}

void exp_inplace(int64_t n, float* x) {
  for (int64_t i = 0; i < n; ++i) x[i] = std::exp(x[i]);
}

constexpr LinearAttnSimd kScalar{decay_axpy_dot, decayed_dot_step, gemm_nt, gemm_nn, mul, exp_inplace};

}  // namespace

const LinearAttnSimd& linear_attn_simd(SimdLevel level) {
#if LINFER_HWY
  if (level != SimdLevel::Scalar) return hwy_paths::linear_attn_simd(level);
#endif
  return kScalar;
}

}  // namespace linfer::kernels
