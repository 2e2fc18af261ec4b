// The kernels of the interleaved layouts (rows16.h) on 512-bit vectors (compiled with -mavx512f -mavx512bw
// -mavx512vl -mavx512vnni; run only where rows16_runs). A vector lane is a weight row of the group: the 16 outputs
// of a group and row of x build up in one float32 vector, so there is no horizontal sum. Up to 8 rows of x per
// pass over a group (more: the group again, from cache), packed per block so that the kernel reaches them
// through one pointer at fixed offsets (with 8 row pointers GCC ran out of general registers). Every output is
// a float32 sum in block order of per-block (or per-sub-block) terms, so its bits do not depend on the other
// rows of x.
//   int8 x: per run of 32 elements and row of x, 8 vpdpbusd (x's 4 bytes broadcast from memory), the run's
//           products summed exactly as integers, then scaled in float32 as qmatmul_q8_avx512vnni.cpp does:
//           Q4_0 / Q8_0: started from -8 Σq / -128 Σq (the stored offset), · d_w d_x; Q4_K: · d sc_j d_x, minus
//           dmin m_j · (x's sum of the run).
//   float x: each element's 16 stored weight values as float lanes (a shift, a mask, a conversion, shared by the
//           rows of x), one FMA per row of x into a running sum per run (Q4_0 / Q8_0: two, even and odd
//           elements); then Q4_0 / Q8_0: d · (Σ n x - o Σ x), o = 8 / 128; Q4_K: d sc_j · Σ n x - dmin m_j · Σ x.
#include <immintrin.h>

#include <cstring>
#include <utility>
#include <vector>

#include "kernels/cpu/gemm_tasks.h"
#include "kernels/cpu/quant/rows16.h"

// GCC 12's AVX-512 intrinsics pass _mm512_undefined_*() as their unused merge operands, which it then reports
// as "(may be) used uninitialized" once they are inlined here: don't-care values, not a defect of this file.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace linfer::kernels::quant {
namespace {

constexpr int kMaxRows = 8;

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

// Float x for a format with blocks of kBlock: rows m0 .. m0 + R - 1 per block, (kBlock + kBlock / 32) R floats
// each: element e of row r at e R + r, then each row's sums of its runs of 32 (xs).
template <int R, int64_t kBlock>
void pack_f32(const float* x, const float* xs, int64_t K, int64_t m0, float* out) {
  constexpr int64_t runs = kBlock / 32;
  for (int64_t b = 0; b < K / kBlock; ++b, out += (kBlock + runs) * R)
    for (int r = 0; r < R; ++r) {
      const float* xr = x + (m0 + r) * K + kBlock * b;
      for (int64_t e = 0; e < kBlock; ++e) out[e * R + r] = xr[e];
      for (int64_t j = 0; j < runs; ++j) out[kBlock * R + runs * r + j] = xs[(m0 + r) * (K / 32) + runs * b + j];
    }
}

// Int8 x for a format F with blocks of kBlock: rows m0 .. m0 + R - 1 per block, q8_block_bytes<F>() R bytes each:
// each row's kBlock q, then each row's runs d (float; runs = kBlock / 32), then each row's F::kExtras · runs values
// F::extra (4 bytes each).
template <class F>
constexpr int64_t q8_block_bytes() {
  return F::kBlock + 4 * (F::kBlock / 32) * (1 + F::kExtras);
}
template <int R, class F>
void pack_q8(const Q8Acts& x, int64_t m0, int64_t K, uint8_t* out) {
  constexpr int64_t block = F::kBlock, runs = block / 32, extras = F::kExtras * runs;
  for (int64_t b = 0; b < K / block; ++b, out += q8_block_bytes<F>() * R)
    for (int r = 0; r < R; ++r) {
      const int64_t m = m0 + r;
      std::memcpy(out + block * r, x.q + m * x.ld + block * b, size_t(block));
      std::memcpy(out + block * R + 4 * runs * r, x.d + m * (K / 32) + runs * b, size_t(4 * runs));
      for (int64_t j = 0; j < extras; ++j) {
        const auto e = F::extra(x, m, extras * b + j, K);
        std::memcpy(out + (block + 4 * runs) * R + 4 * extras * r + 4 * j, &e, 4);
      }
    }
}

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
      const auto* dx = reinterpret_cast<const float*>(xp + 32 * R);
      const auto* off = reinterpret_cast<const int32_t*>(xp + 36 * R);
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
    for (int64_t b = 0; b < nb; ++b, xp += 33 * R) {
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
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r)
        acc[r] = _mm512_fmadd_ps(
            dw, _mm512_fnmadd_ps(off, _mm512_set1_ps(xp[32 * R + r]), _mm512_add_ps(s[0][r], s[1][r])), acc[r]);
    }
  }
};

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
      const auto* dx = reinterpret_cast<const float*>(xp + 256 * R);
      const auto* gs = reinterpret_cast<const float*>(xp + 288 * R);
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
    for (int64_t b = 0; b < nb; ++b, xp += 264 * R) {
      const uint8_t* blk = w + kBytes * b;
      const __m512 d = half16(blk + 2304), dmin = half16(blk + 2336);
      const float* xsum = xp + 256 * R;
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
      const auto* dx = reinterpret_cast<const float*>(xp + 256 * R);
      const auto* gs = reinterpret_cast<const float*>(xp + 288 * R);
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
    for (int64_t b = 0; b < nb; ++b, xp += 264 * R) {
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
      M, w, F::kBlock, bias, y, n0, n1, F::kBlock + F::kBlock / 32,
      [&]<int R>(int64_t m0, float* dst) { pack_f32<R, F::kBlock>(x, xs, w.K, m0, dst); },
      []<int R>(const uint8_t* g, int64_t blocks, const float* xp, __m512(&acc)[R]) {
        F::template group_f32<R>(g, blocks, xp, acc);
      });
}

}  // namespace

void rows16_q8(const Q8Acts& x, int64_t M, const WeightMatrix& w, const float* bias, float* y, int64_t n0, int64_t n1) {
  if (w.dtype == DType::Q8_0x16) return q8_rows<Block32<8>>(x, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q4_0x16) return q8_rows<Block32<4>>(x, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q6_Kx16) return q8_rows<Q6_K>(x, M, w, bias, y, n0, n1);
  q8_rows<Q4_K>(x, M, w, bias, y, n0, n1);
}

void rows16_f32(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                int64_t n0, int64_t n1) {
  if (w.dtype == DType::Q8_0x16) return f32_rows<Block32<8>>(x, xs, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q4_0x16) return f32_rows<Block32<4>>(x, xs, M, w, bias, y, n0, n1);
  if (w.dtype == DType::Q6_Kx16) return f32_rows<Q6_K>(x, xs, M, w, bias, y, n0, n1);
  f32_rows<Q4_K>(x, xs, M, w, bias, y, n0, n1);
}

}  // namespace linfer::kernels::quant
