// Quantized GEMV / small GEMM written once over Google Highway and compiled for every target this file is
// built for (hwy/foreach_target.h re-includes it once per target: AVX2 and AVX-512 on x86-64, NEON on
// aarch64); qmatmul.cpp calls the target of the SimdLevel. L float lanes per vector (8 on AVX2, 16 on
// AVX-512, 4 on NEON; at most 16, so one vector never straddles a Q6_K sub-block of 16).
//
// Per weight block: the integers widened to int32 lanes straight from memory (L bytes per load), nibbles
// split with an and and a shift (the fifth / sixth bits or'd in), converted to float and FMA'd with up to
// R = 4 rows of x, so each block is unpacked once for R rows. Q4_0 and Q5_0 on AVX-512 take the nibble to
// float through a 16-entry table held in one vector (a permute, not a convert), the table holding nibble -
// zero so that their offset costs nothing; AVX2 and NEON convert (16 entries fill two of their vectors,
// and the two lookups and a select lost to the convert). Block scales multiply a block's partial sum (one FMA
// per block and row; Q6_K: the 16-element sub-block scales multiply the weights, shared by the R rows;
// converted to float 16 at a time, once per block of 256); the other offsets (Q4_0's -8 and Q5_0's -16 on
// AVX2 / NEON, Q4_1 / Q5_1's m, the K-quants' mins) are folded in as offset · (sum of the 32 x values they
// apply to), from group_sums. One weight row per pass: four rows sharing each load of x ran slower
// (docs/benchmarks.md).
//
// Cost per 32 weights and row of x (R = 1), in vectors of L: Q8_0 32/L widening loads, converts and FMAs
// + 1; Q4_0 and Q4_K 16/L widening loads, 32/L and/shift, converts (Q4_0 on AVX-512: permutes) and FMAs
// + 1: AVX-512 needs half the instructions of AVX2. A row's arithmetic is the same whatever R, so a batched
// row gets the bits it gets alone (on each path; the paths differ from each other in the order of their
// sums, and AVX-512's Q4_0 / Q5_0 also in where the offset enters).

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/quant/qmatmul_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>
#include <cstring>

#include "core/quant_formats.h"
#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/quant/qmatmul.h"
#include "linfer/core/error.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::quant::HWY_NAMESPACE {
namespace {

namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::CappedTag<float, 16>;
using DI = hn::RebindToSigned<DF>;
using VF = hn::Vec<DF>;
using VI = hn::Vec<DI>;
constexpr int L = int(hn::MaxLanes(DF()));
constexpr int NV = 32 / L;  // vectors per 32 weights
static_assert(L <= 16 && 32 % L == 0);

// The fp16 at p (any byte address), as float32: one hardware conversion where the target has one.
HWY_INLINE float half(const uint8_t* p) {
  const hn::CappedTag<float, 1> d1;
  return hn::GetLane(hn::PromoteTo(d1, hn::LoadU(hn::Rebind<hwy::float16_t, decltype(d1)>(),
                                                  reinterpret_cast<const hwy::float16_t*>(p))));
}

// L bytes from p widened to int32 lanes, unsigned or signed.
HWY_INLINE VI u8s(const uint8_t* p) { return hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<uint8_t, DI>(), p)); }
HWY_INLINE VI i8s(const uint8_t* p) {
  return hn::PromoteTo(DI(), hn::LoadU(hn::Rebind<int8_t, DI>(), reinterpret_cast<const int8_t*>(p)));
}
HWY_INLINE VF f(VI v) { return hn::ConvertTo(DF(), v); }

// Up to 8 float lanes (the eight sub-blocks of a K-quant block): 8 on AVX2 and AVX-512, 4 on NEON.
using D8 = hn::CappedTag<float, 8>;
using V8 = hn::Vec<D8>;
constexpr int L8 = int(hn::MaxLanes(D8()));
// L8 bytes from p (unsigned) as floats.
HWY_INLINE V8 bytes8(const uint8_t* p) {
  const hn::RebindToSigned<D8> d32;
  return hn::ConvertTo(D8(), hn::PromoteTo(d32, hn::LoadU(hn::Rebind<uint8_t, decltype(d32)>(), p)));
}

// sum over c of w[c] · x[cL .. cL + L): the 32 weights of one block (or sub-block) against x. Two chains
// when a block takes more than 4 vectors (NEON), so that the FMA latency overlaps.
HWY_INLINE VF dot32(const VF (&w)[NV], const float* HWY_RESTRICT x) {
  const DF df;
  if constexpr (NV > 4) {
    VF s0 = hn::Mul(w[0], hn::LoadU(df, x)), s1 = hn::Mul(w[1], hn::LoadU(df, x + L));
    HWY_UNROLL(8)
    for (int c = 2; c < NV; c += 2) {
      s0 = hn::MulAdd(w[c], hn::LoadU(df, x + c * L), s0);
      s1 = hn::MulAdd(w[c + 1], hn::LoadU(df, x + (c + 1) * L), s1);
    }
    return hn::Add(s0, s1);
  } else {
    VF s = hn::Mul(w[0], hn::LoadU(df, x));
    HWY_UNROLL(8)
    for (int c = 1; c < NV; ++c) s = hn::MulAdd(w[c], hn::LoadU(df, x + c * L), s);
    return s;
  }
}

// The R rows of x one call works on: x[r] [K], xs[r] [K / 32] group sums.
template <int R>
struct Rows {
  const float* x[R];
  const float* xs[R];
};

template <int R>
HWY_INLINE void row_q8_0(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  const DF df;
  VF acc[R];
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) acc[r] = hn::Zero(df);
  for (int64_t b = 0; b < K / 32; ++b, w += 34) {
    const VF d = hn::Set(df, half(w));
    VF q[NV];
    HWY_UNROLL(8)
    for (int c = 0; c < NV; ++c) q[c] = f(i8s(w + 2 + c * L));
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) acc[r] = hn::MulAdd(d, dot32(q, in.x[r] + 32 * b), acc[r]);
  }
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, acc[r]));
}

// The 32-element nibble formats (Q4_0, Q4_1, Q5_0, Q5_1): x = d · q + offset. Q5's fifth bits: bit i of the
// block's 32-bit qh for element i. Q4_0 / Q5_0 on AVX-512 (table): a nibble becomes float through a lookup
// in one vector, tab[n] = n - zero (one vpermps in place of a convert), so the offset is in the weights and
// costs nothing per block; Q5's fifth bit then adds 16 to the float. The other offsets (-zero on AVX2 /
// NEON, Q4_1 / Q5_1's m) are folded in as offset · (sum of the block's 32 x values). Measured (AVX-512,
// docs/benchmarks.md): the gain is the dropped offset term; a table in place of the convert alone gained
// nothing (Q4_1 / Q5_1 convert). AVX2 would hold the table in two vectors, two lookups and a select: half
// the speed of the convert.
constexpr bool nibble_table(DType t) { return L == 16 && (t == DType::Q4_0 || t == DType::Q5_0); }

template <int R, DType T>
HWY_INLINE void row_q32(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  constexpr bool has_min = T == DType::Q4_1 || T == DType::Q5_1, five = T == DType::Q5_0 || T == DType::Q5_1;
  constexpr float zero = T == DType::Q4_0 ? 8.0f : T == DType::Q5_0 ? 16.0f : 0.0f;  // subtracted from q
  constexpr bool table = nibble_table(T);  // only where it takes the offset (Q4_1 / Q5_1: no gain)
  constexpr bool group_sums = !table;            // an offset left to fold in through xs
  constexpr int qh_at = has_min ? 4 : 2, qs_at = qh_at + (five ? 4 : 0);
  constexpr int64_t bytes = int64_t(dtype_block_bytes(T));
  const DF df;
  const DI di;
  const VI low = hn::Set(di, 15), sixteen = hn::Set(di, 16);
  const VF tab = hn::Sub(hn::Iota(df, 0.0f), hn::Set(df, zero)), f16 = hn::Set(df, 16.0f);  // table: n - zero
  VI bit[NV];  // lane l of vector c: 1 << (cL + l), element cL + l's bit of qh
  HWY_UNROLL(8)
  for (int c = 0; c < NV; ++c) bit[c] = hn::Shl(hn::Set(di, 1), hn::Iota(di, c * L));
  VF acc[R];
  float off[R] = {};
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) acc[r] = hn::Zero(df);
  for (int64_t b = 0; b < K / 32; ++b, w += bytes) {
    const float ds = half(w), os = (has_min ? half(w + 2) : 0.0f) - (table ? 0.0f : zero) * ds;
    const VF d = hn::Set(df, ds);
    VI q[NV];  // element cL + l in lane l of q[c]: low nibbles of bytes 0-15, then their high nibbles
    HWY_UNROLL(8)
    for (int c = 0; c < NV / 2; ++c) {
      const VI v = u8s(w + qs_at + c * L);
      q[c] = hn::And(v, low);
      q[c + NV / 2] = hn::ShiftRight<4>(v);
    }
    VI h = hn::Zero(di);  // five: the block's qh in every lane
    if constexpr (five) {
      uint32_t qh;
      std::memcpy(&qh, w + qh_at, 4);
      h = hn::Set(di, int32_t(qh));
    }
    VF qf[NV];
    HWY_UNROLL(8)
    for (int c = 0; c < NV; ++c) {
      if constexpr (table) {
        qf[c] = hn::TableLookupLanes(tab, hn::IndicesFromVec(df, q[c]));
        if constexpr (five)
          qf[c] = hn::IfThenElse(hn::RebindMask(df, hn::TestBit(h, bit[c])), hn::Add(qf[c], f16), qf[c]);
      } else {
        if constexpr (five) q[c] = hn::Or(q[c], hn::IfThenElseZero(hn::TestBit(h, bit[c]), sixteen));
        qf[c] = f(q[c]);
      }
    }
    HWY_UNROLL(8)
    for (int r = 0; r < R; ++r) {
      acc[r] = hn::MulAdd(d, dot32(qf, in.x[r] + 32 * b), acc[r]);
      if constexpr (group_sums) off[r] += os * in.xs[r][b];
    }
  }
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, acc[r])) + off[r];
}

// Q4_K, and Q5_K (five: qh[32] between the scales and the nibbles, bit j of qh[l] the fifth bit of
// element 32j + l).
template <int R, bool five>
HWY_INLINE void row_qk(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  constexpr int64_t bytes = five ? 176 : 144;
  constexpr int qs_at = five ? 48 : 16;
  const DF df;
  const DI di;
  const VI low = hn::Set(di, 15), one = hn::Set(di, 1);
  const D8 d8;
  VF acc[R];
  V8 off[R];  // lane-wise sums of dmin · m[j] · (sum of sub-block j's x values)
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) acc[r] = hn::Zero(df), off[r] = hn::Zero(d8);
  for (int64_t b = 0; b < K / 256; ++b, w += bytes) {
    uint8_t sc8[8], m8[8];
    linfer::quant::q4k_scales_mins(w + 4, sc8, m8);
    HWY_ALIGN float scale[8];  // d · the 6-bit scale of sub-block j, unpacked before the vector work
    const V8 d = hn::Set(d8, half(w)), dmin = hn::Set(d8, half(w + 2));
    HWY_UNROLL(8)
    for (int c = 0; c < 8; c += L8) {
      hn::Store(hn::Mul(bytes8(sc8 + c), d), d8, scale + c);
      const V8 o = hn::Mul(bytes8(m8 + c), dmin);
      HWY_UNROLL(8)
      for (int r = 0; r < R; ++r) off[r] = hn::MulAdd(o, hn::LoadU(d8, in.xs[r] + 8 * b + c), off[r]);
    }
    VI h[NV];  // qh[0..32) when five
    if constexpr (five) {
      HWY_UNROLL(8)
      for (int c = 0; c < NV; ++c) h[c] = u8s(w + 16 + c * L);
    }
    for (int g = 0; g < 4; ++g) {
      const uint8_t* qs = w + qs_at + 32 * g;
      VF lf[NV], hf[NV];  // sub-blocks 2g (low nibbles) and 2g + 1 (high nibbles)
      HWY_UNROLL(8)
      for (int c = 0; c < NV; ++c) {
        const VI v = u8s(qs + c * L);
        VI lo = hn::And(v, low), hi = hn::ShiftRight<4>(v);
        if constexpr (five) {
          lo = hn::Or(lo, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h[c], 2 * g), one)));
          hi = hn::Or(hi, hn::ShiftLeft<4>(hn::And(hn::ShiftRightSame(h[c], 2 * g + 1), one)));
        }
        lf[c] = f(lo);
        hf[c] = f(hi);
      }
      const VF d0 = hn::Set(df, scale[2 * g]), d1 = hn::Set(df, scale[2 * g + 1]);
      const int64_t e = 256 * b + 64 * g;  // first element of sub-block 2g
      HWY_UNROLL(8)
      for (int r = 0; r < R; ++r) {
        acc[r] = hn::MulAdd(d0, dot32(lf, in.x[r] + e), acc[r]);
        acc[r] = hn::MulAdd(d1, dot32(hf, in.x[r] + e + 32), acc[r]);
      }
    }
  }
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r)
    out[r] = hn::GetLane(hn::SumOfLanes(df, acc[r])) - hn::GetLane(hn::SumOfLanes(d8, off[r]));
}

// Q6_K: per half of 128 elements, element l (+ 32j) from ql's nibbles and qh's bit pair j, scaled by its
// 16-element sub-block's int8 scale. Two accumulator chains per row (j even / odd): the weights are
// scaled before the FMAs, so nothing else breaks the chain.
template <int R>
HWY_INLINE void row_q6_k(const uint8_t* w, int64_t K, const Rows<R>& in, float* out) {
  const DF df;
  const DI di;
  const VI low = hn::Set(di, 15), high = hn::Set(di, 0x30), bias = hn::Set(di, 32);
  VF acc[R][2];
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = hn::Zero(df);
  for (int64_t b = 0; b < K / 256; ++b, w += 210) {
    HWY_ALIGN float scale[16];  // d · the int8 scale of each 16-element sub-block, converted L at a time
    const VF d = hn::Set(df, half(w + 208));
    HWY_UNROLL(8)
    for (int c = 0; c < 16; c += L) hn::Store(hn::Mul(f(i8s(w + 192 + c)), d), df, scale + c);
    for (int h = 0; h < 2; ++h) {
      const uint8_t* ql = w + 64 * h;
      const uint8_t* qh = w + 128 + 32 * h;
      HWY_UNROLL(8)
      for (int l = 0; l < 32; l += L) {
        const VI a = u8s(ql + l), c = u8s(ql + l + 32), hb = u8s(qh + l);
        const int s = 8 * h + l / 16;  // element l's sub-block; + 2j for element l + 32j
        // element l + 32j: nibble | bit pair j of hb moved to bits 4-5, minus 32, times its scale
        auto q = [&](VI nib, VI hi, int j) {
          return hn::Mul(f(hn::Sub(hn::Or(nib, hn::And(hi, high)), bias)), hn::Set(df, scale[s + 2 * j]));
        };
        const VF wq[4] = {q(hn::And(a, low), hn::ShiftLeft<4>(hb), 0), q(hn::And(c, low), hn::ShiftLeft<2>(hb), 1),
                          q(hn::ShiftRight<4>(a), hb, 2), q(hn::ShiftRight<4>(c), hn::ShiftRight<2>(hb), 3)};
        const int64_t e = 256 * b + 128 * h + l;
        HWY_UNROLL(8)
        for (int r = 0; r < R; ++r)
          HWY_UNROLL(8)
          for (int j = 0; j < 4; ++j)
            acc[r][j & 1] = hn::MulAdd(wq[j], hn::LoadU(df, in.x[r] + e + 32 * j), acc[r][j & 1]);
      }
    }
  }
  HWY_UNROLL(8)
  for (int r = 0; r < R; ++r) out[r] = hn::GetLane(hn::SumOfLanes(df, hn::Add(acc[r][0], acc[r][1])));
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
    default: fail("quantized matmul: no kernel for {}", dtype_name(t));
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

bool reads_group_sums(DType t) { return t != DType::Q8_0 && t != DType::Q6_K && !nibble_table(t); }

void matmul_rows(const float* x, const float* xs, int64_t M, const WeightMatrix& w, const float* bias, float* y,
                 int64_t n0, int64_t n1) {
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
}

}  // namespace linfer::kernels::quant::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::quant::hwy_paths {

void matmul_rows(SimdLevel level, const float* x, const float* xs, int64_t M, const WeightMatrix& w,
                 const float* bias, float* y, int64_t n0, int64_t n1) {
  LINFER_HWY_DISPATCH(level, "quantized matmul", matmul_rows(x, xs, M, w, bias, y, n0, n1));
}

bool reads_group_sums(SimdLevel level, DType t) {
  LINFER_HWY_DISPATCH(level, "quantized matmul", reads_group_sums(t));
}

}  // namespace linfer::kernels::quant::hwy_paths
#endif  // HWY_ONCE
