#pragma once
// Internal: the kernels behind kernels/cpu/conv1d.h. Prefill: conv1d.cpp gathers, for one token, the W input rows
// the taps read (from the conv state or from x) and calls a row kernel. Decode: a step kernel reads the state and
// the weights where they are.

#include <cstdint>

#include "linfer/core/cpu_features.h"

namespace linfer::kernels {

// out[c] = act(bias[c] + Σ_j wT[j, c] · taps[j][c]) for c in [c0, c1); wT is the weight transposed
// to [W, C] so that channels are contiguous. taps[j] may equal out (read before written).
using Conv1dRowFn = void (*)(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias,
                             bool silu, int64_t c0, int64_t c1, float* out);

// A decode step of one sequence, channels [c0, c1), straight from w [C, W] and the state [C, W-1]: out[c] =
// act(bias[c] + Σ_{j < W-1} w[c, j] · state[c, j] + w[c, W-1] · x[c]) with the row kernel's order of sums (a step
// gives what a prefill row would), then each channel's window moved on by x[c]. x may equal out.
using Conv1dStepFn = void (*)(const float* x, const float* w, int64_t W, const float* bias, bool silu, float* state,
                              int64_t c0, int64_t c1, float* out);

// Moves one channel's window [W-1] (oldest first) on by the input x: the scalar step and the Highway step's tail.
inline void shift_window(float* s, int64_t H, float x) {
  for (int64_t j = 0; j + 1 < H; ++j) s[j] = s[j + 1];
  if (H > 0) s[H - 1] = x;
}

namespace hwy_paths {
// The Highway kernels (conv1d_hwy.cpp) of `level`, which is not the scalar path.
Conv1dRowFn conv1d_row_for(SimdLevel level);
Conv1dStepFn conv1d_step_for(SimdLevel level);
}  // namespace hwy_paths

}  // namespace linfer::kernels
