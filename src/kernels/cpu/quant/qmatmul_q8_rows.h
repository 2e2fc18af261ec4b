#pragma once
// Internal: what the int8-activation kernels (q8_activations.h) of each instruction set share: the rows of x
// one call works on, small helpers, and the loop over weight rows. Each instruction set's file defines
// `template <int R> struct Kernels` with static q8_0, q32<kFive> (Q4_0; Q5_0), qk<kFive> (Q4_K; Q5_K) and q6_k,
// each (const uint8_t* w, int64_t K, const Rows8<R>& x, float* out): one weight row against R rows of x (block
// layouts in core/quant_formats.h). It calls rows_q8<Kernels>: qmatmul_q8_avx2.cpp on 256-bit vectors
// (vpmaddubsw + vpmaddwd), qmatmul_q8_avx512vnni.cpp on 512-bit ones (vpdpbusd). Everything here has internal
// linkage, so each instruction set gets its own copy.
//
// What every form computes: each weight block is unpacked once into unsigned integer bytes in the order of
// x's elements (Q8_0: |q|, the sign moved onto x; Q5_0 / Q5_K: the nibble with its fifth bit from qh at bit
// 4), multiplied with up to R rows of x (AVX2: 4, AVX-512: 8), and each run of 32 (Q6_K: 16) products is
// scaled by (weight scale) · (x's scale) in float32 (Q4_0: 8 blocks at a time, each block's products summed as
// integers first). Offsets: Q4_0's 8 and Q5_0's 16 as integers per lane (x's -Σ q per lane, once or twice,
// where the product starts; AVX2's Q4_0 in float32 through gs per 8 blocks), Q6_K's 32 and the K-quants' mins
// apart, in float32, through x's sums of 16 (gs16) or 32 (gs). The result is the float32 dot product of the dequantized
// weights with the rounded x (x ≈ d · q), in an order that depends on K only: a row of x gets the same bits
// whatever the other rows of its call.

#include <immintrin.h>

#include <cstdint>

#include "core/quant_formats.h"
#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/half_at.h"
#include "kernels/cpu/matmul_simd.h"
#include "kernels/cpu/quant/q8_activations.h"
#include "linfer/core/dtype.h"

namespace linfer::kernels::quant {
namespace {

inline __m128i bytes16(const void* p) { return _mm_loadu_si128(static_cast<const __m128i*>(p)); }
inline __m256i bytes32(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
// The 8 unsigned bytes at p as float lanes.
inline __m256 u8_floats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// The R rows of x one call works on, each at its first element.
template <int R>
struct Rows8 {
  const int8_t* q[R];
  const float* d[R];
  const int32_t* off_q4_0[R];
  const float* gs16[R];
  const float* gs[R];
};

// y[M, n0:n1) for weight rows [n0, n1): each weight row against up to kMaxRows rows of x at a time (as many as
// the instruction set's registers hold: each row keeps its own accumulators).
template <template <int> class Kernels, int kMaxRows>
void rows_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1) {
  const DType t = w.dtype;
  const int64_t K = w.K, N = w.N;
  for (int64_t n = n0; n < n1; ++n) {
    const auto* wrow = static_cast<const uint8_t*>(w.data) + dtype_nbytes(t, n * w.ld);
    for (int64_t m0 = 0; m0 < M; m0 += kMaxRows) {
      float out[kMaxRows];
      const int64_t R = M - m0 < kMaxRows ? M - m0 : kMaxRows;
      auto run = [&]<int kR>() {
        Rows8<kR> in;
        for (int r = 0; r < kR; ++r) {
          const int64_t m = m0 + r;
          in.q[r] = x.q + m * x.ld, in.off_q4_0[r] = x.off_q4_0 + m * (x.ld / 4);
          in.d[r] = x.d + m * (K / 32), in.gs[r] = x.gs + m * (K / 32), in.gs16[r] = x.gs16 + m * (K / 16);
        }
        using Row = Kernels<kR>;
        switch (t) {
          case DType::Q8_0: return Row::q8_0(wrow, K, in, out);
          case DType::Q4_0: return Row::template q32<false>(wrow, K, in, out);
          case DType::Q5_0: return Row::template q32<true>(wrow, K, in, out);
          case DType::Q4_K: return Row::template qk<false>(wrow, K, in, out);
          case DType::Q5_K: return Row::template qk<true>(wrow, K, in, out);
          default: return Row::q6_k(wrow, K, in, out);  // q8_kernel_for() admits no other type
        }
      };
      with_tile_rows<kMaxRows>(R, run);
      for (int64_t r = 0; r < R; ++r) y[(m0 + r) * N + n] = out[r] + (bias ? bias[n] : 0.0f);
    }
  }
}

}  // namespace
}  // namespace linfer::kernels::quant
