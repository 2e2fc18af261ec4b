#pragma once
// Internal to the interleaved layouts' kernels (rows16.h; included only by files compiled with -mavx512f
// -mavx512bw -mavx512vl -mavx512vnni: rows16_avx512vnni.cpp for blocks of 32, rows16_kquants_avx512vnni.cpp for
// Q4_K and Q6_K). A vector lane is a weight row of the group: the 16 outputs of a group and row of x build up in
// one float32 vector, so there is no horizontal sum. Up to 8 rows of x per pass over a group (more: the group
// again, from cache), packed per block so that the kernel reaches them through one pointer at fixed offsets (with
// 8 row pointers GCC ran out of general registers). Every output is a float32 sum in block order of per-block (or
// per-sub-block) terms, so its bits do not depend on the other rows of x.
//   int8 x: per run of 32 elements and row of x, 8 vpdpbusd (x's 4 bytes broadcast from memory), the run's
//           products summed exactly as integers, then scaled in float32 as qmatmul_q8_avx512vnni.cpp does.
//   float x: each element's 16 stored weight values as float lanes (a shift, a mask, a conversion, shared by the
//           rows of x), one FMA per row of x into running sums, scaled per block or sub-block.
// A format F gives kBlock, kExtras and extra (pack_q8), and group_q8<R> / group_f32<R> (the pass over a group).
#include <immintrin.h>

#include <cstring>
#include <utility>
#include <vector>

#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/quant/rows16.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as their unused merge operands, which it then reports as
// "(may be) used uninitialized" once they are inlined in the kernels: don't-care values, not a defect here.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace linfer::kernels::quant::rows16_simd {

inline constexpr int kMaxRows = 8;

// vpdpbusd with the 4 bytes at p broadcast from memory ({1to16}): one fused instruction where GCC 12 emits a
// separate vpbroadcastd for _mm512_set1_epi32.
inline __m512i dpbusd_bcast(__m512i acc, __m512i u, const void* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*static_cast<const int32_t*>(p)));
  return acc;
}
inline __m512 half16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 bytes16(const uint8_t* p) {  // 16 unsigned bytes as floats
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
}
// Byte j of each dword of v as 16 float lanes: all 8 bits (kBits 8), or its low or high nibble (kBits 4, kHigh).
template <int kBits, int j, bool kHigh = false>
inline __m512 field(__m512i v) {
  constexpr unsigned shift = 8 * j + (kHigh ? 4 : 0);
  const __m512i q = shift ? _mm512_srli_epi32(v, shift) : v;
  return _mm512_cvtepi32_ps(shift + kBits == 32 ? q : _mm512_and_si512(q, _mm512_set1_epi32((1 << kBits) - 1)));
}

// Float x for a format with blocks of kBlock: rows m0 .. m0 + R - 1 per block, f32_block_floats(kBlock) R floats
// each: element e of row r at e R + r, then each row's sums of its runs of 32 (xs).
constexpr int64_t f32_block_floats(int64_t block) { return block + block / 32; }
constexpr int64_t f32_sums_at(int64_t block, int64_t R) { return block * R; }  // where the block's xs start
template <int R, int64_t kBlock>
void pack_f32(const float* x, const float* xs, int64_t K, int64_t m0, float* out) {
  constexpr int64_t runs = kBlock / 32;
  for (int64_t b = 0; b < K / kBlock; ++b, out += f32_block_floats(kBlock) * R)
    for (int r = 0; r < R; ++r) {
      const float* xr = x + (m0 + r) * K + kBlock * b;
      for (int64_t e = 0; e < kBlock; ++e) out[e * R + r] = xr[e];
      for (int64_t j = 0; j < runs; ++j)
        out[f32_sums_at(kBlock, R) + runs * r + j] = xs[(m0 + r) * (K / 32) + runs * b + j];
    }
}

// Int8 x for a format F with blocks of kBlock: rows m0 .. m0 + R - 1 per block, q8_block_bytes<F>() R bytes each:
// each row's kBlock q, then each row's runs d (float; runs = kBlock / 32), then each row's F::kExtras · runs values
// F::extra (4 bytes each).
template <class F>
constexpr int64_t q8_block_bytes() {
  return F::kBlock + 4 * (F::kBlock / 32) * (1 + F::kExtras);
}
template <class F>
constexpr int64_t q8_d_at(int64_t R) {  // where a block of R rows keeps the d
  return F::kBlock * R;
}
template <class F>
constexpr int64_t q8_extras_at(int64_t R) {  // and the extras
  return (F::kBlock + 4 * (F::kBlock / 32)) * R;
}
template <int R, class F>
void pack_q8(const Q8Acts& x, int64_t m0, int64_t K, uint8_t* out) {
  constexpr int64_t block = F::kBlock, runs = block / 32, extras = F::kExtras * runs;
  for (int64_t b = 0; b < K / block; ++b, out += q8_block_bytes<F>() * R)
    for (int r = 0; r < R; ++r) {
      const int64_t m = m0 + r;
      std::memcpy(out + block * r, x.q + m * x.ld + block * b, size_t(block));
      std::memcpy(out + q8_d_at<F>(R) + 4 * runs * r, x.d + m * (K / 32) + runs * b, size_t(4 * runs));
      for (int64_t j = 0; j < extras; ++j) {
        const auto e = F::extra(x, m, extras * b + j, K);
        std::memcpy(out + q8_extras_at<F>(R) + 4 * extras * r + 4 * j, &e, 4);
      }
    }
}

template <class Packed, class Pack, class Group>
void rows(int64_t M, const WeightMatrix& w, int64_t block, const float* bias, float* y, int64_t n0, int64_t n1,
          int64_t per_block, Pack&& pack, Group&& group) {
  const int64_t nb = w.K / block, G = rows16_group_bytes(w.dtype, w.K), N = w.N;
  thread_local std::vector<Packed> packed;  // this thread's: x's rows as the group passes read them
  packed.resize(size_t(M * nb * per_block));
  for (int64_t m0 = 0; m0 < M; m0 += kMaxRows)
    with_tile_rows<kMaxRows>(std::min<int64_t>(M - m0, kMaxRows),
                             [&]<int R>() { pack.template operator()<R>(m0, packed.data() + m0 * nb * per_block); });
  for (int64_t n = n0; n < n1; n += kRows16) {
    const auto* wg = static_cast<const uint8_t*>(w.data) + n / kRows16 * G;
    const __mmask16 mask = n1 - n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n1 - n)) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
    for (int64_t m0 = 0; m0 < M; m0 += kMaxRows)
      with_tile_rows<kMaxRows>(std::min<int64_t>(M - m0, kMaxRows), [&]<int R>() {
        __m512 acc[R];
        for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
        group.template operator()<R>(wg, nb, packed.data() + m0 * nb * per_block, acc);
        for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (m0 + r) * N + n, mask, _mm512_add_ps(acc[r], bv));
      });
  }
}

template <class F>
void q8_rows(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1) {
  rows<uint8_t>(
      M, w, F::kBlock, bias, y, n0, n1, q8_block_bytes<F>(),
      [&]<int R>(int64_t m0, uint8_t* dst) { pack_q8<R, F>(x, m0, w.K, dst); },
      []<int R>(const uint8_t* g, int64_t blocks, const uint8_t* xp, __m512(&acc)[R]) {
        F::template group_q8<R>(g, blocks, xp, acc);
      });
}

template <class F>
void f32_rows(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
              int64_t n0, int64_t n1) {
  rows<float>(
      M, w, F::kBlock, bias, y, n0, n1, f32_block_floats(F::kBlock),
      [&]<int R>(int64_t m0, float* dst) { pack_f32<R, F::kBlock>(x, xs, w.K, m0, dst); },
      []<int R>(const uint8_t* g, int64_t blocks, const float* xp, __m512(&acc)[R]) {
        F::template group_f32<R>(g, blocks, xp, acc);
      });
}

// The K-quant formats (Q4_Kx16, Q6_Kx16): rows16_q8 and rows16_f32 for them (rows16_kquants_avx512vnni.cpp).
void kquants_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                int64_t n1);
void kquants_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1);

}  // namespace linfer::kernels::quant::rows16_simd
