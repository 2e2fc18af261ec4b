// The decode GEMV of bf16-rounded x with BF16 weights on AVX-512 BF16 (compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512bf16; run only where the CPU has them); gemm_bf16.h has what it computes. One weight row at
// a time, streamed in address order with the lines g_prefetch_ahead bytes on asked for (as the float32 GEMV does
// for short rows), each 32 values of k loaded once for up to 8 rows of x: per x row one vdpbf16ps, 32 products,
// where the float32 GEMV needs a widening and two FMAs. With 8 rows of x both run out of multiply throughput
// before memory does on an Intel Xeon (Emerald Rapids) core, this one later: K = 1024, 8 rows, 7.5 -> 8.3-8.7 GB/s
// of bf16 weights, against ~14 at one row (docs/benchmarks.md).
#include <immintrin.h>

#include <algorithm>

#include "kernels/cpu/gemm_bf16.h"

// GCC 12's AVX-512 intrinsics pass undefined merge operands and then report them as "may be used
// uninitialized" once inlined (as in gemm_bf16_avx512bf16.cpp): don't-care values.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace linfer::kernels {
namespace {

constexpr int kMaxRows = 8;  // x rows per pass: 16 accumulators, the weight vectors, x from L1 as operands

// y[m, n0:n1) for the M (<= kMaxRows) rows of x at xb (row stride ldx bf16). Two chains per x row: the blocks of
// 32 values of k alternate between them (an odd last whole block goes to the first, the short tail to the
// second), then the chains are added, so that the order of the sums depends on K alone.
template <int M>
void rows_m(const uint16_t* xb, int64_t ldx, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
            int64_t n1) {
  const int64_t K = w.K, whole = K / 32 * 32;
  const __mmask32 tail = K % 32 ? __mmask32((1u << (K % 32)) - 1) : __mmask32(0);
  auto x_at = [&](int m, int64_t k) { return _mm512_loadu_si512(xb + m * ldx + k); };
  for (int64_t n = n0; n < n1; ++n) {
    const uint16_t* row = static_cast<const uint16_t*>(w.data) + n * w.ld;
    __m512 acc[2][M];
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) acc[0][m] = acc[1][m] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 64 <= whole; k += 64) {
      _mm_prefetch(reinterpret_cast<const char*>(row + k) + g_prefetch_ahead, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(row + k) + g_prefetch_ahead + 64, _MM_HINT_T0);
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(row + k), w1 = (__m512bh)_mm512_loadu_si512(row + k + 32);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        acc[0][m] = _mm512_dpbf16_ps(acc[0][m], (__m512bh)x_at(m, k), w0);
        acc[1][m] = _mm512_dpbf16_ps(acc[1][m], (__m512bh)x_at(m, k + 32), w1);
      }
    }
    if (k < whole) {
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(row + k);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) acc[0][m] = _mm512_dpbf16_ps(acc[0][m], (__m512bh)x_at(m, k), w0);
      k += 32;
    }
    if (tail) {  // x is zero past K (round_rows_bf16); the weights past K are not read
      const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(tail, row + k);
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) acc[1][m] = _mm512_dpbf16_ps(acc[1][m], (__m512bh)x_at(m, k), w0);
    }
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m)
      y[m * w.N + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc[0][m], acc[1][m])) + (bias ? bias[n] : 0.0f);
  }
}

}  // namespace

void gemv_bf16_avx512bf16(const uint16_t* xb, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                          int64_t n0, int64_t n1) {
  // Blocks of 16 weight rows: the groups of x rows after the first take them from L1 / L2.
  constexpr int64_t kBlock = 16;
  const int64_t ldx = bf16_x_ld(w.K);
  for (int64_t b0 = n0; b0 < n1; b0 += kBlock) {
    const int64_t b1 = std::min(n1, b0 + kBlock);
    for (int64_t m = 0; m < M; m += kMaxRows) {
      const uint16_t* xm = xb + m * ldx;
      float* ym = y + m * w.N;
      switch (std::min<int64_t>(kMaxRows, M - m)) {
        case 1: rows_m<1>(xm, ldx, w, bias, ym, b0, b1); break;
        case 2: rows_m<2>(xm, ldx, w, bias, ym, b0, b1); break;
        case 3: rows_m<3>(xm, ldx, w, bias, ym, b0, b1); break;
        case 4: rows_m<4>(xm, ldx, w, bias, ym, b0, b1); break;
        case 5: rows_m<5>(xm, ldx, w, bias, ym, b0, b1); break;
        case 6: rows_m<6>(xm, ldx, w, bias, ym, b0, b1); break;
        case 7: rows_m<7>(xm, ldx, w, bias, ym, b0, b1); break;
        default: rows_m<8>(xm, ldx, w, bias, ym, b0, b1); break;
      }
    }
  }
}

}  // namespace linfer::kernels
