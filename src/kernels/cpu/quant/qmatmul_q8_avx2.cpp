// The int8-activation kernels on 256-bit vectors with AVX2's byte products (compiled with -mavx2 -mfma
// -mf16c); qmatmul_q8_rows.h has what they compute.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/quant/qmatmul_q8.h"
#include "kernels/cpu/quant/qmatmul_q8_rows.h"

namespace linfer::kernels::quant {
namespace {

// Lane i = the sum over j < 4 of u[4i + j] · s[4i + j]; u unsigned bytes (at most 128), s signed bytes in
// [-127, 127]: vpmaddubsw adds byte pairs in 16 bits (2 · 128 · 127 fits, so nothing saturates).
inline __m256i dot(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// Byte i = 16 where bit i of h is set, else 0 (Q5_0's fifth bits).
inline __m256i fifth_bits(uint32_t h) {
  const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)),  // byte i = byte i / 8 of h
                                            _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                               0x0303030303030303));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201));  // byte i: bit i % 8
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit), _mm256_set1_epi8(16));
}

// The 8 signed bytes at p as float lanes.
inline __m256 i8_floats(const uint8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}

// The 8 lane sums of p[0..8) (a block's 8 lanes each) as lanes 0-7.
inline __m256i block_sums(const __m256i (&p)[8]) {
  // per 128-bit half: [p0, p1, p2, p3] sums of the half's four lanes, likewise p4-p7
  const __m256i a = _mm256_hadd_epi32(_mm256_hadd_epi32(p[0], p[1]), _mm256_hadd_epi32(p[2], p[3]));
  const __m256i c = _mm256_hadd_epi32(_mm256_hadd_epi32(p[4], p[5]), _mm256_hadd_epi32(p[6], p[7]));
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, c, 0x20), _mm256_permute2x128_si256(a, c, 0x31));
}

template <int R>
struct Kernels {
  // Q8_0: |q| against x with q's sign.
  static void q8_0(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    __m256 acc[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 32; ++b, w += 34) {
      prefetch_ahead(w, 34);
      const float dw = half_at(w);
      const __m256i v = bytes32(w + 2), a = _mm256_abs_epi8(v);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256i p = dot(a, _mm256_sign_epi8(bytes32(x.q[r] + 32 * b), v));
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * x.d[r][b]), acc[r]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum8(acc[r]);
  }

  // Q4_0, Q5_0 (kFive), a block per step: d · Σ (n - o) q = d · (Σ n q - o Σ q), o = 8 (16), the offset as x's
  // share per lane (-Σ q) added to the products.
  template <bool kFive>
  static void q32(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    constexpr int64_t kBytes = kFive ? 22 : 18, kNibbles = kFive ? 6 : 2;
    const __m256i low = _mm256_set1_epi8(15);
    auto nibbles = [&](const uint8_t* wb) {  // block wb's 32 nibbles in the order of x's elements
      const __m128i a = bytes16(wb + kNibbles);
      return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(a, 4), a), low);
    };
    __m256 acc[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
    int64_t b = 0;
    if constexpr (!kFive) {
      // Q4_0, 8 blocks at a time: each block's lanes summed as integers, then per row one conversion, x's
      // scales, the offset 8 through x's sums (d · Σ n q - 8 d Σ q) and one FMA with the 8 weight scales.
      // The blocks past the last 8 take the loop below.
      const __m256 eight = _mm256_set1_ps(8.0f);
      for (; b + 8 <= K / 32; b += 8, w += 8 * kBytes) {
        prefetch_ahead(w, 8 * kBytes);
        __m256i n[8];
        #pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) n[j] = nibbles(w + j * kBytes);
        auto d16 = [&](int j) {  // block j's fp16 scale
          int16_t v;
          std::memcpy(&v, w + j * kBytes, 2);
          return v;
        };
        const __m256 dw =
            _mm256_cvtph_ps(_mm_set_epi16(d16(7), d16(6), d16(5), d16(4), d16(3), d16(2), d16(1), d16(0)));
        #pragma GCC unroll 4
        for (int r = 0; r < R; ++r) {
          __m256i p[8];
          #pragma GCC unroll 8
          for (int j = 0; j < 8; ++j) p[j] = dot(n[j], bytes32(x.q[r] + 32 * (b + j)));
          const __m256 s = _mm256_mul_ps(_mm256_cvtepi32_ps(block_sums(p)), _mm256_loadu_ps(x.d[r] + b));
          acc[r] = _mm256_fmadd_ps(_mm256_fnmadd_ps(eight, _mm256_loadu_ps(x.gs[r] + b), s), dw, acc[r]);
        }
      }
    }
    for (; b < K / 32; ++b, w += kBytes) {
      prefetch_ahead(w, kBytes);
      const float dw = half_at(w);
      __m256i n = nibbles(w);
      if constexpr (kFive) {
        uint32_t h;
        std::memcpy(&h, w + 2, 4);
        n = _mm256_or_si256(n, fifth_bits(h));
      }
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m256i off = bytes32(x.off_q4_0[r] + 8 * b);
        __m256i p = _mm256_add_epi32(dot(n, bytes32(x.q[r] + 32 * b)), off);
        if constexpr (kFive) p = _mm256_add_epi32(p, off);
        acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(dw * x.d[r][b]), acc[r]);
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum8(acc[r]);
  }

  // Q4_K, Q5_K (kFive), group g of 64 (sub-blocks 2g and 2g + 1) as two vectors: Σ_j d sc_j Σ n q·dx - dmin m_j gs_j.
  template <bool kFive>
  static void qk(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    constexpr int64_t kBytes = kFive ? 176 : 144, kNibbles = kFive ? 48 : 16;
    const __m256i low = _mm256_set1_epi8(15), fifth = _mm256_set1_epi8(16);
    __m256 acc[R], off[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = off[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 256; ++b, w += kBytes) {
      prefetch_ahead(w, kBytes);
      uint8_t sc[8], m[8];
      linfer::quant::q4k_scales_mins(w + 4, sc, m);
      const __m256 scale = _mm256_mul_ps(u8_floats(sc), _mm256_set1_ps(half_at(w)));
      const __m256 mins = _mm256_mul_ps(u8_floats(m), _mm256_set1_ps(half_at(w + 2)));
      alignas(32) float f[R][8];  // d sc_j · x's scale of sub-block j
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        off[r] = _mm256_fmadd_ps(mins, _mm256_loadu_ps(x.gs[r] + 8 * b), off[r]);
        _mm256_store_ps(f[r], _mm256_mul_ps(scale, _mm256_loadu_ps(x.d[r] + 8 * b)));
      }
      const __m256i qh = kFive ? bytes32(w + 16) : _mm256_setzero_si256();
      for (int g = 0; g < 4; ++g) {
        const __m256i v = bytes32(w + kNibbles + 32 * g);
        __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
        if constexpr (kFive) {  // bits 2g and 2g + 1 of qh to bit 4
          const __m256i t = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * g));
          lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(t, 4), fifth));
          hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(t, 3), fifth));
        }
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const int8_t* q = x.q[r] + 256 * b + 64 * g;
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(lo, bytes32(q))), _mm256_set1_ps(f[r][2 * g]), acc[r]);
          acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot(hi, bytes32(q + 32))), _mm256_set1_ps(f[r][2 * g + 1]),
                                   acc[r]);
        }
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum8(acc[r]) - sum8(off[r]);
  }

  // Q6_K, per half h of 128 and run j of 32: element 32j + l is ql's nibble | qh's bit pair j << 4, minus 32,
  // scaled by its 16-element sub-block's scale 8h + 2j + l / 16.
  static void q6_k(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    const __m256i low = _mm256_set1_epi8(15), high = _mm256_set1_epi8(0x30);
    __m256 acc[R], off[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = off[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 256; ++b, w += 210) {
      prefetch_ahead(w, 210);
      alignas(32) float sc[16];  // d · the int8 sub-block scales
      const __m256 d = _mm256_set1_ps(half_at(w + 208));
      _mm256_store_ps(sc, _mm256_mul_ps(i8_floats(w + 192), d));
      _mm256_store_ps(sc + 8, _mm256_mul_ps(i8_floats(w + 200), d));
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {  // the offset 32 per sub-block
        off[r] = _mm256_fmadd_ps(_mm256_load_ps(sc), _mm256_loadu_ps(x.gs16[r] + 16 * b), off[r]);
        off[r] = _mm256_fmadd_ps(_mm256_load_ps(sc + 8), _mm256_loadu_ps(x.gs16[r] + 16 * b + 8), off[r]);
      }
      for (int h = 0; h < 2; ++h) {
        const uint8_t* ql = w + 64 * h;
        const __m256i a = bytes32(ql), c = bytes32(ql + 32), hb = bytes32(w + 128 + 32 * h);
        auto six = [&](__m256i nib, __m256i hi) { return _mm256_or_si256(nib, _mm256_and_si256(hi, high)); };
        const __m256i n[4] = {six(_mm256_and_si256(a, low), _mm256_slli_epi16(hb, 4)),
                              six(_mm256_and_si256(c, low), _mm256_slli_epi16(hb, 2)),
                              six(_mm256_and_si256(_mm256_srli_epi16(a, 4), low), hb),
                              six(_mm256_and_si256(_mm256_srli_epi16(c, 4), low), _mm256_srli_epi16(hb, 2))};
        for (int j = 0; j < 4; ++j) {
          const int s = 8 * h + 2 * j;
          const __m256 sub = _mm256_set_m128(_mm_set1_ps(sc[s + 1]), _mm_set1_ps(sc[s]));  // lanes 0-3, 4-7
          const int64_t e = 256 * b + 128 * h + 32 * j;
          #pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const __m256i p = dot(n[j], bytes32(x.q[r] + e));
            acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_mul_ps(sub, _mm256_set1_ps(x.d[r][e / 32])), acc[r]);
          }
        }
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum8(acc[r]) - 32.0f * sum8(off[r]);
  }
};

}  // namespace

void q8_rows_avx2(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                  int64_t n1) {
  rows_q8<Kernels, 4>(x, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
