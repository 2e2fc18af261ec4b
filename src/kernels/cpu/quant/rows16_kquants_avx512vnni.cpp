// The interleaved kernels (rows16.h, rows16_avx512vnni.h) for the K-quants, blocks of 256: Q4_Kx16 (eight
// sub-blocks of 32 with 6-bit scales and mins) and Q6_Kx16 (sixteen sub-blocks of 16 with int8 scales, values
// q + 32 in 6 bits).
//   int8 x: Q4_K: each run's integer sum · d sc_j d_x, minus dmin m_j · (x's sum of the run); Q6_K: each
//           sub-block's sum · d sc d_x, minus 32 d sc · (x's sum of the 16).
//   float x: Q4_K: d sc_j · Σ n x - dmin m_j · Σ x; Q6_K: the values less 32 as signed bytes, d sc · Σ q x.
#include "kernels/cpu/quant/rows16_avx512vnni.h"

namespace linfer::kernels::quant::rows16_simd {
namespace {

// ---- Q4_Kx16: blocks of 256, eight sub-blocks (runs) of 32 ----

struct Q4_K {
  static constexpr int64_t kBlock = 256;
  static constexpr int64_t kBytes = 2368;

  // The 16 rows' d · sc_s and dmin · m_s of sub-block s of the block at blk.
  static __m512 scale(const uint8_t* blk, __m512 d, int s) { return _mm512_mul_ps(d, bytes16(blk + 2048 + 16 * s)); }
  static __m512 min(const uint8_t* blk, __m512 dmin, int s) {
    return _mm512_mul_ps(dmin, bytes16(blk + 2176 + 16 * s));
  }

  // pack_q8's value per run: d · Σq of the run (what the mins multiply)
  static constexpr int kExtras = 1;
  static float extra(const Q8Acts& x, int64_t m, int64_t run, int64_t K) { return x.gs[m * (K / 32) + run]; }
  template <int R>
  static void group_q8(const uint8_t* w, int64_t nb, const uint8_t* xp, __m512 (&acc)[R]) {
    const __m512i low = _mm512_set1_epi8(15);
    for (int64_t b = 0; b < nb; ++b, xp += q8_block_bytes<Q4_K>() * R) {
      const uint8_t* blk = w + kBytes * b;
      const __m512 d = half16(blk + 2304), dmin = half16(blk + 2336);
      const auto* dx = reinterpret_cast<const float*>(xp + q8_d_at<Q4_K>(R));
      const auto* gs = reinterpret_cast<const float*>(xp + q8_extras_at<Q4_K>(R));
      for (int g = 0; g < 4; ++g) {  // sub-blocks 2g (low nibbles) and 2g + 1 (high) of vectors 8g .. 8g + 7
        prefetch_ahead(blk + 512 * g, 512);
        __m512i lo[R], hi[R];
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_si512();
#pragma GCC unroll 8
        for (int c = 0; c < 8; ++c) {
          const __m512i v = _mm512_loadu_si512(blk + 64 * (8 * g + c));
          const __m512i nl = _mm512_and_si512(v, low), nh = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            lo[r] = dpbusd_bcast(lo[r], nl, xp + 256 * r + 64 * g + 4 * c);
            hi[r] = dpbusd_bcast(hi[r], nh, xp + 256 * r + 64 * g + 32 + 4 * c);
          }
        }
        const __m512 sl = scale(blk, d, 2 * g), sh = scale(blk, d, 2 * g + 1);
        const __m512 ml = min(blk, dmin, 2 * g), mh = min(blk, dmin, 2 * g + 1);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const float* dr = dx + 8 * r + 2 * g;
          const float* gr = gs + 8 * r + 2 * g;
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[r]), _mm512_mul_ps(sl, _mm512_set1_ps(dr[0])), acc[r]);
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[r]), _mm512_mul_ps(sh, _mm512_set1_ps(dr[1])), acc[r]);
          acc[r] = _mm512_fnmadd_ps(ml, _mm512_set1_ps(gr[0]), acc[r]);
          acc[r] = _mm512_fnmadd_ps(mh, _mm512_set1_ps(gr[1]), acc[r]);
        }
      }
    }
  }

  template <int R>
  static void group_f32(const uint8_t* w, int64_t nb, const float* xp, __m512 (&acc)[R]) {
    for (int64_t b = 0; b < nb; ++b, xp += f32_block_floats(kBlock) * R) {
      const uint8_t* blk = w + kBytes * b;
      const __m512 d = half16(blk + 2304), dmin = half16(blk + 2336);
      const float* xsum = xp + f32_sums_at(kBlock, R);
      for (int g = 0; g < 4; ++g) {
        prefetch_ahead(blk + 512 * g, 512);
        __m512 lo[R], hi[R];  // Σ n x of sub-blocks 2g and 2g + 1
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) lo[r] = hi[r] = _mm512_setzero_ps();
        for (int c = 0; c < 8; ++c) {
          const __m512i v = _mm512_loadu_si512(blk + 64 * (8 * g + c));
          // byte j of vector 8g + c: elements 64g + 4c + j (low nibble) and 64g + 32 + 4c + j (high)
          const float* xl = xp + (64 * g + 4 * c) * R;
          const float* xh = xl + 32 * R;
          auto step = [&]<int j>() {
            const __m512 nl = field<4, j, false>(v), nh = field<4, j, true>(v);
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) {
              lo[r] = _mm512_fmadd_ps(nl, _mm512_set1_ps(xl[j * R + r]), lo[r]);
              hi[r] = _mm512_fmadd_ps(nh, _mm512_set1_ps(xh[j * R + r]), hi[r]);
            }
          };
          step.template operator()<0>(), step.template operator()<1>(), step.template operator()<2>(),
              step.template operator()<3>();
        }
        const __m512 sl = scale(blk, d, 2 * g), sh = scale(blk, d, 2 * g + 1);
        const __m512 ml = min(blk, dmin, 2 * g), mh = min(blk, dmin, 2 * g + 1);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          acc[r] = _mm512_fmadd_ps(sl, lo[r], acc[r]);
          acc[r] = _mm512_fmadd_ps(sh, hi[r], acc[r]);
          acc[r] = _mm512_fnmadd_ps(ml, _mm512_set1_ps(xsum[8 * r + 2 * g]), acc[r]);
          acc[r] = _mm512_fnmadd_ps(mh, _mm512_set1_ps(xsum[8 * r + 2 * g + 1]), acc[r]);
        }
      }
    }
  }
};

// ---- Q6_Kx16: blocks of 256, sixteen sub-blocks of 16 with int8 scales, values q + 32 in 6 bits ----

struct Q6_K {
  static constexpr int64_t kBlock = 256;
  static constexpr int64_t kValues = 3072;  // bytes of a block's 16 rows' ql and qh; all scales follow

  // pack_q8's values per run: d · Σq of each of its two sub-blocks of 16 (what the offset 32 multiplies)
  static constexpr int kExtras = 2;
  static float extra(const Q8Acts& x, int64_t m, int64_t half, int64_t K) { return x.gs16[m * (K / 16) + half]; }

  // The 16 rows' d · sc of sub-block s, the block's scales at sc.
  static __m512 scale(const uint8_t* sc, __m512 d, int s) {
    return _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(
                                reinterpret_cast<const __m128i*>(sc + 16 * s)))));
  }
  // Vector c (< 8) of the 16 rows' stored 6-bit values q + 32 of run k (< 4) in half h of the block at v: bytes
  // 4i .. 4i + 3 of row i, elements 128 h + 32 k + 4 c + j (Q6_K's ql byte of run k's half and its qh bits 2k).
  static __m512i run_vector(const uint8_t* v, int h, int k, int c) {
    const __m512i ql = _mm512_loadu_si512(v + 64 * (16 * h + 8 * (k % 2) + c));
    const __m512i qh = _mm512_loadu_si512(v + 64 * (32 + 8 * h + c));
    const __m512i lo = k < 2 ? ql : _mm512_srli_epi16(ql, 4);
    const __m512i hi = k == 0 ? _mm512_slli_epi16(qh, 4)
                       : k == 1 ? _mm512_slli_epi16(qh, 2)
                       : k == 2 ? qh
                                : _mm512_srli_epi16(qh, 2);
    return _mm512_or_si512(_mm512_and_si512(lo, _mm512_set1_epi8(0x0F)), _mm512_and_si512(hi, _mm512_set1_epi8(0x30)));
  }

  template <int R>
  static void group_q8(const uint8_t* w, int64_t nb, const uint8_t* xp, __m512 (&acc)[R]) {
    for (int64_t b = 0; b < nb; ++b, xp += q8_block_bytes<Q6_K>() * R) {
      const uint8_t* v = w + kValues * b;
      const uint8_t* sc = w + kValues * nb + 288 * b;
      prefetch_ahead(sc, 288);
      const __m512 d = half16(sc + 256);
      const auto* dx = reinterpret_cast<const float*>(xp + q8_d_at<Q6_K>(R));
      const auto* gs = reinterpret_cast<const float*>(xp + q8_extras_at<Q6_K>(R));
      for (int h = 0; h < 2; ++h) {
        prefetch_ahead(v + 1536 * h, 1536);
        for (int k = 0; k < 4; ++k) {  // run 4h + k: sub-blocks 8h + 2k (elements 0-15) and 8h + 2k + 1
          __m512i lo[R], hi[R];
          auto sum = [&](__m512i(&s)[R], int c0) {  // vectors c0 .. c0 + 3: one sub-block
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_si512();
#pragma GCC unroll 4
            for (int c = c0; c < c0 + 4; ++c) {
              const __m512i q = run_vector(v, h, k, c);
#pragma GCC unroll 8
              for (int r = 0; r < R; ++r) s[r] = dpbusd_bcast(s[r], q, xp + 256 * r + 128 * h + 32 * k + 4 * c);
            }
          };
          sum(lo, 0), sum(hi, 4);
          const int run = 4 * h + k;
          const __m512 sl = scale(sc, d, 8 * h + 2 * k), sh = scale(sc, d, 8 * h + 2 * k + 1);
          const __m512 ol = _mm512_mul_ps(sl, _mm512_set1_ps(32.0f)), oh = _mm512_mul_ps(sh, _mm512_set1_ps(32.0f));
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const __m512 dr = _mm512_set1_ps(dx[8 * r + run]);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(lo[r]), _mm512_mul_ps(sl, dr), acc[r]);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(hi[r]), _mm512_mul_ps(sh, dr), acc[r]);
            acc[r] = _mm512_fnmadd_ps(ol, _mm512_set1_ps(gs[16 * r + 2 * run]), acc[r]);
            acc[r] = _mm512_fnmadd_ps(oh, _mm512_set1_ps(gs[16 * r + 2 * run + 1]), acc[r]);
          }
        }
      }
    }
  }

  template <int R>
  static void group_f32(const uint8_t* w, int64_t nb, const float* xp, __m512 (&acc)[R]) {
    for (int64_t b = 0; b < nb; ++b, xp += f32_block_floats(kBlock) * R) {
      const uint8_t* v = w + kValues * b;
      const uint8_t* sc = w + kValues * nb + 288 * b;
      prefetch_ahead(sc, 288);
      const __m512 d = half16(sc + 256);
      for (int h = 0; h < 2; ++h) {
        prefetch_ahead(v + 1536 * h, 1536);
        for (int k = 0; k < 4; ++k) {
          __m512 lo[R], hi[R];  // Σ q x of sub-blocks 8h + 2k and 8h + 2k + 1
          auto sum = [&](__m512(&s)[R], int c0) {  // vectors c0 .. c0 + 3: one sub-block
#pragma GCC unroll 8
            for (int r = 0; r < R; ++r) s[r] = _mm512_setzero_ps();
            for (int c = c0; c < c0 + 4; ++c) {
              // q = stored - 32 as signed bytes; byte j of each lane sign-extended to a float
              const __m512i q = _mm512_sub_epi8(run_vector(v, h, k, c), _mm512_set1_epi8(32));
              const float* xe = xp + (128 * h + 32 * k + 4 * c) * R;
              auto step = [&]<int j>() {
                const __m512 n = _mm512_cvtepi32_ps(_mm512_srai_epi32(_mm512_slli_epi32(q, 24 - 8 * j), 24));
#pragma GCC unroll 8
                for (int r = 0; r < R; ++r) s[r] = _mm512_fmadd_ps(n, _mm512_set1_ps(xe[j * R + r]), s[r]);
              };
              step.template operator()<0>(), step.template operator()<1>(), step.template operator()<2>(),
                  step.template operator()<3>();
            }
          };
          sum(lo, 0), sum(hi, 4);
          const __m512 sl = scale(sc, d, 8 * h + 2 * k), sh = scale(sc, d, 8 * h + 2 * k + 1);
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(sh, hi[r], _mm512_fmadd_ps(sl, lo[r], acc[r]));
        }
      }
    }
  }
};

// y[M, n0:n1) from groups [n0 / 16, ⌈n1 / 16⌉), kMaxRows rows of x at a time: pack.operator()<R>(m0, dst) packs
// rows m0 .. m0 + R - 1 for group.operator()<R>(w, nb, packed, acc), `per_block` elements of Packed per block
// and row.

}  // namespace

void kquants_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                int64_t n1) {
  if (w.dtype == DType::Q6_Kx16) return q8_rows<Q6_K>(x, M, w, bias, y, n0, n1);
  q8_rows<Q4_K>(x, M, w, bias, y, n0, n1);
}

void kquants_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1) {
  if (w.dtype == DType::Q6_Kx16) return f32_rows<Q6_K>(x, xs, M, w, bias, y, n0, n1);
  f32_rows<Q4_K>(x, xs, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant::rows16_simd
