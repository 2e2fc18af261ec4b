// Weight rows as stored (f32 / bf16 / f16), read as float32 vectors by the Highway matmul kernels
// (matmul_hwy.cpp, gemm_hwy.cpp). Highway's per-target header: each kernel file includes it after
// hwy/highway.h, once per target that foreach_target.h compiles, and gets these inside its own
// linfer::kernels::HWY_NAMESPACE.
//
//   const VF w = hwy_weights::load<DType::BF16>(df, hwy_weights::row_ptr(wm, n), k);  // Lanes(df) weights
//   float s = hwy_weights::one<DType::BF16>(row, k);                                   // the tail, one by one

// Per-target include guard (Highway's convention for -inl.h files).
#if defined(LINFER_KERNELS_CPU_HWY_WEIGHTS_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LINFER_KERNELS_CPU_HWY_WEIGHTS_INL_H_
#undef LINFER_KERNELS_CPU_HWY_WEIGHTS_INL_H_
#else
#define LINFER_KERNELS_CPU_HWY_WEIGHTS_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul_simd.h"
#include "linfer/core/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE::hwy_weights {

namespace hn = hwy::HWY_NAMESPACE;

template <DType T>
struct Stored;  // the element type Highway loads for weights stored as T
template <>
struct Stored<DType::F32> { using type = float; };
template <>
struct Stored<DType::BF16> { using type = hwy::bfloat16_t; };
template <>
struct Stored<DType::F16> { using type = hwy::float16_t; };

// Lanes(df) weights from k on, as float32 (bf16: a 16-bit shift; f16: the hardware conversion).
template <DType T, class DF>
HWY_INLINE hn::Vec<DF> load(DF df, const void* row, int64_t k) {
  using S = typename Stored<T>::type;
  const S* p = static_cast<const S*>(row) + k;
  if constexpr (T == DType::F32) return hn::LoadU(df, p);
  else return hn::PromoteTo(df, hn::LoadU(hn::Rebind<S, DF>(), p));
}

// Weight k of a row, as float32.
template <DType T>
HWY_INLINE float one(const void* row, int64_t k) {
  if constexpr (T == DType::F32) return static_cast<const float*>(row)[k];
  else if constexpr (T == DType::BF16) return bf16_to_f32(static_cast<const uint16_t*>(row)[k]);
  else return f16_to_f32(static_cast<const uint16_t*>(row)[k]);
}

inline const void* row_ptr(const WeightMatrix& w, int64_t n) {
  return static_cast<const std::byte*>(w.data) + n * w.ld * int64_t(dtype_size(w.dtype));
}

}  // namespace linfer::kernels::HWY_NAMESPACE::hwy_weights
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
