// The Q4_0x16 kernels (q4_0x16.h) on 512-bit vectors (compiled with -mavx512f -mavx512bw -mavx512vl
// -mavx512vnni; run only where q4_0x16_runs). A vector lane is a weight row of the group: the 16 outputs of a
// group and row of x build up in one float32 vector, so there is no horizontal sum. Up to 8 rows of x per pass
// over a group (more: the group again, from cache), packed per block so that the kernel reaches them through
// one pointer at fixed offsets (with 8 row pointers GCC ran out of general registers). Every output is the
// float32 sum over blocks, in block order, of d_w · (that block's sum), so its bits do not depend on the other
// rows of x.
//   int8 x: per block and row, 8 vpdpbusd (x's 4 bytes broadcast from memory) on -8 Σq, one conversion, d_w · d_x,
//           one FMA; the block's products summed exactly as integers, as qmatmul_q8_avx512vnni.cpp does.
//   float x: per block, each of its 32 elements' 16 weight nibbles as float lanes (a shift, a mask, a
//           conversion, shared by the rows of x), one FMA per row of x into two running sums (even / odd
//           elements); then d_w · (Σ n x - 8 Σ x).
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/quant/q4_0x16.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as their unused merge operands, which it then reports
// as "may be used uninitialized" once they are inlined here: don't-care values, not a defect of this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace linfer::kernels::quant {
namespace {

constexpr int kMaxRows = 8;

// The group's next bytes at its mean pace (nibbles and scales together: 288 bytes per block).
inline void prefetch_block(const uint8_t* group, int64_t b) { prefetch_ahead(group + 288 * b, 288); }

// The 16 rows' scales of block b of the group at w (nb blocks) as floats.
inline __m512 scales(const uint8_t* w, int64_t nb, int64_t b) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 256 * nb + 32 * b)));
}

// vpdpbusd with the 4 bytes at p broadcast from memory ({1to16}): one fused instruction where GCC 12 emits a
// separate vpbroadcastd for _mm512_set1_epi32.
inline __m512i dpbusd_bcast(__m512i acc, __m512i u, const int8_t* p) {
  asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(acc) : "v"(u), "m"(*reinterpret_cast<const int32_t*>(p)));
  return acc;
}

// ---- int8 x ----

// Rows m0 .. m0 + R - 1 of x per block, 40 R bytes each: R × 32 q, R float d, R int32 -8 Σq.
template <int R>
void pack_q8(const Q8Acts& x, int64_t m0, int64_t nb, uint8_t* out) {
  for (int64_t b = 0; b < nb; ++b, out += 40 * R)
    for (int r = 0; r < R; ++r) {
      const int64_t m = m0 + r;
      std::memcpy(out + 32 * r, x.q + m * x.ld + 32 * b, 32);
      std::memcpy(out + 32 * R + 4 * r, x.d + m * nb + b, 4);
      const int32_t o = 8 * x.off_q4_0[m * (x.ld / 4) + 8 * b];  // off_q4_0: -Σq in each of the run's 8 lanes
      std::memcpy(out + 36 * R + 4 * r, &o, 4);
    }
}

template <int R>
void group_q8(const uint8_t* w, int64_t nb, const uint8_t* xp, __m512 (&acc)[R]) {
  const __m512i low = _mm512_set1_epi8(15);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, xp += 40 * R) {
    prefetch_block(w, b);
    __m512i n[8];  // low nibbles of vectors 0-3 (elements 4c + j), then high ones (16 + 4c + j)
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) {
      const __m512i v = _mm512_loadu_si512(w + 256 * b + 64 * c);
      n[c] = _mm512_and_si512(v, low);
      n[4 + c] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
    }
    const __m512 dw = scales(w, nb, b);
    const auto* dx = reinterpret_cast<const float*>(xp + 32 * R);
    const auto* off = reinterpret_cast<const int32_t*>(xp + 36 * R);
    __m512i s[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) s[r] = _mm512_set1_epi32(off[r]);
#pragma GCC unroll 8
    for (int c = 0; c < 8; ++c)  // the rows innermost: R independent chains side by side; x's bytes 4c .. 4c + 3
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        s[r] = dpbusd_bcast(s[r], n[c], reinterpret_cast<const int8_t*>(xp) + 32 * r + 4 * c);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r]), _mm512_mul_ps(dw, _mm512_set1_ps(dx[r])), acc[r]);
  }
}

// ---- float x ----

// Rows m0 .. m0 + R - 1 of x per block, 33 R floats each: element e of row r at e R + r, then row r's -8 Σx.
template <int R>
void pack_f32(const float* x, const float* xs, int64_t K, int64_t m0, float* out) {
  const int64_t nb = K / 32;
  for (int64_t b = 0; b < nb; ++b, out += 33 * R)
    for (int r = 0; r < R; ++r) {
      const float* xr = x + (m0 + r) * K + 32 * b;
      for (int e = 0; e < 32; ++e) out[e * R + r] = xr[e];
      out[32 * R + r] = -8.0f * xs[(m0 + r) * nb + b];
    }
}

template <int R>
void group_f32(const uint8_t* w, int64_t nb, const float* xp, __m512 (&acc)[R]) {
  const __m512i low = _mm512_set1_epi32(15);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t b = 0; b < nb; ++b, xp += 33 * R) {
    prefetch_block(w, b);
    __m512i v[4];
#pragma GCC unroll 4
    for (int c = 0; c < 4; ++c) v[c] = _mm512_loadu_si512(w + 256 * b + 64 * c);
    __m512 s[2][R];  // running sums of the even and odd elements
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) s[0][r] = s[1][r] = _mm512_setzero_ps();
#pragma GCC unroll 32
    for (int e = 0; e < 32; ++e) {  // element e = 16 h + 4 c + j: nibble h of byte j of each lane of vector c
      const int h = e / 16, c = (e % 16) / 4, j = e % 4, shift = 8 * j + 4 * h;
      const __m512i q = shift ? _mm512_srli_epi32(v[c], unsigned(shift)) : v[c];
      const __m512 n = _mm512_cvtepi32_ps(shift == 28 ? q : _mm512_and_si512(q, low));
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) s[e % 2][r] = _mm512_fmadd_ps(n, _mm512_set1_ps(xp[e * R + r]), s[e % 2][r]);
    }
    const __m512 dw = scales(w, nb, b);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      acc[r] = _mm512_fmadd_ps(dw, _mm512_add_ps(_mm512_add_ps(s[0][r], s[1][r]), _mm512_set1_ps(xp[32 * R + r])),
                               acc[r]);
  }
}

// y[M, n0:n1) from groups [n0 / 16, ⌈n1 / 16⌉), kMaxRows rows of x at a time: pack(R, m0, dst) packs rows m0 ..
// m0 + R - 1 for group<R>(w, nb, packed, acc), `per_block` elements of Packed per block and row.
template <class Packed, class Pack, class Group>
void rows(int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1, int64_t per_block,
          Pack&& pack, Group&& group) {
  const int64_t nb = w.K / 32, G = q4_0x16_group_bytes(w.K), N = w.N;
  thread_local std::vector<Packed> packed;  // this thread's: x's rows as the group passes read them
  packed.resize(size_t(M * nb * per_block));
  for (int64_t m0 = 0; m0 < M; m0 += kMaxRows)
    with_tile_rows<kMaxRows>(std::min<int64_t>(M - m0, kMaxRows),
                             [&]<int R>() { pack.template operator()<R>(m0, packed.data() + m0 * nb * per_block); });
  for (int64_t n = n0; n < n1; n += kQ4x16Rows) {
    const auto* wg = static_cast<const uint8_t*>(w.data) + n / kQ4x16Rows * G;
    const __mmask16 mask = n1 - n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (n1 - n)) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(mask, bias + n) : _mm512_setzero_ps();
    for (int64_t m0 = 0; m0 < M; m0 += kMaxRows)
      with_tile_rows<kMaxRows>(std::min<int64_t>(M - m0, kMaxRows), [&]<int R>() {
        __m512 acc[R];
        group.template operator()<R>(wg, nb, packed.data() + m0 * nb * per_block, acc);
        for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(y + (m0 + r) * N + n, mask, _mm512_add_ps(acc[r], bv));
      });
  }
}

}  // namespace

void q4_0x16_rows_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0,
                     int64_t n1) {
  const int64_t nb = w.K / 32;
  rows<uint8_t>(
      M, w, bias, y, n0, n1, 40, [&]<int R>(int64_t m0, uint8_t* dst) { pack_q8<R>(x, m0, nb, dst); },
      []<int R>(const uint8_t* g, int64_t blocks, const uint8_t* xp, __m512(&acc)[R]) { group_q8<R>(g, blocks, xp, acc); });
}

void q4_0x16_rows_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                      int64_t n0, int64_t n1) {
  rows<float>(
      M, w, bias, y, n0, n1, 33, [&]<int R>(int64_t m0, float* dst) { pack_f32<R>(x, xs, w.K, m0, dst); },
      []<int R>(const uint8_t* g, int64_t blocks, const float* xp, __m512(&acc)[R]) { group_f32<R>(g, blocks, xp, acc); });
}

}  // namespace linfer::kernels::quant
