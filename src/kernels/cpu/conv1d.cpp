#include "kernels/cpu/conv1d.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/conv1d_simd.h"
#include "linfer/core/error.h"
#include "linfer/core/thread_pool.h"

namespace linfer::kernels {
namespace {

constexpr int64_t kChannelBlock = 512;

void conv1d_row_scalar(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias, bool silu,
                       int64_t c0, int64_t c1, float* out) {
  for (int64_t c = c0; c < c1; ++c) {
    float acc = bias ? bias[c] : 0.0f;
    for (int64_t j = 0; j < W; ++j) acc += wT[j * C + c] * taps[j][c];
    out[c] = silu ? acc / (1.0f + std::exp(-acc)) : acc;
  }
}

void conv1d_step_scalar(const float* x, const float* w, int64_t W, const float* bias, bool silu, float* state,
                        int64_t c0, int64_t c1, float* out) {
  const int64_t H = W - 1;
  for (int64_t c = c0; c < c1; ++c) {
    const float* wc = w + c * W;
    float* s = state + c * H;
    float acc = bias ? bias[c] : 0.0f;
    for (int64_t j = 0; j < H; ++j) acc += wc[j] * s[j];
    const float xc = x[c];
    acc += wc[H] * xc;
    shift_window(s, H, xc);
    out[c] = silu ? acc / (1.0f + std::exp(-acc)) : acc;
  }
}

// Prefill of one sequence of n tokens, channels [c0, c1): the old window saved, the state rewritten from x, then
// the outputs.
void conv_block(const float* x, int64_t x_stride, int64_t n, const float* wT, const float* bias, int64_t C,
                int64_t W, float* state, bool silu, float* y, int64_t c0, int64_t c1, Conv1dRowFn row) {
  const int64_t H = W - 1;  // history rows
  // hist[i, c]: input i − H relative to the first token (token-major, channels of this block)
  thread_local std::vector<float> hist;  // grows to [H, C]; only this block's columns are used, each written below
  if (hist.size() < size_t(H * C)) hist.resize(size_t(H * C));
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t i = 0; i < H; ++i) hist[i * C + c] = state[c * H + i];
  auto input = [&](int64_t i) {  // input row i of [hist ++ x], i in [0, H + n)
    return i < H ? hist.data() + i * C : x + (i - H) * x_stride;
  };
  for (int64_t c = c0; c < c1; ++c)
    for (int64_t i = 0; i < H; ++i) state[c * H + i] = input(n + i)[c];
  thread_local std::vector<const float*> taps;  // per thread, reused: decode allocates nothing
  taps.resize(static_cast<size_t>(W));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < W; ++j) taps[j] = input(t + j);
    row(taps.data(), wT, C, W, bias, silu, c0, c1, y + t * C);
  }
}

void conv_sequences(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    std::span<const int64_t> offsets, std::span<float* const> states, bool silu, float* y,
                    SimdLevel level) {
  LINFER_CHECK(W >= 1 && C >= 0, "conv1d: bad kernel width {} or channels {}", W, C);
  LINFER_CHECK(states.size() + 1 == offsets.size(), "conv1d: {} states for {} sequences", states.size(),
               offsets.size() - 1);
  if (x_stride == 0) x_stride = C;
  thread_local std::vector<float> wT_buf;  // the caller's, reused (the workers read it through wT)
  std::vector<float>& wT = wT_buf;
  wT.resize(size_t(W * C));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t j = 0; j < W; ++j) wT[j * C + c] = w[c * W + j];
  Conv1dRowFn row = conv1d_row_scalar;
#if LINFER_HWY
  if (level != SimdLevel::Scalar) row = hwy_paths::conv1d_row_for(level);
#endif
  const int64_t n_blocks = (C + kChannelBlock - 1) / kChannelBlock;
  const int64_t n_seqs = int64_t(states.size());
  parallel_for(0, n_seqs * n_blocks, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t s = task / n_blocks, c0 = (task % n_blocks) * kChannelBlock;
      const int64_t begin = offsets[s], n = offsets[s + 1] - begin;
      conv_block(x + begin * x_stride, x_stride, n, wT.data(), bias, C, W, states[s], silu, y + begin * C, c0,
                 std::min(C, c0 + kChannelBlock), row);
    }
  });
}

}  // namespace

void conv1d_prefill(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    std::span<const int64_t> offsets, std::span<float* const> states, bool silu, float* y,
                    SimdLevel level) {
  conv_sequences(x, x_stride, w, bias, C, W, offsets, states, silu, y, level);
}

void conv1d_step(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                 std::span<float* const> states, bool silu, float* y, SimdLevel level) {
  LINFER_CHECK(W >= 1 && C >= 0, "conv1d: bad kernel width {} or channels {}", W, C);
  if (x_stride == 0) x_stride = C;
  Conv1dStepFn step = conv1d_step_scalar;
#if LINFER_HWY
  if (level != SimdLevel::Scalar) step = hwy_paths::conv1d_step_for(level);
#endif
  // Tasks of kChannelBlock channels of one sequence; up to 2048 channels (2–5 µs with SiLU on one core at W = 4,
  // docs/benchmarks.md) run on the calling thread, where waking the pool would cost about as much as the work.
  constexpr int64_t kInlineTasks = 4;
  const int64_t n_blocks = (C + kChannelBlock - 1) / kChannelBlock;
  parallel_for(0, int64_t(states.size()) * n_blocks, [&](int64_t t0, int64_t t1) {
    for (int64_t task = t0; task < t1; ++task) {
      const int64_t s = task / n_blocks, c0 = (task % n_blocks) * kChannelBlock;
      step(x + s * x_stride, w, W, bias, silu, states[size_t(s)], c0, std::min(C, c0 + kChannelBlock), y + s * C);
    }
  }, kInlineTasks);
}

}  // namespace linfer::kernels
