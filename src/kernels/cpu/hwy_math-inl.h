// Vector e^x, sigmoid, SiLU and softplus for the Highway kernels (activation_hwy.cpp, norm_hwy.cpp,
// conv1d_hwy.cpp, attention_hwy.cpp): Highway's per-target header, included after hwy/highway.h once per target
// that foreach_target.h compiles; the functions land in that file's linfer::kernels::HWY_NAMESPACE::hwy_math, with
// the aliases hn, DF and VF and PaddedTail beside them.
// The same operations on every target (AVX2, AVX-512, NEON), so a value depends on its own lane only.
//
//   const VF y = hwy_math::silu(df, x);

// Per-target include guard (Highway's convention for -inl.h files).
#if defined(LINFER_KERNELS_CPU_HWY_MATH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LINFER_KERNELS_CPU_HWY_MATH_INL_H_
#undef LINFER_KERNELS_CPU_HWY_MATH_INL_H_
#else
#define LINFER_KERNELS_CPU_HWY_MATH_INL_H_
#endif

#include <hwy/highway.h>

#include <cstdint>

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {

// The names the kernels that include this header share: float vectors of the target's full width.
namespace hn = hwy::HWY_NAMESPACE;
using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// Up to a vector of a row's tail [i, n), zero padded, for the vector code that ends a row (p: null where the row is).
struct PaddedTail {
  HWY_ALIGN float v[HWY_MAX_BYTES / 4] = {};
  const float* p;
  PaddedTail(const float* row, int64_t i, int64_t n) : p(row ? v : nullptr) {
    for (int64_t j = i; row && j < n; ++j) v[j - i] = row[j];
  }
};

namespace hwy_math {

// c0 t^n + c1 t^(n-1) + ... + cn by Horner's rule, unrolled at compile time (GCC -O2 does not unroll a loop over a
// list of constants: it kept them on the stack and looped, 20 % of a GLA prefill on Zen 3).
template <class D, class V, class... C>
HWY_INLINE V horner(D d, V t, float c0, C... cs) {
  V p = hn::Set(d, c0);
  ((p = hn::MulAdd(p, t, hn::Set(d, cs))), ...);
  return p;
}

// e^x, relative error ~1e-7 over the float range. x is clamped to [-87.3, 88.3] so 2^n stays a normal float
// (below, e^x < 1.2e-38 comes out as ~1e-38: irrelevant where it is used).
template <class D, class V = hn::Vec<D>>
HWY_INLINE V exp(D d, V x) {
  x = hn::Min(hn::Max(x, hn::Set(d, -87.3f)), hn::Set(d, 88.3f));
  // n = x·log2 e rounded to the nearest integer (ties to even) by adding 1.5·2^23, whose ulp is 1: the sum's low
  // mantissa bits then hold n, so 2^n needs no float-to-int conversion (Highway's checks for out-of-range lanes).
  const V shift = hn::Set(d, 12582912.0f);
  const V t = hn::Add(hn::Mul(x, hn::Set(d, 1.44269504088896341f)), shift);
  const V n = hn::Sub(t, shift);
  // r = x − n·ln2 in two steps (ln2 split hi + lo keeps r exact to ~1 ulp); |r| <= ln2 / 2
  V r = hn::NegMulAdd(n, hn::Set(d, 0.693145751953125f), x);
  r = hn::NegMulAdd(n, hn::Set(d, 1.428606765330187045e-06f), r);
  // Taylor series to r^7: truncation error (ln2/2)^8 / 8! ≈ 5e-9
  const V p = horner(d, r, 1.0f / 5040, 1.0f / 720, 1.0f / 120, 1.0f / 24, 1.0f / 6, 0.5f, 1.0f, 1.0f);
  const hn::RebindToSigned<D> di;  // t's bits are 0x4B400000 + n: shifted by 23, n·2^23 (mod 2^32)
  const auto e = hn::Add(hn::ShiftLeft<23>(hn::BitCast(di, t)), hn::Set(di, 127 << 23));
  return hn::Mul(p, hn::BitCast(d, e));
}

template <class D, class V = hn::Vec<D>>
HWY_INLINE V sigmoid(D d, V x) {
  const V one = hn::Set(d, 1.0f);
  return hn::Div(one, hn::Add(one, exp(d, hn::Sub(hn::Zero(d), x))));
}

template <class D, class V = hn::Vec<D>>
HWY_INLINE V silu(D d, V x) {
  return hn::Mul(x, sigmoid(d, x));
}

// torch's softplus (beta 1, threshold 20: x > 20 returns x; NaN stays NaN): max(x, 0) + log1p(u), u = e^-|x| in
// (0, 1], with log1p(u) = 2 atanh(s) = 2 (s + s³/3 + s⁵/5 + ...), s = u / (2 + u) <= 1/3, to s¹⁵ (the next term
// is below 2e-9 of the sum); relative error ~1e-7, no cancellation for small u.
template <class D, class V = hn::Vec<D>>
HWY_INLINE V softplus(D d, V x) {
  const V u = exp(d, hn::Neg(hn::Abs(x)));
  const V s = hn::Div(u, hn::Add(u, hn::Set(d, 2.0f))), t = hn::Mul(s, s);
  const V p = horner(d, t, 1.0f / 15, 1.0f / 13, 1.0f / 11, 1.0f / 9, 1.0f / 7, 1.0f / 5, 1.0f / 3, 1.0f);
  const V r = hn::MulAdd(hn::Add(s, s), p, hn::Max(x, hn::Zero(d)));
  return hn::IfThenElse(hn::Or(hn::Gt(x, hn::Set(d, 20.0f)), hn::IsNaN(x)), x, r);
}

}  // namespace hwy_math
}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
