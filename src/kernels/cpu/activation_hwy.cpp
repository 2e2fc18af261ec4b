// The elementwise activations behind kernels/cpu/activation.h written once over Google Highway, compiled for
// every target of hwy_targets.h (AVX2 and AVX-512 on x86-64, NEON on aarch64); activation.cpp calls the target of
// the running path. Each row: whole vectors, then the tail through the same vector code on a zero-padded copy
// (one formula for every element, so a result does not depend on where its element falls).

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/activation_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "kernels/cpu/activation_simd.h"
#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

// y[i] = f(a[i], b[i]) for i < n (b may be null where f ignores it).
template <class F>
void map2(const float* a, const float* b, float* y, int64_t n, F f) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + L <= n; i += L)
    hn::StoreU(f(df, hn::LoadU(df, a + i), b ? hn::LoadU(df, b + i) : hn::Zero(df)), df, y + i);
  if (i < n) {
    const PaddedTail ta(a, i, n), tb(b, i, n);
    HWY_ALIGN float out[HWY_MAX_BYTES / 4];
    hn::Store(f(df, hn::Load(df, ta.v), hn::Load(df, tb.v)), df, out);
    std::copy(out, out + (n - i), y + i);
  }
}

}  // namespace

void silu(const float* x, float* y, int64_t n) {
  map2(x, nullptr, y, n, [](DF d, VF v, VF) { return hwy_math::silu(d, v); });
}
void sigmoid(const float* x, float* y, int64_t n) {
  map2(x, nullptr, y, n, [](DF d, VF v, VF) { return hwy_math::sigmoid(d, v); });
}
void softplus(const float* x, float* y, int64_t n) {
  map2(x, nullptr, y, n, [](DF d, VF v, VF) { return hwy_math::softplus(d, v); });
}
void swiglu(const float* gate, const float* up, float* y, int64_t n) {
  map2(gate, up, y, n, [](DF d, VF g, VF u) { return hn::Mul(hwy_math::silu(d, g), u); });
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

void silu(SimdLevel level, const float* x, float* y, int64_t n) { LINFER_HWY_DISPATCH(level, "silu", silu(x, y, n)); }
void sigmoid(SimdLevel level, const float* x, float* y, int64_t n) {
  LINFER_HWY_DISPATCH(level, "sigmoid", sigmoid(x, y, n));
}
void softplus(SimdLevel level, const float* x, float* y, int64_t n) {
  LINFER_HWY_DISPATCH(level, "softplus", softplus(x, y, n));
}
void swiglu(SimdLevel level, const float* gate, const float* up, float* y, int64_t n) {
  LINFER_HWY_DISPATCH(level, "swiglu", swiglu(gate, up, y, n));
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
