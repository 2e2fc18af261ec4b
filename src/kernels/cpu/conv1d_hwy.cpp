// The conv1d row and step kernels (conv1d_simd.h) written once over Google Highway, compiled for every target of
// hwy_targets.h; conv1d.cpp takes the target of the running path. A step reads its channels' weights [C, W] and
// window [C, W - 1] where they lie: by interleaved loads and stores for W = 2..4, by gathers and scatters for wider
// windows. Both sum the taps in the same order from the bias up (one FMA per tap), so a decode step gives what a
// prefill row gives, bit for bit, on every target.

#include "kernels/cpu/hwy_targets.h"  // before foreach_target.h
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/conv1d_hwy.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep

#include <hwy/highway.h>

#include <algorithm>

#include "kernels/cpu/conv1d_simd.h"
#include "kernels/cpu/hwy_dispatch.h"
#include "kernels/cpu/hwy_math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace linfer::kernels::HWY_NAMESPACE {
namespace {

using DI = hn::RebindToSigned<DF>;

// The last m < Lanes channels through the vector formula on zero-padded lanes (so that results do not depend on
// where a channel falls): out[i] = act(bias[i] + Σ_j weight(j, i) · tap(j, i)), every tap read before out is written.
template <class Weight, class Tap>
void tail(DF df, int64_t m, const float* bias, int64_t W, bool silu, Weight&& weight, Tap&& tap, float* out) {
  HWY_ALIGN float b[HWY_MAX_BYTES / 4] = {}, wv[HWY_MAX_BYTES / 4] = {}, xv[HWY_MAX_BYTES / 4] = {};
  if (bias)
    for (int64_t i = 0; i < m; ++i) b[i] = bias[i];
  VF acc = hn::Load(df, b);
  for (int64_t j = 0; j < W; ++j) {
    for (int64_t i = 0; i < m; ++i) wv[i] = weight(j, i), xv[i] = tap(j, i);
    acc = hn::MulAdd(hn::Load(df, wv), hn::Load(df, xv), acc);
  }
  hn::Store(silu ? hwy_math::silu(df, acc) : acc, df, b);
  for (int64_t i = 0; i < m; ++i) out[i] = b[i];
}

// N consecutive floats per channel (a row of w, of the state) for Lanes channels, as N vectors of one column each
// (rows[j] lane i = p[i * N + j]) and back: interleaved loads and stores (shuffles on x86, ld3 / ld4 on NEON), where
// gathers and scatters cost several times more on AVX2 and NEON.
template <int N>
void load_columns(DF df, const float* p, VF* rows) {
  if constexpr (N == 1) rows[0] = hn::LoadU(df, p);
  if constexpr (N == 2) hn::LoadInterleaved2(df, p, rows[0], rows[1]);
  if constexpr (N == 3) hn::LoadInterleaved3(df, p, rows[0], rows[1], rows[2]);
  if constexpr (N == 4) hn::LoadInterleaved4(df, p, rows[0], rows[1], rows[2], rows[3]);
}
template <int N>
void store_columns(DF df, const VF* rows, float* p) {
  if constexpr (N == 1) hn::StoreU(rows[0], df, p);
  if constexpr (N == 2) hn::StoreInterleaved2(rows[0], rows[1], df, p);
  if constexpr (N == 3) hn::StoreInterleaved3(rows[0], rows[1], rows[2], df, p);
  if constexpr (N == 4) hn::StoreInterleaved4(rows[0], rows[1], rows[2], rows[3], df, p);
}

// A step over channels [c, c1) in whole vectors for the usual narrow windows (W = 2..4: weights [C, W] and state
// [C, W - 1] by interleaved loads); returns where it stopped.
template <int W>
int64_t step_interleaved(DF df, const float* x, const float* w, const float* bias, bool silu, float* state,
                         int64_t c, int64_t c1, float* out) {
  constexpr int H = W - 1;
  const int64_t L = int64_t(hn::Lanes(df));
  for (; c + L <= c1; c += L) {
    VF taps[W], wv[W];
    load_columns<H>(df, state + c * H, taps);
    taps[H] = hn::LoadU(df, x + c);
    load_columns<W>(df, w + c * W, wv);
    VF acc = bias ? hn::LoadU(df, bias + c) : hn::Zero(df);
    for (int j = 0; j < W; ++j) acc = hn::MulAdd(wv[j], taps[j], acc);
    store_columns<H>(df, taps + 1, state + c * H);  // the window moves on by x
    hn::StoreU(silu ? hwy_math::silu(df, acc) : acc, df, out + c);
  }
  return c;
}

constexpr int64_t kMaxGatheredTaps = 16;  // wider windows go tap by tap through the tail form

// The step for windows of 5..kMaxGatheredTaps taps in whole vectors, the weights and the state read by gathers
// (lane i: channel c + i's row) and the window written back by scatters; returns where it stopped.
int64_t step_gathered(DF df, const float* x, const float* w, int64_t W, const float* bias, bool silu, float* state,
                      int64_t c, int64_t c1, float* out) {
  const DI di;
  const int64_t L = int64_t(hn::Lanes(df)), H = W - 1;
  const auto w_at = hn::Mul(hn::Iota(di, 0), hn::Set(di, int32_t(W)));
  const auto s_at = hn::Mul(hn::Iota(di, 0), hn::Set(di, int32_t(H)));
  for (; c + L <= c1; c += L) {
    const float* wc = w + c * W;
    float* s = state + c * H;
    VF taps[kMaxGatheredTaps];
    for (int64_t j = 0; j < H; ++j) taps[j] = hn::GatherIndex(df, s + j, s_at);
    taps[H] = hn::LoadU(df, x + c);
    VF acc = bias ? hn::LoadU(df, bias + c) : hn::Zero(df);
    for (int64_t j = 0; j < W; ++j) acc = hn::MulAdd(hn::GatherIndex(df, wc + j, w_at), taps[j], acc);
    for (int64_t j = 0; j < H; ++j) hn::ScatterIndex(taps[j + 1], df, s + j, s_at);  // the window moves on by x
    hn::StoreU(silu ? hwy_math::silu(df, acc) : acc, df, out + c);
  }
  return c;
}

}  // namespace

void conv1d_row(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias, bool silu,
                int64_t c0, int64_t c1, float* out) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df));
  int64_t c = c0;
  for (; c + L <= c1; c += L) {
    VF acc = bias ? hn::LoadU(df, bias + c) : hn::Zero(df);
    for (int64_t j = 0; j < W; ++j) acc = hn::MulAdd(hn::LoadU(df, wT + j * C + c), hn::LoadU(df, taps[j] + c), acc);
    hn::StoreU(silu ? hwy_math::silu(df, acc) : acc, df, out + c);
  }
  if (c < c1)
    tail(df, c1 - c, bias ? bias + c : nullptr, W, silu, [&](int64_t j, int64_t i) { return wT[j * C + c + i]; },
         [&](int64_t j, int64_t i) { return taps[j][c + i]; }, out + c);
}

void conv1d_step(const float* x, const float* w, int64_t W, const float* bias, bool silu, float* state, int64_t c0,
                 int64_t c1, float* out) {
  const DF df;
  const int64_t L = int64_t(hn::Lanes(df)), H = W - 1;
  int64_t c = c0;
  if (W == 2) c = step_interleaved<2>(df, x, w, bias, silu, state, c, c1, out);
  if (W == 3) c = step_interleaved<3>(df, x, w, bias, silu, state, c, c1, out);
  if (W == 4) c = step_interleaved<4>(df, x, w, bias, silu, state, c, c1, out);
  if (W > 4 && W <= kMaxGatheredTaps) c = step_gathered(df, x, w, W, bias, silu, state, c, c1, out);
  for (; c < c1; c += L) {  // the tail (and every channel of a window wider than kMaxGatheredTaps)
    const int64_t m = std::min(L, c1 - c);
    HWY_ALIGN float xs[HWY_MAX_BYTES / 4];
    for (int64_t i = 0; i < m; ++i) xs[i] = x[c + i];  // before out, which may be x, is written
    tail(df, m, bias ? bias + c : nullptr, W, silu, [&](int64_t j, int64_t i) { return w[(c + i) * W + j]; },
         [&](int64_t j, int64_t i) { return j < H ? state[(c + i) * H + j] : xs[i]; }, out + c);
    for (int64_t i = 0; i < m; ++i) shift_window(state + (c + i) * H, H, xs[i]);
  }
}

}  // namespace linfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace linfer::kernels::hwy_paths {

Conv1dRowFn conv1d_row_for(SimdLevel level) { LINFER_HWY_DISPATCH(level, "conv1d", conv1d_row); }
Conv1dStepFn conv1d_step_for(SimdLevel level) { LINFER_HWY_DISPATCH(level, "conv1d", conv1d_step); }

}  // namespace linfer::kernels::hwy_paths
#endif  // HWY_ONCE
