// The linear-attention / Mamba2 inner kernels (linear_attn_simd.h) written once over Google Highway, compiled for
// every target of hwy_targets.h (AVX2, AVX-512, NEON); linear_attn_simd() hands out the table of the running path.
// L below is the target's number of float lanes.

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/linear_attn_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <cmath>

#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_math-inl.h"
#include "kernels/cpu/linear_attn_simd.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

float decay_axpy_dot(int64_t n, float* s, const float* dvec, float dscalar, float alpha, const float* x,
                     const float* q) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  const VF va = hn::Set(df, alpha), vd = hn::Set(df, dscalar);
  auto update = [&](int64_t i) {  // s[i, i + L) = d s + alpha x, returned
    const VF d = dvec ? hn::LoadU(df, dvec + i) : vd;
    const VF si = hn::MulAdd(va, hn::LoadU(df, x + i), hn::Mul(d, hn::LoadU(df, s + i)));
    hn::StoreU(si, df, s + i);
    return si;
  };
  VF acc0 = hn::Zero(df), acc1 = hn::Zero(df);  // two chains, so the FMAs' latency overlaps
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    acc0 = hn::MulAdd(update(i), hn::LoadU(df, q + i), acc0);
    acc1 = hn::MulAdd(update(i + L), hn::LoadU(df, q + i + L), acc1);
  }
  for (; i + L <= n; i += L) acc0 = hn::MulAdd(update(i), hn::LoadU(df, q + i), acc0);
  float acc = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc0, acc1)));
  for (; i < n; ++i) {
    s[i] = (dvec ? dvec[i] : dscalar) * s[i] + alpha * x[i];
    acc += s[i] * q[i];
  }
  return acc;
}

float decayed_dot_step(int64_t n, const float* q, const float* k, float* d, const float* g) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  VF acc = hn::Zero(df);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const VF vd = hn::LoadU(df, d + i);
    acc = hn::MulAdd(hn::Mul(hn::LoadU(df, q + i), hn::LoadU(df, k + i)), hwy_math::exp(df, vd), acc);
    hn::StoreU(hn::Add(vd, hn::LoadU(df, g + i)), df, d + i);
  }
  float s = hn::GetLane(hn::SumOfLanes(df, acc));
  for (; i < n; ++i) {
    s += q[i] * k[i] * std::exp(d[i]);
    d[i] += g[i];
  }
  return s;
}

// Micro-kernels over register tiles. The tile loops carry `unroll` pragmas: at -O2 GCC otherwise keeps the
// accumulator arrays in memory.

// R rows x C columns of dot products over kd.
template <int R, int C>
HWY_INLINE void dots(int64_t kd, const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc,
                     bool accumulate) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  VF acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) acc[r][j] = hn::Zero(df);
  int64_t p = 0;
  for (; p + L <= kd; p += L) {
    VF vb[C];
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) vb[j] = hn::LoadU(df, b + j * ldb + p);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const VF va = hn::LoadU(df, a + r * lda + p);
#pragma GCC unroll 16
      for (int j = 0; j < C; ++j) acc[r][j] = hn::MulAdd(va, vb[j], acc[r][j]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int j = 0; j < C; ++j) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[r][j]));
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

// R rows x W vectors of L columns of c += a b (6 x 2: 12 accumulators, 8 loads per 12 FMAs).
template <int R, int W>
HWY_INLINE void axpys(int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t ldb, float* c,
                      int64_t ldc, const float* c_scale) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  VF acc[R][W];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    const VF scale = hn::Set(df, c_scale ? c_scale[r] : 1.0f);
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) acc[r][w] = hn::Mul(scale, hn::LoadU(df, c + r * ldc + L * w));
  }
  for (int64_t p = 0; p < kd; ++p) {
    VF vb[W];
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) vb[w] = hn::LoadU(df, b + p * ldb + L * w);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const VF va = hn::Set(df, a[r * a_rs + p * a_cs]);
#pragma GCC unroll 16
      for (int w = 0; w < W; ++w) acc[r][w] = hn::MulAdd(va, vb[w], acc[r][w]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int w = 0; w < W; ++w) hn::StoreU(acc[r][w], df, c + r * ldc + L * w);
}

template <int R>
HWY_INLINE void gemm_nn_rows(int64_t n, int64_t kd, const float* a, int64_t a_rs, int64_t a_cs, const float* b,
                             int64_t ldb, float* c, int64_t ldc, const float* c_scale) {
  const int64_t L = int64_t(hn::Lanes(DF()));
  int64_t j = 0;
  for (; j + 2 * L <= n; j += 2 * L) axpys<R, 2>(kd, a, a_rs, a_cs, b + j, ldb, c + j, ldc, c_scale);
  for (; j + L <= n; j += L) axpys<R, 1>(kd, a, a_rs, a_cs, b + j, ldb, c + j, ldc, c_scale);
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
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  const VF vs = hn::Set(df, bscalar);
  int64_t i = 0;
  for (; i + L <= n; i += L)
    hn::StoreU(hn::Mul(hn::LoadU(df, a + i), bvec ? hn::LoadU(df, bvec + i) : vs), df, dst + i);
  for (; i < n; ++i) dst[i] = a[i] * (bvec ? bvec[i] : bscalar);
}

void exp_inplace(int64_t n, float* x) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hwy_math::exp(df, hn::LoadU(df, x + i)), df, x + i);
  for (; i < n; ++i) x[i] = std::exp(x[i]);
}

constexpr LinearAttnSimd kTable{decay_axpy_dot, decayed_dot_step, gemm_nt, gemm_nn, mul, exp_inplace};

}  // namespace

const LinearAttnSimd& linear_attn_table() { return kTable; }

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

const LinearAttnSimd& linear_attn_simd(SimdLevel level) {
  LINFER_HWY_DISPATCH(level, "linear attention", linear_attn_table());
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
