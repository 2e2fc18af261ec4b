#include "kernels/reference/conv1d.h"

#include <vector>

#include "kernels/reference/activation.h"

namespace linfer::kernels::ref {

// One sequence of n tokens: window = [state (W-1 per channel) ++ inputs], out[t] = Σ_j w[j]·window[t + j].
static void conv_sequence(const float* x, int64_t x_stride, int64_t n, const float* w, const float* bias,
                          int64_t C, int64_t W, float* state, bool act, float* y) {
  std::vector<double> win(W - 1 + n);
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t j = 0; j < W - 1; ++j) win[j] = state[c * (W - 1) + j];
    for (int64_t t = 0; t < n; ++t) win[W - 1 + t] = x[t * x_stride + c];
    for (int64_t t = 0; t < n; ++t) {
      double acc = bias ? bias[c] : 0.0;
      for (int64_t j = 0; j < W; ++j) acc += double(w[c * W + j]) * win[t + j];
      y[t * C + c] = float(act ? silu(acc) : acc);
    }
    for (int64_t j = 0; j < W - 1; ++j) state[c * (W - 1) + j] = float(win[n + j]);
  }
}

void conv1d_prefill(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    std::span<const int64_t> offsets, std::span<float* const> states, bool silu, float* y) {
  if (x_stride == 0) x_stride = C;
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    const int64_t t0 = offsets[s], n = offsets[s + 1] - t0;
    conv_sequence(x + t0 * x_stride, x_stride, n, w, bias, C, W, states[s], silu, y + t0 * C);
  }
}

void conv1d_step(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                 std::span<float* const> states, bool silu, float* y) {
  if (x_stride == 0) x_stride = C;
  std::vector<float> out(C);  // x and y may alias
  for (size_t b = 0; b < states.size(); ++b) {
    conv_sequence(x + int64_t(b) * x_stride, x_stride, 1, w, bias, C, W, states[b], silu, out.data());
    for (int64_t c = 0; c < C; ++c) y[int64_t(b) * C + c] = out[c];
  }
}

}  // namespace linfer::kernels::ref
