// Quantized GEMV / small GEMM on AVX2 + FMA + F16C. Per weight block: the integers widened to int32
// lanes straight from memory (vpmovzxbd / vpmovsxbd, 8 per load), nibbles split with an and and a
// shift (Q5's fifth bits or'd in), converted to float and FMA'd with up to R = 4 rows of x, so each
// block is unpacked once for R rows. Block scales multiply a block's partial sum (one FMA per block and
// row); offsets (Q4_0's -8, Q5_0's -16, Q4_1 / Q5_1's m, the K-quants' mins) are folded in as
// offset · (sum of the 32 x values they apply to), from group_sums.
//
// Cost per 32 weights and row of x (R = 1): Q8_0 4 converts + 4 FMA + 1; Q4_0 and Q4_K 2 loads,
// 4 and/shift, 4 converts, 4 FMA + 1. A row's arithmetic is the same whatever R, so a batched row gets
// the bits it gets alone.
#include <immintrin.h>

#include <cstring>
#include <vector>

#include "core/quant_formats.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels::quant::avx2 {

namespace {

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

__m256i u8x8(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
__m256i i8x8(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
__m256 f(__m256i v) { return _mm256_cvtepi32_ps(v); }

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum over c of w[c] · x[8c .. 8c + 8)
__m256 dot4(const __m256 w[4], const float* x) {
  __m256 s = _mm256_mul_ps(w[0], _mm256_loadu_ps(x));
  s = _mm256_fmadd_ps(w[1], _mm256_loadu_ps(x + 8), s);
  s = _mm256_fmadd_ps(w[2], _mm256_loadu_ps(x + 16), s);
  return _mm256_fmadd_ps(w[3], _mm256_loadu_ps(x + 24), s);
}

// The R rows of x one call works on: x[r] [K], xs[r] [K / 32] group sums.
template <int R>
struct Rows {
  const float* x[R];
  const float* xs[R];
};

template <int R>
void row_q8_0(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; ++b, w += 34) {
    const __m256 d = _mm256_set1_ps(half(w));
    const __m256 q[4] = {f(i8x8(w + 2)), f(i8x8(w + 10)), f(i8x8(w + 18)), f(i8x8(w + 26))};
    for (int r = 0; r < R; ++r) acc[r] = _mm256_fmadd_ps(d, dot4(q, in.x[r] + 32 * b), acc[r]);
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

// The 32-element nibble formats (Q4_0, Q4_1, Q5_0, Q5_1): x = d · q + offset, the offset folded in as
// offset · (sum of the block's 32 x values). Q5's fifth bits: bit i of the block's 32-bit qh for element i.
template <int R, DType T>
void row_q32(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  constexpr bool has_min = T == DType::Q4_1 || T == DType::Q5_1, five = T == DType::Q5_0 || T == DType::Q5_1;
  constexpr float zero = T == DType::Q4_0 ? 8.0f : T == DType::Q5_0 ? 16.0f : 0.0f;  // subtracted from q
  constexpr int qh_at = has_min ? 4 : 2, qs_at = qh_at + (five ? 4 : 0);
  constexpr int64_t bytes = int64_t(dtype_block_bytes(T));
  const __m256i low = _mm256_set1_epi32(15), sixteen = _mm256_set1_epi32(16);
  const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  __m256 acc[R];
  float off[R] = {};
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 32; ++b, w += bytes) {
    const float ds = half(w), os = (has_min ? half(w + 2) : 0.0f) - zero * ds;
    const __m256 d = _mm256_set1_ps(ds);
    const __m256i a = u8x8(w + qs_at), c = u8x8(w + qs_at + 8);  // bytes 0-7, 8-15
    __m256i q[4] = {_mm256_and_si256(a, low), _mm256_and_si256(c, low), _mm256_srli_epi32(a, 4),
                    _mm256_srli_epi32(c, 4)};
    if constexpr (five) {  // element 8j + l (lane l of q[j]) takes bit l of qh's byte j
      for (int j = 0; j < 4; ++j) {
        const __m256i byte = _mm256_set1_epi32(w[qh_at + j]);
        const __m256i set = _mm256_cmpeq_epi32(_mm256_and_si256(byte, lane_bit), lane_bit);
        q[j] = _mm256_or_si256(q[j], _mm256_and_si256(set, sixteen));
      }
    }
    const __m256 qf[4] = {f(q[0]), f(q[1]), f(q[2]), f(q[3])};
    for (int r = 0; r < R; ++r) {
      acc[r] = _mm256_fmadd_ps(d, dot4(qf, in.x[r] + 32 * b), acc[r]);
      off[r] += os * in.xs[r][b];
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]) + off[r];
}

// Q4_K, and Q5_K (five: qh[32] between the scales and the nibbles, bit j of qh[l] the fifth bit of
// element 32j + l).
template <int R, bool five>
void row_qk(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  constexpr int64_t bytes = five ? 176 : 144;
  constexpr int qs_at = five ? 48 : 16;
  const __m256i low = _mm256_set1_epi32(15), one = _mm256_set1_epi32(1);
  __m256 acc[R];
  float off[R] = {};
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 256; ++b, w += bytes) {
    const float d = half(w), dmin = half(w + 2);
    const __m256i h[4] = {u8x8(w + 16), u8x8(w + 24), u8x8(w + 32), u8x8(w + 40)};  // qh[0..32) when five
    for (int g = 0; g < 4; ++g) {
      uint8_t sc0, m0, sc1, m1;
      linfer::quant::q4k_scale_min(w + 4, 2 * g, sc0, m0);
      linfer::quant::q4k_scale_min(w + 4, 2 * g + 1, sc1, m1);
      const uint8_t* qs = w + qs_at + 32 * g;
      const __m256i v[4] = {u8x8(qs), u8x8(qs + 8), u8x8(qs + 16), u8x8(qs + 24)};
      __m256i lo[4], hi[4];
      for (int c = 0; c < 4; ++c) {
        lo[c] = _mm256_and_si256(v[c], low);
        hi[c] = _mm256_srli_epi32(v[c], 4);
        if constexpr (five) {
          lo[c] = _mm256_or_si256(lo[c], _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h[c], 2 * g), one), 4));
          hi[c] = _mm256_or_si256(hi[c], _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(h[c], 2 * g + 1), one), 4));
        }
      }
      const __m256 lf[4] = {f(lo[0]), f(lo[1]), f(lo[2]), f(lo[3])};
      const __m256 hf[4] = {f(hi[0]), f(hi[1]), f(hi[2]), f(hi[3])};
      const __m256 d0 = _mm256_set1_ps(d * float(sc0)), d1 = _mm256_set1_ps(d * float(sc1));
      const float o0 = dmin * float(m0), o1 = dmin * float(m1);
      const int64_t e = 256 * b + 64 * g;  // first element of sub-block 2g
      for (int r = 0; r < R; ++r) {
        acc[r] = _mm256_fmadd_ps(d0, dot4(lf, in.x[r] + e), acc[r]);
        acc[r] = _mm256_fmadd_ps(d1, dot4(hf, in.x[r] + e + 32), acc[r]);
        off[r] += o0 * in.xs[r][e / 32] + o1 * in.xs[r][e / 32 + 1];
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]) - off[r];
}

template <int R>
void row_q6_k(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  const __m256i low = _mm256_set1_epi32(15), two = _mm256_set1_epi32(3), bias = _mm256_set1_epi32(32);
  __m256 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm256_setzero_ps();
  for (int64_t b = 0; b < K / 256; ++b, w += 210) {
    const float d = half(w + 208);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      const auto* sc = reinterpret_cast<const int8_t*>(w + 192 + 8 * h);
      for (int l = 0; l < 32; l += 8) {
        const __m256i a = u8x8(ql + l), c = u8x8(ql + l + 32), hb = u8x8(qh + l);
        auto q = [&](__m256i nib, int shift) {  // nibble | 2 high bits << 4, minus 32
          const __m256i hi2 = _mm256_and_si256(_mm256_srli_epi32(hb, shift), two);
          return f(_mm256_sub_epi32(_mm256_or_si256(nib, _mm256_slli_epi32(hi2, 4)), bias));
        };
        const int s = l / 16;
        const __m256 wq[4] = {
            _mm256_mul_ps(q(_mm256_and_si256(a, low), 0), _mm256_set1_ps(d * float(sc[s]))),
            _mm256_mul_ps(q(_mm256_and_si256(c, low), 2), _mm256_set1_ps(d * float(sc[s + 2]))),
            _mm256_mul_ps(q(_mm256_srli_epi32(a, 4), 4), _mm256_set1_ps(d * float(sc[s + 4]))),
            _mm256_mul_ps(q(_mm256_srli_epi32(c, 4), 6), _mm256_set1_ps(d * float(sc[s + 6])))};
        const int64_t e = 256 * b + 128 * h + l;
        for (int r = 0; r < R; ++r)
          for (int j = 0; j < 4; ++j) acc[r] = _mm256_fmadd_ps(wq[j], _mm256_loadu_ps(in.x[r] + e + 32 * j), acc[r]);
      }
    }
  }
  for (int r = 0; r < R; ++r) out[r] = hsum(acc[r]);
}

template <int R>
void row(DType t, const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  switch (t) {
    case DType::Q8_0: return row_q8_0<R>(w, K, in, out);
    case DType::Q4_0: return row_q32<R, DType::Q4_0>(w, K, in, out);
    case DType::Q4_1: return row_q32<R, DType::Q4_1>(w, K, in, out);
    case DType::Q5_0: return row_q32<R, DType::Q5_0>(w, K, in, out);
    case DType::Q5_1: return row_q32<R, DType::Q5_1>(w, K, in, out);
    case DType::Q4_K: return row_qk<R, false>(w, K, in, out);
    case DType::Q5_K: return row_qk<R, true>(w, K, in, out);
    case DType::Q6_K: return row_q6_k<R>(w, K, in, out);
    default: return;
  }
}

// Rows m0 .. m0 + R of x against weight row n.
template <int R>
void rows_of_x(const float* x, const float* xs, int64_t m0, const WeightMatrix& w, const uint8_t* wrow, float* out) {
  Rows<R> in;
  for (int r = 0; r < R; ++r) in.x[r] = x + (m0 + r) * w.K, in.xs[r] = xs + (m0 + r) * (w.K / 32);
  row<R>(w.dtype, wrow, w.K, in, out);
}

}  // namespace

void matmul(const float* x, int64_t M, const WeightMatrix& w, const float* bias, float* y) {
  thread_local std::vector<float> xs_buf;
  const bool offsets = w.dtype != DType::Q8_0 && w.dtype != DType::Q6_K;
  xs_buf.resize(offsets ? size_t(M * (w.K / 32)) : 1);
  if (offsets) group_sums(x, M, w.K, xs_buf.data());
  const float* xs = xs_buf.data();
  parallel_for(0, w.N, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const auto* wrow = static_cast<const uint8_t*>(w.data) + dtype_nbytes(w.dtype, n * w.ld);
      for (int64_t m0 = 0; m0 < M; m0 += 4) {
        float out[4];
        const int64_t R = std::min<int64_t>(4, M - m0);
        switch (R) {
          case 4: rows_of_x<4>(x, xs, m0, w, wrow, out); break;
          case 3: rows_of_x<3>(x, xs, m0, w, wrow, out); break;
          case 2: rows_of_x<2>(x, xs, m0, w, wrow, out); break;
          default: rows_of_x<1>(x, xs, m0, w, wrow, out); break;
        }
        for (int64_t r = 0; r < R; ++r) y[(m0 + r) * w.N + n] = out[r] + (bias ? bias[n] : 0.0f);
      }
    }
  }, 8);
}

}  // namespace linfer::kernels::quant::avx2
