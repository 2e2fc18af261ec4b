#pragma once
// Internal: the per-token row kernel behind kernels/cpu/conv1d.h. conv1d.cpp gathers, for one
// token, the W input rows the taps read (from the conv state or from x) and calls a row kernel.

#include <cstdint>

namespace linfer::kernels {

// out[c] = act(bias[c] + Σ_j wT[j, c] · taps[j][c]) for c in [c0, c1); wT is the weight transposed
// to [W, C] so that channels are contiguous. taps[j] may equal out (read before written).
using Conv1dRowFn = void (*)(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias,
                             bool silu, int64_t c0, int64_t c1, float* out);

namespace avx2 {
void conv1d_row(const float* const* taps, const float* wT, int64_t C, int64_t W, const float* bias, bool silu,
                int64_t c0, int64_t c1, float* out);
}  // namespace avx2

}  // namespace linfer::kernels
