#pragma once
// The few inner loops the linear-attention / Mamba2 kernels spend their time in, one table per SIMD
// level: linear_attn_simd.cpp (plain loops: the scalar path) and linear_attn_hwy.cpp (Highway: AVX2,
// AVX-512, NEON). The algorithms (linear_attn.cpp) are written once against this table.
//
// Matrices are row-major float32 with explicit leading dimensions (in floats).

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

struct LinearAttnSimd {
  // Decode row update: s = d ⊙ s + alpha x (d = dvec, or the scalar dscalar when dvec is null);
  // returns s · q.                                                      s, dvec, x, q: [n]
  float (*decay_axpy_dot)(int64_t n, float* s, const float* dvec, float dscalar, float alpha, const float* x,
                          const float* q);
  // Σ_k q[k] k[k] exp(d[k]), then d += g (the running segment sum of the next, earlier, pair).
  float (*decayed_dot_step)(int64_t n, const float* q, const float* k, float* d, const float* g);
  // c[i][j] (+)= Σ_p a[i][p] b[j][p]                         a: [m, kd] lda; b: [n, kd] ldb; c: [m, n] ldc
  void (*gemm_nt)(int64_t m, int64_t n, int64_t kd, const float* a, int64_t lda, const float* b, int64_t ldb,
                  float* c, int64_t ldc, bool accumulate);
  // c[i][j] = c_scale[i] c[i][j] + Σ_p a(i, p) b[p][j], a(i, p) = a[i * a_rs + p * a_cs]; c_scale null
  // means 1 (it folds a decay of c into the product's single pass over c).
  //                                                                     b: [kd, n] ldb; c: [m, n] ldc
  void (*gemm_nn)(int64_t m, int64_t n, int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                  int64_t ldb, float* c, int64_t ldc, const float* c_scale);
  // dst = a ⊙ b (b = bvec, or the scalar bscalar when bvec is null); dst may alias a.
  void (*mul)(int64_t n, float* dst, const float* a, const float* bvec, float bscalar);
  // x = exp(x), in place (x <= 0 in every use; results below FLT_MIN may come out as 0 or ~1e-38).
  void (*exp_inplace)(int64_t n, float* x);
};

const LinearAttnSimd& linear_attn_simd(SimdLevel level);

namespace hwy_paths {
// The Highway table (linear_attn_hwy.cpp) of `level`, which is not the scalar path.
const LinearAttnSimd& linear_attn_simd(SimdLevel level);
}  // namespace hwy_paths

}  // namespace linfer::kernels
