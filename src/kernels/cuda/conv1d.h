#pragma once
// Causal depthwise conv1d decode step on the GPU: kernels/cpu/conv1d.h's conv1d_step with the conv
// windows in a device slot pool. Same maths (float32): y[b, c] = act(bias[c] + Σ_j w[c, j] · window_j),
// window = [the slot's last W-1 inputs of channel c, oldest first] ++ x[b, c]; the window then shifts.
// For Mamba2's conv (the delta-rule decode kernel fuses its own: delta_rule_decode.h). W <= 4, what the
// short convs of Mamba2, GDN and KDA use (the window lives in registers).
//
//   conv1d_step(d_x, 0, d_w, d_bias, C, W, SlotPool{d_conv_pool, floats_per_slot}, d_slots, B, true, d_y, stream);

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/slot_pool.h"

namespace linfer::kernels::cuda {

// All pointers are device memory. One token for each of B sequences; sequence b's window [C, W-1] is at
// states.base + slots[b] * states.slot_stride. x and y must not alias.
void conv1d_step(const float* x,     // [B, x_stride], channels [0, C) of each row
                 int64_t x_stride,   // floats between tokens of x; 0 means C
                 const float* w,     // [C, W]
                 const float* bias,  // [C] or null
                 int64_t C, int64_t W, SlotPool states, const int32_t* slots, int64_t B, bool silu,
                 float* y,           // [B, C]
                 cudaStream_t stream);

// Prefill of n_seqs packed sequences, kernels/cpu/conv1d.h's conv1d_prefill: sequence i owns tokens
// [offsets[i], offsets[i+1]) of x and y (offsets: n_seqs + 1 entries in device memory) and the window in
// slot slots[i]. One thread per (sequence, channel) walks its tokens in order, the window in registers.
void conv1d_prefill(const float* x, int64_t x_stride, const float* w, const float* bias, int64_t C, int64_t W,
                    const int64_t* offsets, int64_t n_seqs, SlotPool states, const int32_t* slots, bool silu,
                    float* y,  // [T, C]
                    cudaStream_t stream);

}  // namespace linfer::kernels::cuda
