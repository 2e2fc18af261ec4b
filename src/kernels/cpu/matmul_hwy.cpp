// The decode GEMV written once over Google Highway and compiled for every target this file is
// built for (hwy/foreach_target.h re-includes it once per target: AVX2 and AVX-512 on x86-64,
// NEON and SVE on aarch64). matmul.cpp calls the target that matches the SimdLevel (matmul_simd.h).
//
// y[m, n] = x[m, :] · W[n, :] (+ bias[n]) for M rows of x. R weight rows at a time (R = 1 for short
// rows and few x rows: rows_range says why), each loaded once per vector of K and multiplied into every
// x row: W streams from memory once for all M rows (M <= kMaxRows; more rows go in groups, the weight
// rows then come again from cache), and C × M × R independent FMA chains hide the FMA latency. bf16 / f16
// weights are widened to float32 in registers (hwy_weights-inl.h). Single-threaded over a range of weight
// rows: matmul.cpp splits the rows of one or several products over the pool.

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <hwy/cache_control.h>

#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_weights-inl.h"
#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/error.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

using hwy_weights::row_ptr;

// acc[m][r] += W[row r, k .. k+L) · x[m, k .. k+L) for every x row m and weight row r.
template <DType T, int M, int R>
HWY_INLINE void fma_step(DF df, const float* HWY_RESTRICT x, int64_t K, const void* const (&rows)[R], int64_t k,
                         VF (&acc)[M][R]) {
  VF xv[M];
  HWY_UNROLL(8)
  for (int m = 0; m < M; ++m) xv[m] = hn::LoadU(df, x + m * K + k);
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) {
    const VF wv = hwy_weights::load<T>(df, rows[r], k);
    HWY_UNROLL(8)
    for (int m = 0; m < M; ++m) acc[m][r] = hn::MulAdd(wv, xv[m], acc[m][r]);
  }
}

// y[m, n .. n+R) for the M x rows starting at x (row stride K), written with stride ldy. C FMA chains per
// (x row, weight row): chain c takes the vectors c, c + C, c + 2C, ... of K (whole vectors left over go to
// the first chain), then the chains are added. The order of the sums depends on K and C only, never on M or
// R: a row's result does not depend on the batch it is computed in.
template <DType T, int M, int R, int C>
HWY_INLINE void rows_tile(const float* HWY_RESTRICT x, const WeightMatrix& w, int64_t n, const float* bias,
                          float* HWY_RESTRICT y, int64_t ldy) {
  const DF df;
  const int64_t K = w.K, L = int64_t(hn::Lanes(df));
  // Every loop over C, M and R is unrolled in full: otherwise GCC keeps acc in memory (a factor ~3).
  const void* rows[R];
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) rows[r] = row_ptr(w, n + r);
  VF acc[C][M][R];
  HWY_UNROLL(8)
  for (int c = 0; c < C; ++c)
    HWY_UNROLL(8)
    for (int m = 0; m < M; ++m)
      HWY_UNROLL(8)
      for (int r = 0; r < R; ++r) acc[c][m][r] = hn::Zero(df);
  int64_t k = 0;
  constexpr int64_t kBytes = T == DType::F32 ? 4 : 2;
  for (; k + C * L <= K; k += C * L) {
    if constexpr (R == 1)  // the lines of W this step reads, g_prefetch_ahead (matmul_simd.h) bytes further on
      for (int64_t b = 0; b < C * L * kBytes; b += 64)
        hwy::Prefetch(static_cast<const char*>(rows[0]) + k * kBytes + g_prefetch_ahead + b);
    HWY_UNROLL(8)
    for (int c = 0; c < C; ++c) fma_step<T, M, R>(df, x, K, rows, k + c * L, acc[c]);
  }
  for (; k + L <= K; k += L) fma_step<T, M, R>(df, x, K, rows, k, acc[0]);
  HWY_UNROLL(8)
  for (int m = 0; m < M; ++m)
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) {
      VF sum = acc[0][m][r];
      HWY_UNROLL(8)
      for (int c = 1; c < C; ++c) sum = hn::Add(sum, acc[c][m][r]);
      float s = hn::GetLane(hn::SumOfLanes(df, sum));
      for (int64_t kk = k; kk < K; ++kk) s += x[m * K + kk] * hwy_weights::one<T>(rows[r], kk);
      y[m * ldy + n + r] = s + (bias ? bias[n + r] : 0.0f);
    }
}

constexpr int kMaxRows = 4;  // x rows per pass

// Weight rows side by side for M x rows and C chains: C × M × R accumulators beside the x and weight
// vectors, within 16 vector registers on AVX2 and 32 on AVX-512 and NEON.
template <int M, int C>
constexpr int kSideBySide = std::max(1, std::min(4, (HWY_TARGET == HWY_AVX2 ? 8 : 16) / (C * M)));

template <DType T, int M, int R, int C>
HWY_INLINE void rows_by(const float* x, const WeightMatrix& w, int64_t n0, int64_t n1, const float* bias, float* y) {
  int64_t n = n0;
  for (; n + R <= n1; n += R) rows_tile<T, M, R, C>(x, w, n, bias, y, w.N);
  for (; n < n1; ++n) rows_tile<T, M, 1, C>(x, w, n, bias, y, w.N);
}

// All M rows (M <= kMaxRows) for weight rows [n0, n1).
// Short rows (K <= 2048): two chains, so that a single x row keeps two FMAs in flight, and, while the x rows
// take at most half of a 32 KiB L1, one weight row at a time: W then streams strictly in address order,
// which the hardware prefetchers follow; R short rows side by side are R interleaved streams, which they
// follow far worse (a Zen 4 core, one x row, K = 768: 8-10 against 20-24 GB/s). Longer x rows are reused
// from registers by R weight rows side by side, since their reloads from L2 would cost more.
// Long rows: one chain per (x row, weight row), R of them side by side (a stream per weight row of >= 4 KiB
// of bf16 keeps the prefetchers trained; K = 4096 and 8192 read as fast as one row at a time, batches faster).
template <DType T, int M>
HWY_INLINE void rows_range(const float* x, const WeightMatrix& w, int64_t n0, int64_t n1, const float* bias,
                           float* y) {
  if (w.K > 2048) rows_by<T, M, (M <= 2 ? 4 : 2), 1>(x, w, n0, n1, bias, y);
  else if (M * w.K * int64_t(sizeof(float)) <= 16 * 1024) rows_by<T, M, 1, 2>(x, w, n0, n1, bias, y);
  else rows_by<T, M, kSideBySide<M, 2>, 2>(x, w, n0, n1, bias, y);
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
  LINFER_HWY_DISPATCH(level, "matmul GEMV", gemv_rows(x, M, w, bias, y, n0, n1));
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
