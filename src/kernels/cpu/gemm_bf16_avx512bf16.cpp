// The prefill GEMM of bf16-rounded x with BF16 or block-quantized weights on AVX-512 BF16 (compiled with
// -mavx512f -mavx512bw -mavx512vl -mavx512bf16; run only where the CPU has them); gemm_bf16.h has what it
// computes. The blocking of gemm_hwy.cpp's float32 GEMM, in pairs of k: x packed once per product into tiles
// [K/2][MR] of bf16 pairs, each task's weights into panels [KC/2][NR] of bf16 pairs (16 × 16 transposes of
// 32-bit pairs, no widening; quantized rows first dequantized and rounded to bf16 a block of K at a time),
// then an MR × NR tile of y in 2·MR registers: per pair of k, one broadcast of x's pair and two panel loads
// per row of the tile, two vdpbf16ps.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "core/quant_formats.h"
#include "kernels/cpu/gemm_bf16.h"
#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/half_at.h"
#include "kernels/cpu/quant/rows16.h"
#include "linfer/core/aligned.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

// GCC 12's AVX-512 intrinsics pass undefined merge operands and then report them as "may be used
// uninitialized" once inlined (as in quant/qmatmul_q8_avx512vnni.cpp): don't-care values.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace linfer::kernels {
namespace {

constexpr int kMR = 12;  // rows of y per tile: 24 accumulators, 2 panel vectors and a broadcast in 32 registers
constexpr int64_t kNR = 32, kKCP = 128, kNC = 128;  // columns per panel, pairs of k per block, columns per task

// The n floats at p (n <= 32 read; the rest 0) as 16 pairs of bf16, nearest even.
inline __m512i bf16_pairs(const float* p, int64_t n) {
  const __mmask16 lo = n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
  const __mmask16 hi = n >= 32 ? __mmask16(0xFFFF) : n <= 16 ? __mmask16(0) : __mmask16((1u << (n - 16)) - 1);
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(hi, p + 16), _mm512_maskz_loadu_ps(lo, p));
}

// x [M, K] as tiles of kMR rows of bf16 pairs, [ceil(M / kMR)][ceil(K / 2)][kMR] (pack_row_tiles): row i of
// tile t, pair kp (x[2kp], x[2kp + 1]; 0 past K) at a[(t·Kp + kp)·kMR + i].
void pack_rows(const float* x, int64_t M, int64_t K, uint32_t* a) {
  const int64_t Kp = (K + 1) / 2;
  pack_row_tiles(x, M, K, Kp, kMR, a, [&](const float* xi, uint32_t* dst) {
    alignas(64) uint32_t pairs[16];
    for (int64_t k = 0; k < K; k += 32) {
      _mm512_store_si512(pairs, bf16_pairs(xi + k, K - k));
      for (int64_t j = 0; j < std::min<int64_t>(16, Kp - k / 2); ++j) dst[(k / 2 + j) * kMR] = pairs[j];
    }
  });
}

// r[i] lane j -> r[j] lane i, for 16 × 16 32-bit values: four rounds of taking the even and the odd lanes of
// row pairs, each a rotation by one of the bits of (row, lane).
inline void transpose16(__m512i (&r)[16]) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  __m512i t[16];
#pragma GCC unroll 4
  for (int s = 0; s < 4; ++s) {
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) {
      t[i] = _mm512_permutex2var_epi32(r[2 * i], even, r[2 * i + 1]);
      t[i + 8] = _mm512_permutex2var_epi32(r[2 * i], odd, r[2 * i + 1]);
    }
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = t[i];
  }
}

// panel[p][kp][j] = the pair (W[n, 2(k0 + kp)], W[n, 2(k0 + kp) + 1]) of row n = n0 + NR·p + j; 0 past n0 + nc
// and past K. Whole groups of 16 rows × 16 pairs through the transpose; edges pair by pair.
void pack_panels(const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0, int64_t kcp, uint32_t* panel) {
  const auto* base = static_cast<const uint16_t*>(w.data);
  const int64_t K = w.K;
  auto pair_at = [&](int64_t n, int64_t kp) {
    const uint16_t* row = base + n * w.ld;
    return uint32_t(row[2 * kp]) | (2 * kp + 1 < K ? uint32_t(row[2 * kp + 1]) << 16 : 0u);
  };
  for (int64_t p = 0; p < (nc + kNR - 1) / kNR; ++p) {
    uint32_t* dst = panel + p * kcp * kNR;
    for (int64_t j0 = 0; j0 < kNR; j0 += 16) {
      const int64_t first = n0 + p * kNR + j0, valid = std::clamp<int64_t>(n0 + nc - first, 0, 16);
      int64_t kp = 0;
      if (valid == 16) {
        for (; kp + 16 <= kcp && 2 * (k0 + kp + 16) <= K; kp += 16) {
          __m512i r[16];
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i) r[i] = _mm512_loadu_si512(base + (first + i) * w.ld + 2 * (k0 + kp));
          transpose16(r);
#pragma GCC unroll 16
          for (int i = 0; i < 16; ++i) _mm512_storeu_si512(dst + (kp + i) * kNR + j0, r[i]);
        }
      }
      for (; kp < kcp; ++kp)
        for (int64_t j = 0; j < 16; ++j) dst[kp * kNR + j0 + j] = j < valid ? pair_at(first + j, k0 + kp) : 0u;
    }
  }
}

// 16 unsigned bytes as float lanes.
inline __m512 u8x16(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
inline __m128i load16(const uint8_t* p) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)); }
// Two runs of 16 floats as 32 bf16 at dst (nearest even).
inline void put_bf16(uint16_t* dst, __m512 lo, __m512 hi) {
  _mm512_storeu_si512(dst, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
}

// n values of a quantized row from its block at src, dequantized as core's dequantize_row does (the same
// float32 products and sums, vectorized: Q8_0, Q4_0, Q5_0, Q4_K, Q5_K, Q6_K; Q4_1 and Q5_1 through core's
// own code) and rounded to bf16 at dst.
void dequantize_bf16(DType t, const uint8_t* src, int64_t n, uint16_t* dst) {
  switch (t) {
    case DType::Q8_0:
      for (int64_t i = 0; i < n; i += 32, src += 34) {
        const __m512 d = _mm512_set1_ps(half_at(src));
        const __m128i* q = reinterpret_cast<const __m128i*>(src + 2);
        put_bf16(dst + i, _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q)))),
                 _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(q + 1)))));
      }
      return;
    case DType::Q4_0:  // element l the low nibble of byte l, l + 16 its high one; d · q - 8 d
    case DType::Q5_0: {  // Q5_0: the fifth bit of element l bit l of the 32-bit qh before the nibbles; d · q - 16 d
      const bool five = t == DType::Q5_0;
      const int64_t bytes = five ? 22 : 18;
      const float zero = five ? -16.0f : -8.0f;
      for (int64_t i = 0; i < n; i += 32, src += bytes) {
        const float df = half_at(src);
        uint32_t qh = 0;
        if (five) std::memcpy(&qh, src + 2, 4);
        const __m512 d = _mm512_set1_ps(df), m = _mm512_set1_ps(zero * df);
        const __m128i v = load16(src + (five ? 6 : 2)), low = _mm_set1_epi8(15), fifth = _mm_set1_epi8(16);
        const __m128i qa = _mm_or_si128(_mm_and_si128(v, low), _mm_maskz_mov_epi8(__mmask16(qh), fifth));
        const __m128i qb =
            _mm_or_si128(_mm_and_si128(_mm_srli_epi16(v, 4), low), _mm_maskz_mov_epi8(__mmask16(qh >> 16), fifth));
        put_bf16(dst + i, _mm512_add_ps(_mm512_mul_ps(d, u8x16(qa)), m),
                 _mm512_add_ps(_mm512_mul_ps(d, u8x16(qb)), m));
      }
      return;
    }
    case DType::Q4_K:  // group g of 32 bytes: sub-block 2g in the low nibbles, 2g + 1 in the high ones
    case DType::Q5_K: {  // Q5_K: qh[32] before the nibbles, bit 2g + h of qh[l] the fifth of element 64g + 32h + l
      const bool five = t == DType::Q5_K;
      const int64_t bytes = five ? 176 : 144;
      for (int64_t i = 0; i < n; i += 256, src += bytes) {
        const float d = half_at(src), dmin = half_at(src + 2);
        uint8_t sc[8], mn[8];
        linfer::quant::q4k_scales_mins(src + 4, sc, mn);
        const __m128i low = _mm_set1_epi8(15), one = _mm_set1_epi8(1);
        const __m128i none = _mm_setzero_si128();
        const __m128i qh[2] = {five ? load16(src + 16) : none, five ? load16(src + 32) : none};
        for (int g = 0; g < 4; ++g) {
          const uint8_t* qs = src + (five ? 48 : 16) + 32 * g;
          for (int h = 0; h < 2; ++h) {  // sub-block 2g + h
            const __m512 dj = _mm512_set1_ps(d * float(sc[2 * g + h]));
            const __m512 oj = _mm512_set1_ps(dmin * float(mn[2 * g + h]));
            const __m128i bit = _mm_cvtsi32_si128(2 * g + h);
            __m128i q[2];
            for (int c = 0; c < 2; ++c) {  // l in [16c, 16c + 16)
              const __m128i a = load16(qs + 16 * c);
              q[c] = _mm_or_si128(h ? _mm_and_si128(_mm_srli_epi16(a, 4), low) : _mm_and_si128(a, low),
                                  _mm_slli_epi16(_mm_and_si128(_mm_srl_epi16(qh[c], bit), one), 4));
            }
            put_bf16(dst + i + 64 * g + 32 * h, _mm512_sub_ps(_mm512_mul_ps(dj, u8x16(q[0])), oj),
                     _mm512_sub_ps(_mm512_mul_ps(dj, u8x16(q[1])), oj));
          }
        }
      }
      return;
    }
    case DType::Q6_K:  // per half of 128: run j of 32 from ql's nibbles and qh's bit pair j; 16-value sub-blocks
      for (int64_t i = 0; i < n; i += 256, src += 210) {
        const float d = half_at(src + 208);
        const __m128i low = _mm_set1_epi8(15), three = _mm_set1_epi8(3);
        for (int h = 0; h < 2; ++h) {
          const uint8_t* ql = src + 64 * h;
          const uint8_t* qh = src + 128 + 32 * h;
          const auto* sc = reinterpret_cast<const int8_t*>(src + 192 + 8 * h);
          for (int j = 0; j < 4; ++j) {
            __m512 f[2];
            for (int half16 = 0; half16 < 2; ++half16) {  // l in [16 half16, 16 half16 + 16): sub-block 2j + half16
              const int l0 = 16 * half16;
              const __m128i q4 = load16(ql + l0 + (j % 2 ? 32 : 0)), bits = load16(qh + l0);
              const __m128i nib = j < 2 ? _mm_and_si128(q4, low) : _mm_and_si128(_mm_srli_epi16(q4, 4), low);
              const __m128i hb = _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(bits, 2 * j), three), 4);
              const __m512i q = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_or_si128(nib, hb)), _mm512_set1_epi32(32));
              f[half16] = _mm512_mul_ps(_mm512_set1_ps(d * float(sc[half16 + 2 * j])), _mm512_cvtepi32_ps(q));
            }
            put_bf16(dst + i + 128 * h + 32 * j, f[0], f[1]);
          }
        }
      }
      return;
    default: {
      alignas(64) float f32[2 * kKCP];
      for (int64_t i = 0; i < n; i += 2 * kKCP) {
        const int64_t c = std::min(n - i, 2 * kKCP);
        linfer::quant::dequantize_row(t, src + dtype_nbytes(t, i), f32, c);
        for (int64_t k = 0; k < c; k += 32) _mm512_storeu_si512(dst + i + k, bf16_pairs(f32 + k, c - k));
      }
    }
  }
}

// Rows [n0, n0 + nc) of quantized w, values [2·k0, 2·k0 + 2·kcp) (whole blocks: k0 is a multiple of kKCP and
// K of the block), dequantized and rounded to bf16 into rows of kKCP pairs: a BF16 view for pack_panels.
WeightMatrix stage_quantized(const WeightMatrix& w, int64_t n0, int64_t nc, int64_t k0, int64_t kcp, uint16_t* rows) {
  const int64_t k_first = 2 * k0, n_k = std::min(2 * kcp, w.K - k_first);
  // an interleaved row's blocks as stored: at most Q8_0's 34 bytes per 32 values (Q6_K 26.25, Q4_0 / Q4_K 18)
  alignas(64) uint8_t tmp[dtype_block_bytes(DType::Q8_0) * 2 * kKCP / 32];
  LINFER_CHECK(quant::quant_row_bytes(w.dtype, n_k) <= sizeof tmp, "bf16 GEMM: no room to stage a {} row",
               dtype_name(w.dtype));
  for (int64_t r = 0; r < nc; ++r) {
    const quant::QuantRow row = quant::quant_row(w, n0 + r, k_first, n_k, tmp);
    dequantize_bf16(row.t, row.p, n_k, rows + r * 2 * kKCP);
  }
  return WeightMatrix{rows, DType::BF16, nc, n_k, 2 * kKCP};
}

// c[MR, ncols] += a · panel (first ncols of its NR columns) over kcp pairs of k; a is a tile of pack_rows.
template <int MR>
__attribute__((noinline)) void micro_kernel(const uint32_t* a, const uint32_t* b, int64_t kcp, float* c,
                                            int64_t ldc, int64_t ncols) {
  __m512 acc0[MR], acc1[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) acc0[i] = acc1[i] = _mm512_setzero_ps();
  for (int64_t kp = 0; kp < kcp; ++kp) {
    const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + kp * kNR);
    const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + kp * kNR + 16);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const __m512bh av = (__m512bh)_mm512_set1_epi32(int(a[kp * kMR + i]));
      acc0[i] = _mm512_dpbf16_ps(acc0[i], av, b0);
      acc1[i] = _mm512_dpbf16_ps(acc1[i], av, b1);
    }
  }
  if (ncols == kNR) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      _mm512_storeu_ps(ci, _mm512_add_ps(_mm512_loadu_ps(ci), acc0[i]));
      _mm512_storeu_ps(ci + 16, _mm512_add_ps(_mm512_loadu_ps(ci + 16), acc1[i]));
    }
  } else {  // the last columns of y: only the valid ones added
    const __mmask16 m0 = ncols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << ncols) - 1);
    const __mmask16 m1 = ncols <= 16 ? __mmask16(0) : __mmask16((1u << (ncols - 16)) - 1);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      float* ci = c + i * ldc;
      _mm512_mask_storeu_ps(ci, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, ci), acc0[i]));
      _mm512_mask_storeu_ps(ci + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, ci + 16), acc1[i]));
    }
  }
}

// y[m0:m1, n0:n0+nc] for one task (m0 a multiple of kMR): its own panels, all of K; a = pack_rows(x).
void gemm_block(const uint32_t* a, int64_t m0, int64_t m1, const WeightMatrix& w, int64_t n0, int64_t nc,
                const float* bias, float* y) {
  thread_local AlignedVector<uint32_t> panel;  // [nc / NR][kcp][NR]
  thread_local AlignedVector<uint16_t> staged;  // quantized weights only: [nc][2·kKCP] bf16
  panel.resize(size_t(kNC * kKCP));
  const bool quantized = is_quantized(w.dtype);
  if (quantized) staged.resize(size_t(kNC * 2 * kKCP));
  const int64_t N = w.N, Kp = (w.K + 1) / 2;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t n = n0; n < n0 + nc; ++n) y[m * N + n] = bias ? bias[n] : 0.0f;
  for (int64_t k0 = 0; k0 < Kp; k0 += kKCP) {
    const int64_t kcp = std::min(kKCP, Kp - k0);
    if (quantized) pack_panels(stage_quantized(w, n0, nc, k0, kcp, staged.data()), 0, nc, 0, kcp, panel.data());
    else pack_panels(w, n0, nc, k0, kcp, panel.data());
    for (int64_t m = m0; m < m1; m += kMR) {
      const uint32_t* a_tile = a + (m / kMR * Kp + k0) * kMR;
      for (int64_t p = 0; p * kNR < nc; ++p)
        with_tile_rows<kMR>(std::min<int64_t>(kMR, m1 - m), [&]<int R>() {
          micro_kernel<R>(a_tile, panel.data() + p * kcp * kNR, kcp, y + m * N + n0 + p * kNR, N,
                          std::min(kNR, nc - p * kNR));
        });
    }
  }
}

}  // namespace

void gemm_bf16_avx512bf16(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  thread_local AlignedVector<uint32_t> a_buf;  // the caller's, read by every task
  const int64_t N = w.N, K = w.K, Kp = (K + 1) / 2;
  a_buf.resize(size_t(std::min(M, kGemmRowsPerPass) + kMR - 1) / kMR * kMR * size_t(Kp));
  uint32_t* const a = a_buf.data();
  gemm_passes(
      M, N, kMR, kNC, [&](int64_t r0, int64_t rows) { pack_rows(x + r0 * K, rows, K, a); },
      [&](int64_t r0, int64_t m0, int64_t m1, int64_t n0, int64_t nc) {
        gemm_block(a, m0, m1, w, n0, nc, bias, y + r0 * N);
      });
}

// The GEMV's x (gemm_bf16.h), by the GEMM's own rounding: blocks of 32, the last one zero past K.
void round_rows_bf16(const float* x, int64_t M, int64_t K, uint16_t* xb) {
  const int64_t ldx = bf16_x_ld(K);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < K; k += 32) _mm512_storeu_si512(xb + m * ldx + k, bf16_pairs(x + m * K + k, K - k));
}

}  // namespace linfer::kernels
