// The decode GEMV written once over Google Highway and compiled for every target this file is
// built for (hwy/foreach_target.h re-includes it once per target: AVX2 and AVX-512 on x86-64,
// NEON and SVE on aarch64). matmul.cpp calls the target that matches the SimdLevel (matmul_simd.h).
//
// y[m, n] = x[m, :] · W[n, :] (+ bias[n]) for M rows of x. R weight rows at a time, each loaded
// once per vector of K and multiplied into every x row: W streams from memory once for all M rows
// (M <= kMaxRows; more rows go in groups, the weight rows then come again from cache), and M × R
// independent FMA chains hide the FMA latency. bf16 / f16 weights are widened to float32 in
// registers (bf16: a 16-bit shift; f16: the hardware conversion). Single-threaded over a range of
// weight rows: matmul.cpp splits the rows of one or several products over the pool.

// Only the targets a SimdLevel maps to (and Highway's baseline, which it always builds).
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4 | HWY_AVX3_DL | HWY_SVE | HWY_SVE2 | HWY_SVE_256 | HWY_SVE2_128)
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/error.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

template <DType T>
struct Stored;  // the element type Highway loads for weights stored as T
template <>
struct Stored<DType::F32> { using type = float; };
template <>
struct Stored<DType::BF16> { using type = hwy::bfloat16_t; };
template <>
struct Stored<DType::F16> { using type = hwy::float16_t; };

// Lanes(df) weights from k on, as float32.
template <DType T>
HWY_INLINE VF load_weights(DF df, const void* row, int64_t k) {
  using S = typename Stored<T>::type;
  const S* p = static_cast<const S*>(row) + k;
  if constexpr (T == DType::F32) return hn::LoadU(df, p);
  else return hn::PromoteTo(df, hn::LoadU(hn::Rebind<S, DF>(), p));
}

template <DType T>
HWY_INLINE float weight(const void* row, int64_t k) {
  if constexpr (T == DType::F32) return static_cast<const float*>(row)[k];
  else if constexpr (T == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(row)[k]);
  else return f16_to_f32(static_cast<const uint16_t*>(row)[k]);
}

inline const void* row_ptr(const WeightMatrix& w, int64_t n) {
  return static_cast<const std::byte*>(w.data) + n * w.ld * int64_t(dtype_size(w.dtype));
}

// y[m, n .. n+R) for the M x rows starting at x (row stride K), written with stride ldy.
template <DType T, int M, int R>
HWY_INLINE void rows_tile(const float* HWY_RESTRICT x, const WeightMatrix& w, int64_t n, const float* bias,
                          float* HWY_RESTRICT y, int64_t ldy) {
  const DF df;
  const int64_t K = w.K, L = int64_t(hn::Lanes(df));
  // Every loop over M and R is unrolled in full: otherwise GCC keeps acc in memory (a factor ~3).
  const void* rows[R];
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) rows[r] = row_ptr(w, n + r);
  VF acc[M][R];
  HWY_UNROLL(8)
  for (int m = 0; m < M; ++m)
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[m][r] = hn::Zero(df);
  int64_t k = 0;
  for (; k + L <= K; k += L) {
    VF xv[M];
    HWY_UNROLL(8)
    for (int m = 0; m < M; ++m) xv[m] = hn::LoadU(df, x + m * K + k);
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) {
      const VF wv = load_weights<T>(df, rows[r], k);
      HWY_UNROLL(8)
      for (int m = 0; m < M; ++m) acc[m][r] = hn::MulAdd(wv, xv[m], acc[m][r]);
    }
  }
  HWY_UNROLL(8)
  for (int m = 0; m < M; ++m)
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) {
      float s = hn::GetLane(hn::SumOfLanes(df, acc[m][r]));
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * weight<T>(rows[r], kk);
      y[m * ldy + n + r] = s + (bias ? bias[n + r] : 0.0f);
    }
}

constexpr int kMaxRows = 4;  // x rows per pass: M × R accumulators + M x vectors fit 16 registers

// All M rows (M <= kMaxRows) for weight rows [n0, n1).
template <DType T, int M>
HWY_INLINE void rows_range(const float* x, const WeightMatrix& w, int64_t n0, int64_t n1, const float* bias,
                           float* y) {
  constexpr int R = M <= 2 ? 4 : 2;
  int64_t n = n0;
  for (; n + R <= n1; n += R) rows_tile<T, M, R>(x, w, n, bias, y, w.N);
  for (; n < n1; ++n) rows_tile<T, M, 1>(x, w, n, bias, y, w.N);
}

template <DType T>
void rows_range_any(const float* x, int64_t M, const WeightMatrix& w, int64_t n0, int64_t n1, const float* bias,
                    float* y) {
  for (int64_t m = 0; m < M; m += kMaxRows) {
    const float* xm = x + m * w.K;
    float* ym = y + m * w.N;
    switch (std::min<int64_t>(kMaxRows, M - m)) {
      case 1: rows_range<T, 1>(xm, w, n0, n1, bias, ym); break;
      case 2: rows_range<T, 2>(xm, w, n0, n1, bias, ym); break;
      case 3: rows_range<T, 3>(xm, w, n0, n1, bias, ym); break;
      default: rows_range<T, 4>(xm, w, n0, n1, bias, ym); break;
    }
  }
}

template <DType T>
void gemv_rows_t(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                 int64_t n1) {
  // Blocks of 16 weight rows: every row group of x reuses them from L1/L2 when M > kMaxRows.
  constexpr int64_t kBlock = 16;
  for (int64_t n = n0; n < n1; n += kBlock) rows_range_any<T>(x, M, w, n, std::min(n1, n + kBlock), bias, y);
}

}  // namespace

void gemv_rows(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
               int64_t n1) {
  switch (w.dtype) {
    case DType::BF16: return gemv_rows_t<DType::BF16>(x, M, w, bias, y, n0, n1);
    case DType::F16: return gemv_rows_t<DType::F16>(x, M, w, bias, y, n0, n1);
    default: return gemv_rows_t<DType::F32>(x, M, w, bias, y, n0, n1);
  }
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

void gemv_rows(SimdLevel level, const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y,
               int64_t n0, int64_t n1) {
  switch (level) {
#if HWY_TARGETS & HWY_AVX2
    case SimdLevel::Avx2: return N_AVX2::gemv_rows(x, M, w, bias, y, n0, n1);
#endif
#if HWY_TARGETS & HWY_AVX3
    case SimdLevel::Avx512: return N_AVX3::gemv_rows(x, M, w, bias, y, n0, n1);
#endif
#if HWY_TARGETS & HWY_NEON
    case SimdLevel::Neon: return N_NEON::gemv_rows(x, M, w, bias, y, n0, n1);
#endif
    default: fail("matmul: no Highway GEMV compiled for the {} path", simd_level_name(level));
  }
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
