// The int8-activation kernels on 512-bit vectors with AVX-512 VNNI (compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512vnni; run only where the CPU has them); qmatmul_q8_rows.h has what they compute. One
// vpdpbusd takes two runs of 32 at once: Q8_0, Q4_0 and Q5_0 two blocks (an odd last block alone, the upper
// half zero), Q4_K and Q5_K a group's low and high nibbles, Q6_K two of a half's four 32-element runs. The
// float scales of the two runs sit in the vector's two halves (Q6_K: its four quarters, one 16-element
// sub-block each). Q4_0 goes 8 blocks at a time where it can: four such vectors' lanes summed per block as
// integers, then one conversion, one scale product and one FMA for the 8 blocks.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/quant/qmatmul_q8.h"
#include "kernels/cpu/quant/qmatmul_q8_rows.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as their unused merge operands, which it then reports
// as "may be used uninitialized" once they are inlined here: don't-care values, not a defect of this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace linfer::kernels::quant {
namespace {

// Lane i = the sum over j < 4 of u[4i + j] · s[4i + j] (u unsigned bytes, s signed).
inline __m512i dot(__m512i u, __m512i s) { return _mm512_dpbusd_epi32(_mm512_setzero_si512(), u, s); }
// a in the low 256 bits, b in the high ones.
inline __m512i join(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_zextsi256_si512(a), b, 1); }
inline float sum16(__m512 v) { return _mm512_reduce_add_ps(v); }
// Lane i = v[base + i / 8]: the per-run scales of 8 runs spread over two runs' lanes.
inline __m512 spread8(__m256 v, int base) {
  return _mm512_permutexvar_ps(
      _mm512_add_epi32(_mm512_set1_epi32(base), _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)),
      _mm512_zextps256_ps512(v));
}

// The 8 block sums of four vectors of two blocks' lane products (p[j]: lanes 0-7 block 2j, 8-15 block 2j + 1)
// as int32 lanes, in the order of blocks 0, 2, 4, 6, 1, 3, 5, 7.
inline __m256i block_sums(const __m512i (&p)[4]) {
  // per 128-bit lane: [p0, p1, p0, p1] partial sums, then [p0, p1, p2, p3] sums of the lane's four products
  const __m512i a = _mm512_add_epi32(_mm512_unpacklo_epi32(p[0], p[1]), _mm512_unpackhi_epi32(p[0], p[1]));
  const __m512i c = _mm512_add_epi32(_mm512_unpacklo_epi32(p[2], p[3]), _mm512_unpackhi_epi32(p[2], p[3]));
  const __m512i s = _mm512_add_epi32(_mm512_unpacklo_epi64(a, c), _mm512_unpackhi_epi64(a, c));
  // 128-bit lanes 0 + 1 hold the even blocks, 2 + 3 the odd ones
  const __m512i t = _mm512_add_epi32(s, _mm512_shuffle_i32x4(s, s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm512_castsi512_si256(_mm512_shuffle_i32x4(t, t, _MM_SHUFFLE(2, 0, 2, 0)));
}

template <int R>
struct Kernels {
  // Blocks of 32 (Q8_0, Q4_0, Q5_0) two at a time: body.template operator()<kOne>(b, w) for blocks b and b + 1 at
  // w (kOne: block b alone, the last of an odd count).
  template <int64_t kBytes, class Body>
  static void pairs(const uint8_t* w, int64_t K, Body&& body) {
    const int64_t nb = K / 32;
    int64_t b = 0;
    for (; b + 1 < nb; b += 2, w += 2 * kBytes) body.template operator()<false>(b, w);
    if (b < nb) body.template operator()<true>(b, w);
  }
  // The two blocks' fp16 scales at w and w + kBytes as floats in lanes 0 and 1 (kOne: lane 1 is 0; lanes 2
  // and 3 hold whatever the bytes after the scales make): once per pair of blocks, for all rows of x.
  template <bool kOne, int64_t kBytes>
  static __m128 w_scales(const uint8_t* w) {
    auto at = [](const uint8_t* p) {  // (memcpy: the scales sit at any even address)
      int32_t v;
      std::memcpy(&v, p, 4);
      return _mm_cvtsi32_si128(v);
    };
    return _mm_cvtph_ps(_mm_unpacklo_epi16(at(w), kOne ? _mm_setzero_si128() : at(w + kBytes)));
  }
  // w_scales times x's scales of runs b, b + 1 (row r) at dx: lanes 0-7 the first block's, 8-15 the second's.
  template <bool kOne>
  static __m512 pair_scales(__m128 ws, const float* dx) {
    const __m128 d = kOne ? _mm_load_ss(dx)  // x's scales at any 4-byte address: an unaligned 8-byte load
                          : _mm_castsi128_ps(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(dx)));
    return _mm512_permutexvar_ps(_mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0),
                                 _mm512_zextps128_ps512(_mm_mul_ps(ws, d)));
  }
  // The 64 bytes of x at p (kOne: the first 32, the rest 0).
  template <bool kOne>
  static __m512i x_bytes(const int8_t* p) {
    return kOne ? _mm512_zextsi256_si512(bytes32(p)) : _mm512_loadu_si512(p);
  }

  // Q8_0, blocks b and b + 1 at once: |q| against x with q's sign.
  static void q8_0(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    __m512 acc[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    pairs<34>(w, K, [&]<bool kOne>(int64_t b, const uint8_t* wb) {
      prefetch_ahead(wb, 68);
      const __m512i v = join(bytes32(wb + 2), kOne ? _mm256_setzero_si256() : bytes32(wb + 36));
      const __mmask64 neg = _mm512_movepi8_mask(v);
      const __m512i a = _mm512_abs_epi8(v);
      const __m128 ws = w_scales<kOne, 34>(wb);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i q = x_bytes<kOne>(x.q[r] + 32 * b);
        const __m512i p = dot(a, _mm512_mask_sub_epi8(q, neg, _mm512_setzero_si512(), q));
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), pair_scales<kOne>(ws, x.d[r] + b), acc[r]);
      }
    });
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum16(acc[r]);
  }

  // Q4_0, Q5_0 (kFive), blocks b and b + 1 at once: d · (Σ n q - o Σ q), o = 8 (16).
  template <bool kFive>
  static void q32(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    constexpr int64_t kBytes = kFive ? 22 : 18, kNibbles = kFive ? 6 : 2;
    const __m512i low = _mm512_set1_epi8(15), fifth = _mm512_set1_epi8(16);
    // Each 128-bit lane of nibble bytes in the order of x's elements: lanes 1 and 3 shifted (per 64 bits: the
    // bits a byte takes from its neighbour fall outside the low nibble).
    const __m512i shift = _mm512_set_epi64(4, 4, 0, 0, 4, 4, 0, 0);
    // Blocks b and b + 1 (kOne: b alone) at wb as unsigned bytes in the order of x's elements.
    auto unpack = [&]<bool kOne>(const uint8_t* wb) {
      __m512i v = _mm512_broadcast_i32x4(bytes16(wb + kNibbles));
      if constexpr (!kOne) v = _mm512_mask_broadcast_i32x4(v, 0xFF00, bytes16(wb + kBytes + kNibbles));
      __m512i n = _mm512_and_si512(_mm512_srlv_epi64(v, shift), low);
      if constexpr (kFive) {  // bit i of qh is element i's fifth: one mask bit per byte of n
        uint32_t h[2] = {0, 0};
        std::memcpy(h, wb + 2, 4);
        if constexpr (!kOne) std::memcpy(h + 1, wb + kBytes + 2, 4);
        n = _mm512_or_si512(n, _mm512_maskz_mov_epi8(_cvtu64_mask64(h[0] | uint64_t(h[1]) << 32), fifth));
      }
      return n;
    };
    // Row r's lane products of blocks b, b + 1, its offset included.
    auto lanes = [&]<bool kOne>(__m512i n, int r, int64_t b) {
      const int32_t* o = x.off_q4_0[r] + 8 * b;
      const __m512i off = kOne ? _mm512_zextsi256_si512(bytes32(o)) : _mm512_loadu_si512(o);
      const __m512i p = _mm512_dpbusd_epi32(off, n, x_bytes<kOne>(x.q[r] + 32 * b));
      return kFive ? _mm512_add_epi32(p, off) : p;
    };
    int64_t b = 0;
    __m256 acc8[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc8[r] = _mm256_setzero_ps();
    if constexpr (!kFive) {
      // Q4_0, 8 blocks at a time: each block's lanes summed as integers first, so the conversion, the scales
      // and the FMA come once per 8 blocks and row instead of once per 2. The 8 fp16 scales sit 9 words apart
      // in the group's first 128 bytes (vpermt2w); x's scales permuted alike. The blocks past the last 8
      // take the pairs below.
      const __m512i ws_at = _mm512_set_epi16(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             0, 63, 45, 27, 9, 54, 36, 18, 0);
      const __m256i dx_at = _mm256_set_epi32(7, 5, 3, 1, 6, 4, 2, 0);
      for (; b + 8 <= K / 32; b += 8, w += 8 * kBytes) {
        prefetch_ahead(w, 8 * kBytes);
        const __m512i n[4] = {unpack.template operator()<false>(w), unpack.template operator()<false>(w + 2 * kBytes),
                              unpack.template operator()<false>(w + 4 * kBytes),
                              unpack.template operator()<false>(w + 6 * kBytes)};
        const __m256 ws = _mm256_cvtph_ps(_mm512_castsi512_si128(
            _mm512_permutex2var_epi16(_mm512_loadu_si512(w), ws_at, _mm512_loadu_si512(w + 64))));
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          __m512i p[4];
          #pragma GCC unroll 4
          for (int j = 0; j < 4; ++j) p[j] = lanes.template operator()<false>(n[j], r, b + 2 * j);
          const __m256 dx = _mm256_permutevar8x32_ps(_mm256_loadu_ps(x.d[r] + b), dx_at);
          acc8[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(block_sums(p)), _mm256_mul_ps(ws, dx), acc8[r]);
        }
      }
    }
    __m512 acc[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    pairs<kBytes>(w, K - 32 * b, [&]<bool kOne>(int64_t i, const uint8_t* wb) {
      prefetch_ahead(wb, 2 * kBytes);
      const __m512i n = unpack.template operator()<kOne>(wb);
      const __m128 ws = w_scales<kOne, kBytes>(wb);
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const __m512i p = lanes.template operator()<kOne>(n, r, b + i);
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), pair_scales<kOne>(ws, x.d[r] + b + i), acc[r]);
      }
    });
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum16(acc[r]) + sum8(acc8[r]);
  }

  // Q4_K, Q5_K (kFive), group g of 64 (sub-blocks 2g and 2g + 1) as one vector: Σ_j d sc_j Σ n q·dx - dmin m_j gs_j.
  template <bool kFive>
  static void qk(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    constexpr int64_t kBytes = kFive ? 176 : 144, kNibbles = kFive ? 48 : 16;
    const __m512i low = _mm512_set1_epi8(15), fifth = _mm512_set1_epi8(16);
    const __m512i up = _mm512_set_epi64(3, 3, 3, 3, 4, 4, 4, 4);  // bit 2g of qh to bit 4; 2g + 1 (high half)
    __m512 acc[R];
    __m256 off[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps(), off[r] = _mm256_setzero_ps();
    for (int64_t b = 0; b < K / 256; ++b, w += kBytes) {
      prefetch_ahead(w, kBytes);
      uint8_t sc[8], m[8];
      linfer::quant::q4k_scales_mins(w + 4, sc, m);
      const __m256 scale = _mm256_mul_ps(u8_floats(sc), _mm256_set1_ps(half_at(w)));
      const __m256 mins = _mm256_mul_ps(u8_floats(m), _mm256_set1_ps(half_at(w + 2)));
      __m256 f[R];  // d sc_j · x's scale of sub-block j
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        off[r] = _mm256_fmadd_ps(mins, _mm256_loadu_ps(x.gs[r] + 8 * b), off[r]);
        f[r] = _mm256_mul_ps(scale, _mm256_loadu_ps(x.d[r] + 8 * b));
      }
      __m512i qh = _mm512_setzero_si512();
      if constexpr (kFive) qh = join(bytes32(w + 16), bytes32(w + 16));
#pragma GCC unroll 4  // constant permute indices; measured ~8 % faster on Zen 4 than GCC 12's loop
      for (int g = 0; g < 4; ++g) {
        const __m256i v = bytes32(w + kNibbles + 32 * g);
        __m512i n = _mm512_and_si512(join(v, _mm256_srli_epi16(v, 4)), low);
        if constexpr (kFive)
          n = _mm512_or_si512(
              n, _mm512_and_si512(_mm512_sllv_epi64(_mm512_srl_epi16(qh, _mm_cvtsi32_si128(2 * g)), up), fifth));
        #pragma GCC unroll 8
        for (int r = 0; r < R; ++r) {
          const __m512i p = dot(n, _mm512_loadu_si512(x.q[r] + 256 * b + 64 * g));
          acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), spread8(f[r], 2 * g), acc[r]);
        }
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum16(acc[r]) - sum8(off[r]);
  }

  // Q6_K, per half h of 128: runs of 32 j = 0, 1 in one vector, 2, 3 in another (element 32j + l: ql's nibble
  // | qh's bit pair j << 4, minus 32, scaled by its 16-element sub-block's scale 8h + 2j + l / 16).
  static void q6_k(const uint8_t* w, int64_t K, const Rows8<R>& x, float* out) {
    const __m512i low = _mm512_set1_epi8(15), high = _mm512_set1_epi8(0x30);
    // The bit pairs of runs (0, 1): qh << 4, << 2; of runs (2, 3): qh, >> 2 (shifts per 256-bit half).
    const __m512i shl01 = _mm512_set_epi64(2, 2, 2, 2, 4, 4, 4, 4), shr23 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    // Lane i of the vector of runs (2p, 2p + 1) in half h: sub-block 8h + 4p + i / 4.
    const __m512i quarter = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    __m512 acc[R], off[R];
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = off[r] = _mm512_setzero_ps();
    for (int64_t b = 0; b < K / 256; ++b, w += 210) {
      prefetch_ahead(w, 210);
      const __m512 sc = _mm512_mul_ps(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes16(w + 192))),
          _mm512_set1_ps(half_at(w + 208)));  // d · the int8 sub-block scales
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) off[r] = _mm512_fmadd_ps(sc, _mm512_loadu_ps(x.gs16[r] + 16 * b), off[r]);
      __m256 dx[R];
      #pragma GCC unroll 8
      for (int r = 0; r < R; ++r) dx[r] = _mm256_loadu_ps(x.d[r] + 8 * b);
      for (int h = 0; h < 2; ++h) {
        const __m512i ql = join(bytes32(w + 64 * h), bytes32(w + 64 * h + 32));
        const __m256i hb = bytes32(w + 128 + 32 * h);
        const __m512i qh = join(hb, hb);
        const __m512i n[2] = {
            _mm512_or_si512(_mm512_and_si512(ql, low), _mm512_and_si512(_mm512_sllv_epi64(qh, shl01), high)),
            _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), low),
                            _mm512_and_si512(_mm512_srlv_epi64(qh, shr23), high))};
        for (int p = 0; p < 2; ++p) {
          const __m512 wscale = _mm512_permutexvar_ps(_mm512_add_epi32(quarter, _mm512_set1_epi32(8 * h + 4 * p)), sc);
          const int64_t e = 256 * b + 128 * h + 64 * p;
          #pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            const __m512i s = dot(n[p], _mm512_loadu_si512(x.q[r] + e));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), _mm512_mul_ps(wscale, spread8(dx[r], 4 * h + 2 * p)),
                                     acc[r]);
          }
        }
      }
    }
    #pragma GCC unroll 8
    for (int r = 0; r < R; ++r) out[r] = sum16(acc[r]) - 32.0f * sum16(off[r]);
  }
};

}  // namespace

void q8_rows_avx512vnni(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                        int64_t n1) {
  rows_q8<Kernels, 8>(x, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
