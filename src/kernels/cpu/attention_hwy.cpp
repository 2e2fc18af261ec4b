// attend_rows (attention_simd.h) written once over Google Highway, compiled for every target of hwy_targets.h;
// attention.cpp takes the target of the running path. attention_core.h holds the loop; these are its vector
// primitives.

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/attention_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <cmath>

#include "kernels/cpu/attention_core.h"
#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

struct Ops {
  // out[u] = q · k_u for U keys: they share each load of q and keep U FMA chains in flight.
  template <int U>
  static void dots_block(const float* q, const float* k0, int64_t stride, int64_t D, float* out) {
    const DF df;
    const int64_t L = int64_t(hn::Lanes(df));
    VF a[U];
#pragma GCC unroll 8
    for (int u = 0; u < U; ++u) a[u] = hn::Zero(df);
    int64_t i = 0;
    for (; i + L <= D; i += L) {
      const VF qv = hn::LoadU(df, q + i);
      const float* kp = k0 + i;
#pragma GCC unroll 8
      for (int u = 0; u < U; ++u) a[u] = hn::MulAdd(qv, hn::LoadU(df, kp + u * stride), a[u]);
    }
    for (int u = 0; u < U; ++u) {
      float r = hn::GetLane(hn::SumOfLanes(df, a[u]));
      for (int64_t t = i; t < D; ++t) r += q[t] * k0[u * stride + t];
      out[u] = r;
    }
  }
  static void dots(const float* q, const float* k, int64_t stride, int64_t n, int64_t D, float* out) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) dots_block<8>(q, k + j * stride, stride, D, out + j);
    for (; j < n; ++j) dots_block<1>(q, k + j * stride, stride, D, out + j);
  }
  static void scale(float* o, float alpha, int64_t n) {
    const DF df;
    const int64_t L = int64_t(hn::Lanes(df));
    const VF a = hn::Set(df, alpha);
    int64_t i = 0;
    for (; i + L <= n; i += L) hn::StoreU(hn::Mul(hn::LoadU(df, o + i), a), df, o + i);
    for (; i < n; ++i) o[i] *= alpha;
  }
  // o[C · Lanes] += Σ_j p[j] · v_j, the outputs held in registers across all n keys.
  template <int C>
  static void pv_cols(float* o, const float* p, const float* v, int64_t stride, int64_t n) {
    const DF df;
    const int64_t L = int64_t(hn::Lanes(df));
    VF a[C];
#pragma GCC unroll 8
    for (int u = 0; u < C; ++u) a[u] = hn::LoadU(df, o + L * u);
    for (int64_t j = 0; j < n; ++j) {
      const VF pj = hn::Set(df, p[j]);
      const float* vj = v + j * stride;
#pragma GCC unroll 8
      for (int u = 0; u < C; ++u) a[u] = hn::MulAdd(pj, hn::LoadU(df, vj + L * u), a[u]);
    }
#pragma GCC unroll 8
    for (int u = 0; u < C; ++u) hn::StoreU(a[u], df, o + L * u);
  }
  static void pv(float* o, const float* p, const float* v, int64_t stride, int64_t n, int64_t Dv) {
    const int64_t L = int64_t(hn::Lanes(DF()));
    int64_t c = 0;
    for (; c + 8 * L <= Dv; c += 8 * L) pv_cols<8>(o + c, p, v + c, stride, n);
    for (; c + L <= Dv; c += L) pv_cols<1>(o + c, p, v + c, stride, n);
    for (; c < Dv; ++c)
      for (int64_t j = 0; j < n; ++j) o[c] += p[j] * v[j * stride + c];
  }
  // p[j] = exp(p[j] − m); returns Σ p.
  static float exp_shift(float* p, int64_t n, float m) {
    const DF df;
    const int64_t L = int64_t(hn::Lanes(df));
    const VF mv = hn::Set(df, m);
    VF sum = hn::Zero(df);
    int64_t j = 0;
    for (; j + L <= n; j += L) {
      const VF e = hwy_math::exp(df, hn::Sub(hn::LoadU(df, p + j), mv));
      hn::StoreU(e, df, p + j);
      sum = hn::Add(sum, e);
    }
    float r = hn::GetLane(hn::SumOfLanes(df, sum));
    for (; j < n; ++j) r += (p[j] = std::exp(p[j] - m));
    return r;
  }
};

}  // namespace

void attend_rows(const AttnShape& s, const AttnRow* rows, int64_t R, const KvSegment* segs, int64_t n_segs,
                 AttnAcc acc) {
  attend_rows_impl<Ops>(s, rows, R, segs, n_segs, acc);
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

AttendRowsFn attend_rows_for(SimdLevel level) { LINFER_HWY_DISPATCH(level, "attention", attend_rows); }

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
