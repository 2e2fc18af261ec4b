// The interleaved kernels (rows16.h, rows16_avx512vnni.h) for blocks of 32: Q4_0x16 and Q8_0x16, and the entry
// points for every interleaved type.
//   int8 x: the run's integer sum starts from the stored offset, -8 Σq (Q4_0) / -128 Σq (Q8_0), then · d_w d_x.
//   float x: two running sums per row of x (even and odd elements), then d · (Σ n x - o Σ x), o = 8 / 128.
#include "kernels/cpu/quant/rows16_avx512vnni.h"

namespace linfer::kernels::quant {
namespace {

using namespace rows16_simd;

// ---- Q4_0x16 and Q8_0x16: blocks of 32, kBits bits per value, stored as q + kOffset ----

template <int kBits>
struct Block32 {
  static constexpr int64_t kBlock = 32;
  static constexpr int kVectors = kBits;                  // 64-byte vectors of the 16 rows' values per block
  static constexpr int64_t kValues = 64 * kVectors;       // their bytes; the block's 16 scales follow all values
  static constexpr int32_t kOffset = 1 << (kBits - 1);    // 8 (Q4_0), 128 (Q8_0)

  // pack_q8's value per run: the offset as an integer, -kOffset Σq of the run (off_q4_0 holds -Σq in each of the
  // run's 8 lanes)
  static constexpr int kExtras = 1;
  static int32_t extra(const Q8Acts& x, int64_t m, int64_t run, int64_t) {
    return kOffset * x.off_q4_0[m * (x.ld / 4) + 8 * run];
  }
  // The block's values as vpdpbusd's unsigned operands, operand c times x's bytes 4c .. 4c + 3.
  static void operands(const uint8_t* values, __m512i (&n)[8]) {
    if constexpr (kBits == 8) {
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) n[c] = _mm512_loadu_si512(values + 64 * c);
    } else {  // low nibbles of vectors 0-3 (elements 4c + j), then the high ones (16 + 4c + j)
      const __m512i low = _mm512_set1_epi8(15);
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) {
        const __m512i v = _mm512_loadu_si512(values + 64 * c);
        n[c] = _mm512_and_si512(v, low);
        n[4 + c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
    }
  }
  // Element e of each of the 16 rows (kOffset added) as float lanes, from the block's vectors v.
  template <int e>
  static __m512 element(const __m512i* v) {
    if constexpr (kBits == 8) return field<8, e % 4>(v[e / 4]);
    else return field<4, e % 4, (e >= 16)>(v[(e % 16) / 4]);
  }

  template <int R>
  static void group_q8(const uint8_t* w, int64_t nb, const uint8_t* xp, __m512 (&acc)[R]) {
    for (int64_t b = 0; b < nb; ++b, xp += q8_block_bytes<Block32>() * R) {
      prefetch_ahead(w + (kValues + 32) * b, kValues + 32);  // the group's bytes at their mean pace
      __m512i n[8];
      operands(w + kValues * b, n);
      const __m512 dw = half16(w + kValues * nb + 32 * b);
      const auto* dx = reinterpret_cast<const float*>(xp + q8_d_at<Block32>(R));
      const auto* off = reinterpret_cast<const int32_t*>(xp + q8_extras_at<Block32>(R));
      __m512i s[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) s[r] = _mm512_set1_epi32(off[r]);
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c)  // the rows innermost: R independent chains; x's bytes 4c .. 4c + 3
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) s[r] = dpbusd_bcast(s[r], n[c], xp + 32 * r + 4 * c);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(dw, _mm512_set1_ps(dx[r])), acc[r]);
    }
  }

  template <int R>
  static void group_f32(const uint8_t* w, int64_t nb, const float* xp, __m512 (&acc)[R]) {
    for (int64_t b = 0; b < nb; ++b, xp += f32_block_floats(kBlock) * R) {
      prefetch_ahead(w + (kValues + 32) * b, kValues + 32);
      __m512i v[kVectors];
#pragma GCC unroll 8
      for (int c = 0; c < kVectors; ++c) v[c] = _mm512_loadu_si512(w + kValues * b + 64 * c);
      __m512 s[2][R];  // running sums of the even and odd elements
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) s[0][r] = s[1][r] = _mm512_setzero_ps();
      auto step = [&]<int e>() {
        const __m512 n = element<e>(v);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) s[e % 2][r] = _mm512_fmadd_ps(n, _mm512_set1_ps(xp[e * R + r]), s[e % 2][r]);
      };
      [&]<int... e>(std::integer_sequence<int, e...>) { (step.template operator()<e>(), ...); }(
          std::make_integer_sequence<int, 32>());
      const __m512 dw = half16(w + kValues * nb + 32 * b), off = _mm512_set1_ps(float(kOffset));
      const float* xs = xp + f32_sums_at(kBlock, R);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[r] = _mm512_fmadd_ps(
            dw, _mm512_fnmadd_ps(off, _mm512_set1_ps(xs[r]), _mm512_add_ps(s[0][r], s[1][r])), acc[r]);
    }
  }
};

}  // namespace

void rows16_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1) {
  if (w.dtype == DType::Q8_0x16) return rows16_simd::q8_rows<Block32<8>>(x, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q4_0x16) return rows16_simd::q8_rows<Block32<4>>(x, M, w, bias, y, n0, n1);
  rows16_simd::kquants_q8(x, M, w, bias, y, n0, n1);
}

void rows16_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                int64_t n0, int64_t n1) {
  if (w.dtype == DType::Q8_0x16) return rows16_simd::f32_rows<Block32<8>>(x, xs, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q4_0x16) return rows16_simd::f32_rows<Block32<4>>(x, xs, M, w, bias, y, n0, n1);
  rows16_simd::kquants_f32(x, xs, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
