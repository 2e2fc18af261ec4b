// The row kernels behind kernels/cpu/norm.h written once over Google Highway (every target of hwy_targets.h);
// norm.cpp dispatches and parallelises. Row tails go through the same vector code on zero-padded copies.

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/norm_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_math-inl.h"
#include "kernels/cpu/norm_simd.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

// y[i .. i + L) = x · s · weight [· act(gate)]
void scale_vec(DF df, const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act,
               float* y, int64_t i) {
  VF r = hn::Mul(hn::LoadU(df, x + i), hn::Set(df, s));
  if (w) {
    const VF wv = hn::LoadU(df, w + i);
    r = hn::Mul(r, mode == NormWeight::OnePlus ? hn::Add(wv, hn::Set(df, 1.0f)) : wv);
  }
  if (gate) {
    const VF g = hn::LoadU(df, gate + i);
    r = hn::Mul(r, act == GateAct::Sigmoid ? hwy_math::sigmoid(df, g) : hwy_math::silu(df, g));
  }
  hn::StoreU(r, df, y + i);
}

}  // namespace

float sum_squares(const float* x, int64_t n) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  VF a0 = hn::Zero(df), a1 = hn::Zero(df);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const VF v0 = hn::LoadU(df, x + i), v1 = hn::LoadU(df, x + i + L);
    a0 = hn::MulAdd(v0, v0, a0);
    a1 = hn::MulAdd(v1, v1, a1);
  }
  float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(a0, a1)));
  for (; i < n; ++i) s += x[i] * x[i];
  return s;
}

void scale_row(const float* x, float s, const float* w, NormWeight mode, const float* gate, GateAct act, float* y,
               int64_t n) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  int64_t i = 0;
  for (; i + L <= n; i += L) scale_vec(df, x, s, w, mode, gate, act, y, i);
  if (i < n) {
    const PaddedTail tx(x, i, n), tw(w, i, n), tg(gate, i, n);
    HWY_ALIGN float out[HWY_MAX_BYTES / 4];
    scale_vec(df, tx.p, s, tw.p, mode, tg.p, act, out, 0);
    std::copy(out, out + (n - i), y + i);
  }
}

void gate_silu(const float* x, const float* z, float* h, int64_t n) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  auto one = [&](const float* xp, const float* zp, float* hp) {
    hn::StoreU(hn::Mul(hn::LoadU(df, xp), hwy_math::silu(df, hn::LoadU(df, zp))), df, hp);
  };
  int64_t i = 0;
  for (; i + L <= n; i += L) one(x + i, z + i, h + i);
  if (i < n) {
    const PaddedTail tx(x, i, n), tz(z, i, n);
    HWY_ALIGN float out[HWY_MAX_BYTES / 4];
    one(tx.p, tz.p, out);
    std::copy(out, out + (n - i), h + i);
  }
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

float sum_squares(SimdLevel level, const float* x, int64_t n) {
  LINFER_HWY_DISPATCH(level, "rms_norm", sum_squares(x, n));
}
void scale_row(SimdLevel level, const float* x, float s, const float* w, NormWeight mode, const float* gate,
               GateAct act, float* y, int64_t n) {
  LINFER_HWY_DISPATCH(level, "rms_norm", scale_row(x, s, w, mode, gate, act, y, n));
}
void gate_silu(SimdLevel level, const float* x, const float* z, float* h, int64_t n) {
  LINFER_HWY_DISPATCH(level, "rms_norm_gate_first", gate_silu(x, z, h, n));
}

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
